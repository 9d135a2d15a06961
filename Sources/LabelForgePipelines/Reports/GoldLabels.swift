import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel

/// A run's predictions beside their gold labels, row by row, for every labeled field with a gold
/// field (`stage.field` → row ID → pair), read from its `dataset.jsonl`. Labels are lowercased, as
/// the run's summary scores them. This is what a paired comparison of two runs resamples: the same
/// rows, drawn together.
struct GoldLabels {
    struct Pair {
        var predicted: String
        var gold: String
    }

    var fields: [String: [String: Pair]] = [:]
    /// `stage.field` → how many labeled examples the field's classifier learns from (0 without
    /// any); absent for a field whose pool changed since the run.
    var labeledExamples: [String: Int] = [:]

    /// The labeled examples each labeled field of a stage learns from: an embedding classifier's
    /// or tagger's pool (the examples it used, per attribute), a chat stage's worked-example pool.
    static func labeledExamples(_ stage: RunConfig.Stage) -> [String: Int] {
        func count(_ pool: ExamplePool?) -> Int? { pool.map { $0.stale == nil ? $0.examples.count : nil } ?? 0 }
        func count(_ pool: PromptExamples?) -> Int? { pool.map { $0.stale == nil ? $0.records.count : nil } ?? 0 }
        var counts: [String: Int?] = [:]
        switch stage.options {
        case let options as ClassifyOptions:
            counts["label"] = options.examples != nil ? count(options.examples) : count(options.promptExamples)
        case let options as TagOptions:
            for (i, attribute) in options.attributes.enumerated() {
                counts[attribute.name] =
                    options.embedding.map { count($0.classifiers[i].pool) } ?? count(options.examples)
            }
        default: break
        }
        return Dictionary(
            uniqueKeysWithValues: counts.compactMap { field, n in n.map { ("\(stage.id).\(field)", $0) } })
    }

    /// Reads `run`'s resolved config for its labeled fields, then its final rows; a run with no
    /// gold field reads no rows.
    static func load(run directory: String) throws -> GoldLabels {
        let config = try RunConfig.load(file: directory + "/config.resolved.yaml", resolved: true)
        let pairs = config.stages.flatMap { stage in
            HTMLReport.labelFields(stage).compactMap { field, gold in gold.map { (stage.id, field, $0) } }
        }
        var labels = GoldLabels()
        guard !pairs.isEmpty else { return labels }
        for stage in config.stages { labels.labeledExamples.merge(Self.labeledExamples(stage)) { _, new in new } }
        HTMLReport.forEachLine(directory + "/dataset.jsonl") { row in
            guard let id = row["row_id"]?.stringValue else { return }
            for (stage, field, goldField) in pairs {
                guard let predicted = row["outputs"]?[stage]?[field], !predicted.isNull,
                    let gold = row["input"]?[goldField], !gold.isNull
                else { continue }
                labels.fields["\(stage).\(field)", default: [:]][id] = Pair(
                    predicted: predicted.textForm.lowercased(), gold: gold.textForm.lowercased())
            }
        }
        return labels
    }

    /// `b`'s accuracy minus `a`'s on the rows both labeled, with its paired bootstrap interval;
    /// `nil` when they share no row.
    static func difference(_ a: [String: Pair], _ b: [String: Pair], bootstrap: Bootstrap = Bootstrap())
        -> AccuracyDifference?
    {
        let common = a.keys.filter { b[$0] != nil }.sorted()
        let gold = common.map { a[$0]!.gold }
        let first = common.map { a[$0]!.predicted }
        let second = common.map { b[$0]!.predicted }
        guard let interval = bootstrap.accuracyDifference(gold: gold, second, first) else { return nil }
        let right = { (labels: [String]) in Double(zip(labels, gold).filter { $0 == $1 }.count) }
        return AccuracyDifference(
            n: common.count, difference: (right(second) - right(first)) / Double(common.count), interval: interval)
    }
}

/// How much more accurate one labeler is than another on the same rows, and whether that is more
/// than the noise of this many rows.
public struct AccuracyDifference: Sendable {
    public var n: Int
    public var difference: Double
    /// The paired bootstrap 95% interval of `difference`.
    public var interval: Interval

    /// The interval holds 0: these rows cannot tell the two apart.
    public var withinNoise: Bool { interval.contains(0) }

    var json: JSONValue {
        [
            "n": .int(Int64(n)), "difference": .double(Answers.rounded(difference)),
            "difference_ci": [.double(Answers.rounded(interval.lower)), .double(Answers.rounded(interval.upper))],
            "within_noise": .bool(withinNoise),
        ]
    }

    /// `+3.1 points [−0.4, +6.5], within the noise` (points of accuracy).
    var phrase: String {
        String(format: "%+.1f points [%+.1f, %+.1f], ", difference * 100, interval.lower * 100, interval.upper * 100)
            + (withinNoise ? "within the noise" : "beyond the noise") + " (n=\(n), paired bootstrap 95%)"
    }

}
