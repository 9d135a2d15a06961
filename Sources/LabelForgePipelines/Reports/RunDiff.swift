import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel
import LabelForgeVectors

/// What changed between two runs: config, pins, and each stage's outputs with agreement
/// statistics (`labelforge diff`).
public struct RunDiff: Sendable {
    public struct Change: Sendable {
        public var path: String
        public var a: String?
        public var b: String?
    }

    public struct FieldDiff: Sendable {
        public var name: String
        /// `categorical`, `numeric`, or `text` (free text such as captions: too many distinct values
        /// for a confusion table, so only exact agreement is reported).
        public var kind: String
        /// Rows where both runs have a value for this field.
        public var count: Int
        public var agreement: Double
        public var kappa: Double?
        /// `confusion[a][b]`: rows labeled `a` in run a and `b` in run b.
        public var confusion: [String: [String: Int]]
        public var meanDelta: Double?
        public var pearson: Double?
        public var spearman: Double?
    }

    public struct Sample: Sendable {
        public var rowID: String
        public var a: JSONValue
        public var b: JSONValue
    }

    /// An `embed` stage's vectors compared row by row (from both runs' `.npy` files).
    public struct VectorDiff: Sendable {
        /// Rows with a vector in both runs.
        public var count: Int
        /// Of those, rows whose vectors are bit-for-bit equal.
        public var identical: Int
        public var meanCosine: Double?
        public var minCosine: Double?
    }

    public struct StageDiff: Sendable {
        public var id: String
        public var onlyA: Int
        public var onlyB: Int
        public var changed: Int
        public var unchanged: Int
        public var fields: [FieldDiff]
        public var samples: [Sample]
        public var vectors: VectorDiff? = nil
    }

    /// One labeled field scored against gold in both runs: each run's accuracy with its interval,
    /// and b's accuracy minus a's on the rows both labeled (paired bootstrap).
    public struct GoldDiff: Sendable {
        /// `stage.field`.
        public var field: String
        public var a: SummaryRecord.Gold?
        public var b: SummaryRecord.Gold?
        public var difference: AccuracyDifference?
        /// How many labeled examples the field's classifier learns from in a and in b (human
        /// labels, from an examples pool), where both runs say and their stages differ in nothing
        /// else (so the examples explain the difference).
        public var labeledExamples: (a: Int, b: Int)? = nil

        /// Accuracy gained per labeled example b has more than a (`difference` over the examples
        /// added), where the two differ in examples only.
        public var gainPerExample: Double? {
            guard let difference, let examples = labeledExamples, examples.b != examples.a else { return nil }
            return difference.difference / Double(examples.b - examples.a)
        }
    }

    public var a: String
    public var b: String
    public var config: [Change]
    public var pins: [Change]
    public var stages: [StageDiff]
    public var gold: [GoldDiff] = []

    /// Whether any output differs (rows added, removed or changed in any stage).
    public var outputsDiffer: Bool {
        stages.contains { $0.changed > 0 || $0.onlyA > 0 || $0.onlyB > 0 }
    }

    /// Compares run `a` with run `b`.
    /// - Parameters:
    ///   - a: the first run.
    ///   - b: the second run.
    ///   - sampleLimit: how many changed rows per stage to show with both values.
    public static func compare(_ a: RunArtifacts, _ b: RunArtifacts, sampleLimit: Int = 10) throws -> RunDiff {
        RunDiff(
            a: a.runID, b: b.runID, config: changes(a.resolvedConfig.flattened(), b.resolvedConfig.flattened()),
            pins: changes(pins(a.run), pins(b.run)),
            stages: try orderedUnion(a.stageIDs, b.stageIDs).map { try stageDiff($0, a, b, sampleLimit: sampleLimit) },
            gold: try goldDiffs(a, b))
    }

    /// Every labeled field either run scored against gold; the paired difference where both did.
    static func goldDiffs(_ a: RunArtifacts, _ b: RunArtifacts) throws -> [GoldDiff] {
        func scores(_ run: RunArtifacts) -> [String: SummaryRecord.Gold] {
            Dictionary((run.summary?.gold ?? []).map { ("\($0.stage).\($0.field)", $0) }) { first, _ in first }
        }
        let (scoresA, scoresB) = (scores(a), scores(b))
        let fields = Set(scoresA.keys).union(scoresB.keys).sorted()
        guard !fields.isEmpty else { return [] }
        let labelsA = try GoldLabels.load(run: a.directory)
        let labelsB = try GoldLabels.load(run: b.directory)
        return fields.map { field in
            let difference = labelsA.fields[field].flatMap { rowsA in
                labelsB.fields[field].flatMap { GoldLabels.difference(rowsA, $0) }
            }
            let stage = (scoresA[field] ?? scoresB[field])?.stage ?? ""
            let examples =
                sameBesidesExamples(stage, a, b)
                ? labelsA.labeledExamples[field].flatMap { a in labelsB.labeledExamples[field].map { (a, $0) } } : nil
            return GoldDiff(
                field: field, a: scoresA[field], b: scoresB[field], difference: difference, labeledExamples: examples)
        }
    }

