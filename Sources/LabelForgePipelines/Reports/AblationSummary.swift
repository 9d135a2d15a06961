import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel

/// What an ablation's variants did, side by side: per variant accuracy and macro-F1 against gold,
/// tokens, wall time, new and cached requests; per label field, the agreement between variants
/// (pairwise Cohen's kappa, Fleiss' kappa and Krippendorff's alpha across all); per numeric field,
/// each variant's mean and standard deviation; the best variant per metric.
struct AblationSummary {
    struct Row {
        var name: String
        var assignments: [String: JSONValue]
        var run: String
        var status: String
        /// `stage.field` → its score against gold, with intervals (from the run's summary).
        var gold: [String: SummaryRecord.Gold]
        /// `stage.field` → this variant's accuracy minus the most accurate variant's, on the rows
        /// both labeled (paired bootstrap); absent for the best variant itself.
        var versusBest: [String: AccuracyDifference] = [:]
        var tokensIn: Int
        var tokensOut: Int
        var newRequests: Int
        var cachedRequests: Int
        var engineRequests: Int
        var wallSeconds: Double?
    }

    struct FieldAgreement {
        var stage: String
        var field: String
        /// kappa[i][j] between variants i and j (nil where undefined).
        var kappa: [[Double?]]
        var fleiss: Double?
        var alpha: Double?
        var rows: Int
    }

    struct NumericField {
        var stage: String
        var field: String
        var mean: [Double?]
        var std: [Double?]
    }

    var name: String
    var rows: [Row]
    var agreements: [FieldAgreement]
    var numeric: [NumericField]

