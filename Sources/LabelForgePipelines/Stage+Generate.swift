import Foundation
import LabelForgeCore
import LabelForgeLLM
import Yams

/// `generate`: free text from a template, `n` samples per row.
///
/// With `n > 1` every row fans out into `n` rows, each with its own seed (the sample index is part
/// of the seed, so sample 0 keeps the seed of `n: 1`), its own request and cache entry, and a row
/// ID derived from the parent's ID, the stage id and the sample index.
public struct GenerateStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: GenerateOptions
    public let version = 1
    public let outputFields = ["text", "finish_reason"]
    public var templateVariables: [String: JSONValue] { [:] }
    public var constraint: OutputConstraint? { nil }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var samples: Int { options.samples }

    /// An empty answer is retried with the next retry seed; anything else is kept as generated.
    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        Self.freeText(response)
    }

    /// `text` (trimmed) and `finish_reason`; an empty answer is a failure (`empty_output`), retried.
    static func freeText(_ response: ChatResponse) -> Result<[String: JSONValue], StageFailure> {
        let text = response.content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            return .failure(StageFailure(errorClass: "empty_output", message: "the engine generated no text"))
        }
        return .success(["text": .string(text), "finish_reason": response.finishReason.map(JSONValue.string) ?? .null])
    }
}

/// `filter`: keeps the rows its predicate accepts; no request. Rejected rows go to
/// `outputs/<stage>.rejected.jsonl` with the reason, and are absent downstream.
public struct FilterStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: FilterOptions
    public let version = 1

    public var outputFields: [String] { options.record.isEmpty ? ["kept"] : ["kept", "values"] }

    public var optionReferences: [String] { options.keep.fields + options.record }
    public var rowSet: RowSet { .filters }

    /// Keeps or drops the row by its predicate; the output records `kept` either way.
    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let rejection = rejection(of: row)
        return StageResult(output: output(for: row, kept: rejection == nil), rejection: rejection)
    }

    /// `nil` when the row is kept, else why not.
    func rejection(of row: RowContext) -> String? {
        options.keep.rejection { row.value(at: $0) }
    }

    /// The output for a row: `kept`, and the values of `record` (e.g. a judge's scores) if any.
    func output(for row: RowContext, kept: Bool) -> [String: JSONValue] {
        guard !options.record.isEmpty else { return ["kept": .bool(kept)] }
        var values: [String: JSONValue] = [:]
        for path in options.record { values[path] = row.value(at: path) ?? .null }
        return ["kept": .bool(kept), "values": .object(values)]
    }
}

/// `generate`'s options: samples per row (`n`); more than one fans the row out.
public struct GenerateOptions: ParsedStageOptions {
    public var samples = 1

    static let keys = ["n"]

    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> GenerateOptions {
        let samplesNode = try node.child("n")
        let samples = try samplesNode?.int() ?? 1
        if samples < 1 { throw samplesNode!.error("n must be at least 1.") }
        return GenerateOptions(samples: samples)
    }

    public var resolvedJSON: [String: JSONValue] { ["n": .int(Int64(samples))] }
}

/// `filter`'s options: the predicate rows must satisfy to continue (`keep`), and field paths whose
/// values every output line records (`record`), kept or rejected.
public struct FilterOptions: ParsedStageOptions {
    public var keep: RowPredicate
    public var record: [String] = []

    static let keys = ["keep", "record"]

    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> FilterOptions {
        FilterOptions(
            keep: try RowPredicate.parse(try node.require("keep")), record: try node.child("record")?.stringList() ?? []
        )
    }

    /// `record` is listed only when given, so filters written before it keep their plan hashes.
    public var resolvedJSON: [String: JSONValue] {
        record.isEmpty ? ["keep": keep.json] : ["keep": keep.json, "record": .array(record.map(JSONValue.string))]
    }
}