    /// Whether the stage's resolved options are the same in both runs once `examples` is set
    /// aside.
    static func sameBesidesExamples(_ stage: String, _ a: RunArtifacts, _ b: RunArtifacts) -> Bool {
        func options(_ run: RunArtifacts) -> JSONValue? {
            let stages = run.resolvedConfig["stages"]?.arrayValue ?? []
            guard var found = stages.first(where: { $0["id"]?.stringValue == stage })?.objectValue else { return nil }
            found["examples"] = nil
            return .object(found)
        }
        return options(a) != nil && options(a) == options(b)
    }

    static func pins(_ run: RunRecord) -> [String: String] {
        var pins: [String: String] = [
            "determinism": run.determinism, "run_seed": String(run.runSeed),
            "dataset.fingerprint": run.dataset.fingerprint, "prompt_pack.version": run.promptPack.version,
            "prompt_pack.hash": run.promptPack.hash,
        ]
        for model in run.models {
            pins["models.\(model.engine).id"] = model.id
            pins["models.\(model.engine).revision"] = model.revision
        }
        for engine in run.engines {
            for key in ["build_info", "version", "total_slots"] {
                if let value = engine.info[key], !value.isNull {
                    pins["engines.\(engine.name).\(key)"] = value.textForm
                }
            }
        }
        for stage in run.stages { pins["stages.\(stage.id).version"] = String(stage.version) }
        return pins
    }

    private static func changes(_ a: [String: String], _ b: [String: String]) -> [Change] {
        Set(a.keys).union(b.keys).sorted().compactMap { key in
            a[key] == b[key] ? nil : Change(path: key, a: a[key], b: b[key])
        }
    }

    private static func orderedUnion(_ a: [String], _ b: [String]) -> [String] {
        a + b.filter { !a.contains($0) }
    }

    /// One stage's outputs compared, both files streamed side by side. Both are in input order,
    /// so rows of the same dataset meet in step and nothing is held; a row met on one side only
    /// waits (as its line) until its partner comes, or the end says it has none.
    private static func stageDiff(_ id: String, _ a: RunArtifacts, _ b: RunArtifacts, sampleLimit: Int) throws
        -> StageDiff
    {
        var diff = StageDiff(id: id, onlyA: 0, onlyB: 0, changed: 0, unchanged: 0, fields: [], samples: [])
        // Object-valued outputs (rubric `scores`, pairwise `winner`) are compared per member.
        func leaves(_ record: [String: JSONValue]) -> [String: JSONValue] {
            JSONValue.object(record).leaves(intoArrays: false)
        }
        var names: Set<String> = []
        var fields: [String: FieldPairs] = [:]
        // An embed stage's vectors live in `.npy` files: rows are compared by vector too, and their
        // `index` (which shifts when a row fails) is left out of the comparison.
        let vectorsA = try a.vectors(stage: id)
        let vectorsB = try b.vectors(stage: id)
        var vectorDiff = vectorsA != nil || vectorsB != nil ? VectorDiff(count: 0, identical: 0) : nil
        var cosineSum = 0.0
        var cosineMin: Double?

        func compare(_ rowID: String, _ recordA: [String: JSONValue], _ lineA: String, _ lineB: String) throws {
            let flatA = leaves(recordA)
            names.formUnion(flatA.keys)
            // Output lines are canonical JSON: equal records have equal lines.
            let recordB = lineA == lineB ? recordA : try JSONValue.parse(lineB).objectValue ?? [:]
            var same = lineA == lineB
            if vectorDiff != nil {
                var withoutIndexA = recordA
                var withoutIndexB = recordB
                withoutIndexA["index"] = nil
                withoutIndexB["index"] = nil
                let x = try recordA["index"]?.intValue.flatMap { try vectorsA?.vector(at: $0) }
                let y = try recordB["index"]?.intValue.flatMap { try vectorsB?.vector(at: $0) }
                if let x, let y {
                    vectorDiff!.count += 1
                    if x == y { vectorDiff!.identical += 1 }
                    let cosine = VectorSearch.cosine(x, y)
                    cosineSum += cosine
                    cosineMin = min(cosineMin ?? cosine, cosine)
                }
                same = withoutIndexA == withoutIndexB && x == y
            }
            if same {
                diff.unchanged += 1
            } else {
                diff.changed += 1
                if diff.samples.count < sampleLimit {
                    diff.samples.append(Sample(rowID: rowID, a: .object(recordA), b: .object(recordB)))
                }
            }
            let flatB = lineA == lineB ? flatA : leaves(recordB)
            names.formUnion(flatB.keys)
            for (name, x) in flatA where !x.isNull {
                guard let y = flatB[name], !y.isNull else { continue }
                fields[name, default: FieldPairs()].add(x, y)
            }
        }

        let readerA = try a.outputs(stage: id)
        let readerB = try b.outputs(stage: id)
        var waitingA: [String: String] = [:]
        var waitingB: [String: String] = [:]
        var doneA = false
        var doneB = false
        while !(doneA && doneB) {
            let nextA = doneA ? nil : try readerA.next()
            let nextB = doneB ? nil : try readerB.next()
            if nextA == nil { doneA = true }
            if nextB == nil { doneB = true }
            if let (rowID, record, line) = nextA, let b = nextB, b.rowID == rowID {
                try compare(rowID, record, line, b.line)
                continue
            }
            if let (rowID, record, line) = nextA {
                if let lineB = waitingB.removeValue(forKey: rowID) {
                    try compare(rowID, record, line, lineB)
                } else {
                    names.formUnion(leaves(record).keys)
                    waitingA[rowID] = line
                }
            }
            if let (rowID, record, line) = nextB {
                if let lineA = waitingA.removeValue(forKey: rowID) {
                    try compare(rowID, try JSONValue.parse(lineA).objectValue ?? [:], lineA, line)
                } else {
                    names.formUnion(leaves(record).keys)
                    waitingB[rowID] = line
                }
            }
        }
        diff.onlyA = waitingA.count
        diff.onlyB = waitingB.count
        if var vectorDiff {
            vectorDiff.meanCosine = vectorDiff.count == 0 ? nil : cosineSum / Double(vectorDiff.count)
            vectorDiff.minCosine = cosineMin
            diff.vectors = vectorDiff
        }
        let fieldNames = names.subtracting(["row_id"]).filter { $0 != "error" && !$0.hasPrefix("error.") }.sorted()
        diff.fields = fieldNames.map { fieldDiff($0, fields[$0] ?? FieldPairs()) }
        return diff
    }

