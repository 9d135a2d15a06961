import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import Yams

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
        try node.checkKeys(StageCatalog.commonKeys + ["criteria"] + ownKeys)
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