/// `quality_filter`: shorthand for a `rubric_score` judge (`<id>_judge`) and a `filter` (`<id>`)
/// on its scores, expanded into those two stages when the config is read (so
/// `config.resolved.yaml` lists them). Keys: the judge's (`template`, `criteria`, `engine`,
/// `sampling`, …) plus `min_score` with `on: mean` (the mean score, the default) or `on: each`
/// (every criterion), or `min_scores: {criterion: minimum}`; `score: expected` compares the
/// judge's logprob-weighted expected scores instead of the sampled ones (finer, and steadier with
/// small judges; it needs logprobs). Rejected rows and their scores go to `outputs/<id>.rejected.jsonl`.
enum QualityFilter {
    static let ownKeys = ["min_score", "min_scores", "on", "score"]

    /// The two stage nodes a `quality_filter` node stands for; `nil` for any other stage type.
    static func expand(_ node: ConfigReader) throws -> [ConfigReader]? {
        guard try node.child("type")?.string() == "quality_filter" else { return nil }
        try node.checkKeys(StageRegistry.commonKeys + ["criteria"] + ownKeys)
        let id = try node.require("id").string()
        let judge = id + "_judge"
        func scalar(_ text: String) -> Node { .scalar(Node.Scalar(text)) }
        func mapping(_ pairs: [(String, Node)]) -> Node {
            .mapping(Node.Mapping(pairs.map { (scalar($0.0), $0.1) }, .implicit, .any, node.node.mark))
        }
        func clause(_ field: String, _ minimum: Node) -> Node { mapping([("field", scalar(field)), ("gte", minimum)]) }

        let keep: Node
        let minScore = try node.child("min_score")
        let minScores = try node.child("min_scores")
        let on = try node.child("on")?.oneOf(["mean", "each"]) ?? "mean"
        // `expected`: the judge's logprob-weighted scores, finer than the sampled integers.
        let expected = try node.child("score")?.oneOf(["sampled", "expected"]) == "expected"
        let (mean, each) = expected ? ("expected_score", "expected_scores") : ("score", "scores")
        switch (minScore, minScores) {
        case (let minScore?, nil):
            _ = try minScore.double()
            if on == "mean" {
                keep = clause(judge + "." + mean, minScore.node)
            } else {
                let names = try node.require("criteria").items().map { try $0.require("name").string() }
                keep = mapping([
                    ("all", .sequence(Node.Sequence(names.map { clause(judge + ".\(each)." + $0, minScore.node) })))
                ])
            }
        case (nil, let minScores?):
            if let on = try node.child("on") {
                throw on.error("'on' goes with min_score; min_scores names its criteria.")
            }
            let names = try node.require("criteria").items().map { try $0.require("name").string() }
            var clauses: [Node] = []
            for entry in try minScores.mapping() {
                guard names.contains(entry.key) else {
                    throw entry.value.error(
                        "'\(entry.key)' is not a criterion of this stage (criteria: \(names.joined(separator: ", "))).")
                }
                _ = try entry.value.double()
                clauses.append(clause(judge + ".\(each)." + entry.key, entry.value.node))
            }
            keep = mapping([("all", .sequence(Node.Sequence(clauses)))])
        default:
            throw node.error("a quality_filter needs min_score (with on: mean or each) or min_scores, not both.")
        }
        var judgePairs: [(String, Node)] = []
        for entry in try node.mapping() where !ownKeys.contains(entry.key) {
            switch entry.key {
            case "id": judgePairs.append(("id", scalar(judge)))
            case "type": judgePairs.append(("type", scalar("rubric_score")))
            default: judgePairs.append((entry.key, entry.value.node))
            }
        }
        let filter = mapping([
            ("id", scalar(id)), ("type", scalar("filter")), ("keep", keep),
            ("record", .sequence(Node.Sequence([scalar(judge + "." + each), scalar(judge + "." + mean)]))),
        ])
        return [
            ConfigReader(file: node.file, node: mapping(judgePairs), path: node.path),
            ConfigReader(file: node.file, node: filter, path: node.path),
        ]
    }
}