    /// A field with more distinct values than this, and than half its rows, is reported as free
    /// text (a classify stage with many labels stays categorical on enough rows).
    static let maxCategories = 20

    static func fieldDiff(_ name: String, _ pairs: FieldPairs) -> FieldDiff {
        let agreement = pairs.count == 0 ? 1 : Double(pairs.equal) / Double(pairs.count)
        if pairs.count > 0 && pairs.numeric {
            let (x, y) = (pairs.x, pairs.y)
            return FieldDiff(
                name: name, kind: "numeric", count: pairs.count, agreement: agreement, kappa: nil, confusion: [:],
                meanDelta: zip(x, y).map { $1 - $0 }.reduce(0, +) / Double(pairs.count),
                pearson: Statistics.pearson(x, y), spearman: Statistics.spearman(x, y))
        }
        if pairs.tooManyValues || pairs.values.count > max(maxCategories, pairs.count / 2) {
            return FieldDiff(
                name: name, kind: "text", count: pairs.count, agreement: agreement, kappa: nil, confusion: [:],
                meanDelta: nil, pearson: nil, spearman: nil)
        }
        return FieldDiff(
            name: name, kind: "categorical", count: pairs.count, agreement: agreement,
            kappa: Statistics.cohenKappa(confusion: pairs.confusion), confusion: pairs.confusion, meanDelta: nil,
            pearson: nil, spearman: nil)
    }
}

/// One field's value pairs in two runs, accumulated as rows stream by: counts and a confusion
/// table for labels, the values themselves only while the field is numeric (Spearman needs
/// their ranks), and no table once the field has more distinct values than any label set.
struct FieldPairs {
    var count = 0
    var equal = 0
    var numeric = true
    var x: [Double] = []
    var y: [Double] = []
    var confusion: [String: [String: Int]] = [:]
    var values: Set<String> = []
    var tooManyValues = false
    /// Past this many distinct values a field is free text, whatever its row count.
    static let valueLimit = 10_000

    mutating func add(_ a: JSONValue, _ b: JSONValue) {
        count += 1
        if a == b { equal += 1 }
        if numeric {
            if case .bool = a {
                numeric = false
            } else if let p = a.doubleValue, let q = b.doubleValue {
                x.append(p)
                y.append(q)
            } else {
                numeric = false
            }
            if !numeric { (x, y) = ([], []) }
        }
        guard !tooManyValues else { return }
        let (p, q) = (a.textForm, b.textForm)
        values.insert(p)
        values.insert(q)
        if values.count > Self.valueLimit {
            tooManyValues = true
            (values, confusion) = ([], [:])
        } else {
            confusion[p, default: [:]][q, default: 0] += 1
        }
    }
}
