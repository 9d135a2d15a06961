import Foundation
import LabelForgeCore
import LabelForgeEval

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

    public var a: String
    public var b: String
    public var config: [Change]
    public var pins: [Change]
    public var stages: [StageDiff]

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
            stages: try orderedUnion(a.stageIDs, b.stageIDs).map { try stageDiff($0, a, b, sampleLimit: sampleLimit) })
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

    /// One stage's outputs compared. Run b's records are held as their lines (a fraction of their
    /// parsed size) and run a's are streamed against them, in a's order.
    private static func stageDiff(_ id: String, _ a: RunArtifacts, _ b: RunArtifacts, sampleLimit: Int) throws
        -> StageDiff
    {
        var diff = StageDiff(id: id, onlyA: 0, onlyB: 0, changed: 0, unchanged: 0, fields: [], samples: [])
        // Object-valued outputs (rubric `scores`, pairwise `winner`) are compared per member.
        func leaves(_ record: [String: JSONValue]) -> [String: JSONValue] {
            JSONValue.object(record).leaves(intoArrays: false)
        }
        var names: Set<String> = []
        var linesB: [String: String] = [:]
        let readerB = try b.outputs(stage: id)
        while let (rowID, record, line) = try readerB.next() {
            names.formUnion(leaves(record).keys)
            linesB[rowID] = line
        }
        var pairs: [String: [(JSONValue, JSONValue)]] = [:]
        var matched = 0
        // An embed stage's vectors live in `.npy` files: rows are compared by vector too, and their
        // `index` (which shifts when a row fails) is left out of the comparison.
        let vectorsA = try a.vectors(stage: id)
        let vectorsB = try b.vectors(stage: id)
        var vectorDiff = vectorsA != nil || vectorsB != nil ? VectorDiff(count: 0, identical: 0) : nil
        var cosines: [Double] = []
        let readerA = try a.outputs(stage: id)
        while let (rowID, recordA, lineA) = try readerA.next() {
            let flatA = leaves(recordA)
            names.formUnion(flatA.keys)
            guard let lineB = linesB[rowID] else {
                diff.onlyA += 1
                continue
            }
            matched += 1
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
                    cosines.append(Self.cosine(x, y))
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
            for (name, x) in flatA where !x.isNull {
                guard let y = flatB[name], !y.isNull else { continue }
                pairs[name, default: []].append((x, y))
            }
        }
        diff.onlyB = linesB.count - matched
        if var vectorDiff {
            vectorDiff.meanCosine = cosines.isEmpty ? nil : cosines.reduce(0, +) / Double(cosines.count)
            vectorDiff.minCosine = cosines.min()
            diff.vectors = vectorDiff
        }
        let fieldNames = names.subtracting(["row_id"]).filter { $0 != "error" && !$0.hasPrefix("error.") }.sorted()
        diff.fields = fieldNames.map { fieldDiff($0, pairs[$0] ?? []) }
        return diff
    }

    static func cosine(_ x: [Float], _ y: [Float]) -> Double {
        let dot = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let norms =
            x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            * y.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return norms == 0 ? (x == y ? 1 : 0) : dot / norms
    }

    /// A field with more distinct values than this, and than half its rows, is reported as free
    /// text (a classify stage with many labels stays categorical on enough rows).
    static let maxCategories = 20

    static func fieldDiff(_ name: String, _ pairs: [(JSONValue, JSONValue)]) -> FieldDiff {
        let numeric =
            !pairs.isEmpty
            && pairs.allSatisfy { pair in
                if case .bool = pair.0 { return false }
                return pair.0.doubleValue != nil && pair.1.doubleValue != nil
            }
        let agreement = pairs.isEmpty ? 1 : Double(pairs.filter { $0.0 == $0.1 }.count) / Double(pairs.count)
        if numeric {
            let x = pairs.map { $0.0.doubleValue! }
            let y = pairs.map { $0.1.doubleValue! }
            return FieldDiff(
                name: name, kind: "numeric", count: pairs.count, agreement: agreement, kappa: nil, confusion: [:],
                meanDelta: zip(x, y).map { $1 - $0 }.reduce(0, +) / Double(pairs.count),
                pearson: Statistics.pearson(x, y), spearman: Statistics.spearman(x, y))
        }
        let x = pairs.map { $0.0.textForm }
        let y = pairs.map { $0.1.textForm }
        if Set(x + y).count > max(maxCategories, pairs.count / 2) {
            return FieldDiff(
                name: name, kind: "text", count: pairs.count, agreement: agreement, kappa: nil, confusion: [:],
                meanDelta: nil, pearson: nil, spearman: nil)
        }
        var confusion: [String: [String: Int]] = [:]
        for (p, q) in zip(x, y) { confusion[p, default: [:]][q, default: 0] += 1 }
        return FieldDiff(
            name: name, kind: "categorical", count: pairs.count, agreement: agreement,
            kappa: Statistics.cohenKappa(x, y), confusion: confusion, meanDelta: nil, pearson: nil, spearman: nil)
    }
}