    static func compute(state: AblationState) throws -> AblationSummary {
        var rows: [Row] = []
        var outputs: [[String: [String: [String: JSONValue]]]] = []  // variant → stage → row → record
        var stageTypes: [(id: String, type: String, fields: [String])] = []
        for entry in state.variants {
            guard let run = entry.run else { continue }
            let artifacts = try RunArtifacts.load(run)
            let summary = artifacts.summary
            var gold: [String: SummaryRecord.Gold] = [:]
            for score in summary?.gold ?? [] { gold["\(score.stage).\(score.field)"] = score }
            let stats = summary?.counts?.stages.values.map { $0 } ?? []
            let seconds = summary.flatMap { s in
                Self.seconds(between: artifacts.run.createdAt, and: s.finishedAt)
            }
            rows.append(
                Row(
                    name: entry.name, assignments: entry.assignments, run: run, status: summary?.status ?? "unfinished",
                    gold: gold, tokensIn: stats.reduce(0) { $0 + $1.tokensIn },
                    tokensOut: stats.reduce(0) { $0 + $1.tokensOut },
                    newRequests: stats.reduce(0) { $0 + $1.cacheMisses },
                    cachedRequests: stats.reduce(0) { $0 + $1.cacheHits },
                    engineRequests: summary?.engineRequests ?? 0, wallSeconds: seconds))
            if stageTypes.isEmpty {
                let config = try RunConfig.load(file: run + "/config.resolved.yaml", resolved: true)
                stageTypes = config.stages.map { stage in
                    let fields: [String]
                    switch stage.type {
                    case "classify": fields = ["label"]
                    case "tag": fields = (stage.options as? TagOptions)?.attributes.map(\.name) ?? []
                    default: fields = []
                    }
                    return (stage.id, stage.type, fields)
                }
            }
            var byStage: [String: [String: [String: JSONValue]]] = [:]
            for stage in stageTypes {
                let path = run + "/outputs/\(stage.id).jsonl"
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                var records: [String: [String: JSONValue]] = [:]
                for line in text.split(separator: "\n") {
                    if let record = try JSONValue.parse(String(line)).objectValue,
                        let id = record["row_id"]?.stringValue
                    {
                        records[id] = record
                    }
                }
                byStage[stage.id] = records
            }
            outputs.append(byStage)
        }

        var agreements: [FieldAgreement] = []
        var numeric: [NumericField] = []
        for stage in stageTypes {
            let ids = Set(outputs.flatMap { $0[stage.id]?.keys.map { $0 } ?? [] }).sorted()
            for field in stage.fields {
                func labels(_ v: Int) -> [String: String] {
                    var result: [String: String] = [:]
                    for (id, record) in outputs[v][stage.id] ?? [:] {
                        if let value = record[field], !value.isNull { result[id] = value.textForm }
                    }
                    return result
                }
                let perVariant = (0..<outputs.count).map(labels)
                var kappa = [[Double?]](
                    repeating: [Double?](repeating: nil, count: outputs.count), count: outputs.count)
                for i in 0..<outputs.count {
                    for j in 0..<outputs.count {
                        let common = ids.filter { perVariant[i][$0] != nil && perVariant[j][$0] != nil }
                        kappa[i][j] =
                            i == j
                            ? 1
                            : Statistics.cohenKappa(
                                common.map { perVariant[i][$0]! }, common.map { perVariant[j][$0]! }, weights: .none)
                    }
                }
                let categories = Array(Set(perVariant.flatMap(\.values))).sorted()
                let complete = ids.filter { id in perVariant.allSatisfy { $0[id] != nil } }
                let table = complete.map { id in
                    categories.map { c in perVariant.filter { $0[id] == c }.count }
                }
                let index = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, Double($0)) })
                let data = perVariant.map { labels in ids.map { labels[$0].flatMap { index[$0] } } }
                agreements.append(
                    FieldAgreement(
                        stage: stage.id, field: field, kappa: kappa,
                        fleiss: outputs.count > 1 ? Statistics.fleissKappa(table) : nil,
                        alpha: outputs.count > 1 ? Statistics.krippendorffAlpha(data, level: .nominal) : nil,
                        rows: complete.count))
            }
            // Numeric outputs (scores, confidences): mean and standard deviation per variant.
            let numericFields = Set(
                (outputs.first?[stage.id] ?? [:]).sorted { $0.key < $1.key }.map(\.value).flatMap { record in
                    record.compactMap { key, value -> String? in
                        if case .double = value { return key }
                        if case .int = value, key != "index", key != "dimension" { return key }
                        return nil
                    }
                }
            ).sorted()
            for field in numericFields where !["sample_index"].contains(field) {
                var means: [Double?] = []
                var stds: [Double?] = []
                for variant in outputs {
                    let values = (variant[stage.id] ?? [:]).values.compactMap { $0[field]?.doubleValue }
                    guard !values.isEmpty else {
                        means.append(nil)
                        stds.append(nil)
                        continue
                    }
                    let mean = values.reduce(0, +) / Double(values.count)
                    means.append(mean)
                    stds.append(
                        (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot())
                }
                numeric.append(NumericField(stage: stage.id, field: field, mean: means, std: stds))
            }
        }
        var summary = AblationSummary(name: state.name, rows: rows, agreements: agreements, numeric: numeric)
        try summary.compareWithBest()
        return summary
    }

    /// Each variant's accuracy against the most accurate one's, per gold field: whether the gap
    /// is more than the noise of the rows they share.
    mutating func compareWithBest() throws {
        let keys = goldKeys
        guard !keys.isEmpty else { return }
        let labels = try rows.map { try GoldLabels.load(run: $0.run) }
        for key in keys {
            guard let top = best({ $0.gold[key]?.accuracy }), let topRows = labels[top].fields[key] else { continue }
            for i in rows.indices where i != top {
                guard let rowsHere = labels[i].fields[key] else { continue }
                rows[i].versusBest[key] = GoldLabels.difference(topRows, rowsHere)
            }
        }
    }

    static func seconds(between start: String, and end: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let a = formatter.date(from: start), let b = formatter.date(from: end) else { return nil }
        return b.timeIntervalSince(a)
    }

    /// The gold metrics, in a stable order.
    var goldKeys: [String] { Array(Set(rows.flatMap { $0.gold.keys })).sorted() }

    /// Index of the best row by `value` (higher is better unless `lower`); nil when no row has one.
    func best(_ value: (Row) -> Double?, lower: Bool = false) -> Int? {
        let scored = rows.enumerated().compactMap { i, row in value(row).map { (i, $0) } }
        guard !scored.isEmpty else { return nil }
        return (lower ? scored.min { $0.1 < $1.1 } : scored.max { $0.1 < $1.1 })?.0
    }

    static func rounded(_ x: Double?) -> JSONValue { x.map { .double(($0 * 1e6).rounded() / 1e6) } ?? .null }

    var json: JSONValue {
        let names = rows.map(\.name)
        var bests: [String: JSONValue] = [:]
        for key in goldKeys {
            bests["\(key).accuracy"] = best { $0.gold[key]?.accuracy }.map { .string(names[$0]) } ?? .null
            bests["\(key).macro_f1"] = best { $0.gold[key]?.macroF1 }.map { .string(names[$0]) } ?? .null
        }
        bests["tokens"] = best({ Double($0.tokensIn + $0.tokensOut) }, lower: true).map { .string(names[$0]) } ?? .null
        bests["wall_seconds"] = best({ $0.wallSeconds }, lower: true).map { .string(names[$0]) } ?? .null
        return [
            "name": .string(name),
            "variants": .array(
                rows.map { row in
                    [
                        "name": .string(row.name), "assignments": .object(row.assignments), "run": .string(row.run),
                        "status": .string(row.status),
                        "gold": .object(
                            row.gold.mapValues {
                                var score: [String: JSONValue] = [
                                    "accuracy": Self.rounded($0.accuracy), "macro_f1": Self.rounded($0.macroF1),
                                    "n": .int(Int64($0.n)),
                                ]
                                if let kappa = $0.kappa { score["kappa"] = Self.rounded(kappa) }
                                if let intervals = $0.intervals {
                                    score["accuracy_ci"] = .array(
                                        [intervals.accuracy.lower, intervals.accuracy.upper].map(Self.rounded))
                                    score["macro_f1_ci"] = .array(
                                        [intervals.macroF1.lower, intervals.macroF1.upper].map(Self.rounded))
                                }
                                return .object(score)
                            }),
                        "versus_best": .object(row.versusBest.mapValues(\.json)),
                        "tokens_in": .int(Int64(row.tokensIn)), "tokens_out": .int(Int64(row.tokensOut)),
                        "new_requests": .int(Int64(row.newRequests)),
                        "cached_requests": .int(Int64(row.cachedRequests)),
                        "engine_requests": .int(Int64(row.engineRequests)),
                        "wall_seconds": Self.rounded(row.wallSeconds),
                    ]
                }),
            "agreement": .array(
                agreements.map { a in
                    [
                        "stage": .string(a.stage), "field": .string(a.field),
                        "variants": .array(names.map(JSONValue.string)),
                        "cohen_kappa": .array(a.kappa.map { .array($0.map(Self.rounded)) }),
                        "fleiss_kappa": Self.rounded(a.fleiss), "krippendorff_alpha_nominal": Self.rounded(a.alpha),
                        "rows_rated_by_all": .int(Int64(a.rows)),
                    ]
                }),
            "numeric": .array(
                numeric.map { n in
                    [
                        "stage": .string(n.stage), "field": .string(n.field),
                        "mean": .array(n.mean.map(Self.rounded)), "std": .array(n.std.map(Self.rounded)),
                    ]
                }),
            "best": .object(bests),
        ]
    }

    static func format(_ x: Double?, digits: Int = 3) -> String {
        x.map { String(format: "%.\(digits)f", $0) } ?? "n/a"
    }

    /// `x` to three decimals with its interval after it: `0.502 [0.487, 0.518]`.
    static func format(_ x: Double?, _ interval: Interval?) -> String {
        guard let x else { return "n/a" }
        return RunReport.decimal(x, interval)
    }

    var markdown: String {
        var lines = [
            "# Ablation \(name)", "",
            "\(rows.count) variants; ★ marks the best per column, ≈ an accuracy within the noise of the best "
                + "(the paired bootstrap 95% interval of their difference holds 0). Brackets: 95% intervals.", "",
        ]
        let gold = goldKeys
        var header = "| variant |"
        var rule = "|---|"
        for key in gold {
            header += " \(key) accuracy | \(key) macro-F1 |"
            rule += "---|---|"
        }
        header += " tokens in | tokens out | new requests | cached | wall s |"
        rule += "---|---|---|---|---|"
        lines += [header, rule]
        let bestTokens = best({ Double($0.tokensIn + $0.tokensOut) }, lower: true)
        let bestWall = best({ $0.wallSeconds }, lower: true)
        for (i, row) in rows.enumerated() {
            var line = "| \(row.name) |"
            for key in gold {
                let accuracy =
                    best { $0.gold[key]?.accuracy } == i ? " ★" : row.versusBest[key]?.withinNoise == true ? " ≈" : ""
                let f1 = best { $0.gold[key]?.macroF1 } == i ? " ★" : ""
                line +=
                    " \(Self.format(row.gold[key]?.accuracy, row.gold[key]?.intervals?.accuracy))\(accuracy) | "
                    + "\(Self.format(row.gold[key]?.macroF1, row.gold[key]?.intervals?.macroF1))\(f1) |"
            }
            line +=
                " \(row.tokensIn)\(bestTokens == i ? " ★" : "") | \(row.tokensOut) | \(row.newRequests) | "
                + "\(row.cachedRequests) | \(Self.format(row.wallSeconds, digits: 1))\(bestWall == i ? " ★" : "") |"
            lines.append(line)
        }
        for agreement in agreements {
            lines += [
                "", "## Agreement: \(agreement.stage).\(agreement.field)", "",
                "Fleiss' kappa \(Self.format(agreement.fleiss)), Krippendorff's alpha (nominal) "
                    + "\(Self.format(agreement.alpha)) over \(agreement.rows) rows every variant labeled. "
                    + "Cohen's kappa between variants:", "",
                "| | " + rows.map(\.name).joined(separator: " | ") + " |",
                "|---|" + String(repeating: "---|", count: rows.count),
            ]
            for (i, row) in rows.enumerated() {
                lines.append(
                    "| \(row.name) | " + agreement.kappa[i].map { Self.format($0, digits: 2) }.joined(separator: " | ")
                        + " |")
            }
        }
        if !numeric.isEmpty {
            lines += [
                "", "## Numeric outputs (mean ± std)", "",
                "| field | " + rows.map(\.name).joined(separator: " | ") + " |",
                "|---|" + String(repeating: "---|", count: rows.count),
            ]
            for field in numeric {
                lines.append(
                    "| \(field.stage).\(field.field) | "
                        + zip(field.mean, field.std).map { "\(Self.format($0)) ± \(Self.format($1))" }.joined(
                            separator: " | ") + " |")
            }
        }
        lines += ["", "Runs: " + rows.map { "`\($0.run)`" }.joined(separator: ", "), ""]
        return lines.joined(separator: "\n")
    }
}
