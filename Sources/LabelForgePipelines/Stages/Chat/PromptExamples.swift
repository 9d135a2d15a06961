import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeVectors

/// Worked examples for a chat stage's prompt (`examples:` of `classify` and `tag`), chosen per row
/// from a labeled JSONL pool and rendered by the template's `{{#examples}}…{{/examples}}` section,
/// where each example's fields are its own (`{{text}}`, `{{sentiment}}`).
///
/// `select: fixed` takes the pool's first `k`; `similar` the `k` whose `field` is nearest the row's
/// `query` field (cosine, from an engine with `task: embed`), nearest first; `diverse` picks them by
/// maximal marginal relevance (each next example the one that is near the row and far from those
/// already picked, weighted by `diversity`). An example whose text is the row's, or whose `id` is
/// the row's ID, is never chosen for it (leave-one-out on gold data). The chosen examples are part
/// of the rendered prompt, so they are in the request's cache key; ties go to the pool's order, and
/// the pool's SHA-256 is in the resolved config.
public struct PromptExamples: Sendable {
    public enum Selection: String, Sendable, CaseIterable {
        case fixed, similar, diverse
    }

    public var path: String
    public var k = 4
    public var select = Selection.fixed
    /// The example's text, compared with the row's.
    public var field = "text"
    /// The row's text the examples are compared with; by default the same name as `field`.
    public var query: String
    /// The engine (`task: embed`) that embeds the row's and the examples' texts (similar, diverse).
    public var engine: String?
    /// `diverse`: how much distance from the examples already picked counts, from 0 (none: as
    /// `similar`) to 1 (only that).
    public var diversity = 0.5
    public var sha256: String
    public var records: [[String: JSONValue]]
    /// Read back from a run's resolved config whose pool has since changed or gone: why no row can be
    /// labeled as the run labeled it.
    public var stale: String? = nil

    static let keys = ["path", "k", "select", "field", "query", "engine", "diversity", "sha256"]

    /// Reads `examples:` and its pool.
    /// - Throws: `LabelForgeError.invalidConfig` naming the key, or the file and line of a pool line
    ///   that is not a JSON object or lacks `field`.
    static func parse(_ node: ConfigReader, resolved: Bool = false) throws -> PromptExamples {
        try node.checkKeys(keys)
        let file = try PoolFile.open(node, resolved: resolved)
        let kNode = try node.child("k")
        let k = try kNode?.int() ?? 4
        if k < 1 { throw kNode!.error("k (examples per prompt) must be at least 1.") }
        let select =
            try node.child("select").map { Selection(rawValue: try $0.oneOf(Selection.allCases.map(\.rawValue)))! }
            ?? .fixed
        let field = try node.child("field")?.string() ?? "text"
        let engine = try node.child("engine")?.string()
        if select != .fixed && engine == nil {
            throw node.error("select: \(select.rawValue) needs 'engine': an engine with task: embed to compare texts.")
        }
        let diversityNode = try node.child("diversity")
        let diversity = try diversityNode?.double() ?? 0.5
        if !(0...1).contains(diversity) { throw diversityNode!.error("diversity is between 0 and 1.") }
        return PromptExamples(
            path: file.path, k: k, select: select, field: field, query: try node.child("query")?.string() ?? field,
            engine: engine, diversity: diversity, sha256: file.sha256,
            records: try file.records(field: field).map(\.record), stale: file.stale)
    }

    var resolvedJSON: JSONValue {
        var json: [String: JSONValue] = [
            "path": .string(path), "k": .int(Int64(k)), "select": .string(select.rawValue), "field": .string(field),
            "query": .string(query), "sha256": .string(sha256),
        ]
        if let engine { json["engine"] = .string(engine) }
        if select == .diverse { json["diversity"] = .double(diversity) }
        return .object(json)
    }

    /// The examples for one row, as the template's `examples` list.
    /// - Throws: `StageFailure` when the row has no text to compare (`missing_field`) or an
    ///   embeddings request fails.
    func chosen(for row: RowContext, in context: StageContext) async throws -> JSONValue {
        if let stale { throw StageFailure(errorClass: "examples_changed", message: stale) }
        let text = row.value(at: query).flatMap { $0.isNull ? nil : $0.textForm }
        let candidates = records.indices.filter { i in
            records[i][field]?.textForm != text && records[i]["id"]?.textForm != row.rowID
        }
        let picked: [Int]
        switch select {
        case .fixed:
            picked = Array(candidates.prefix(k))
        case .similar, .diverse:
            guard let text else {
                throw StageFailure(
                    errorClass: "missing_field", message: "the row has no text in '\(query)' to choose examples by")
            }
            let engine = try context.endpoint(.embed)
            let limit = context.truncationLimit(.embed)
            func request(_ text: String) -> PreparedRequest {
                PreparedRequest(.embedding(text: text, modelID: engine.modelID, truncate: limit), on: engine)
            }
            // Claimed before the row's own request, so the row that sends them lists them first.
            let pool = context.claimShared(
                "examples", on: engine, requests: { records.map { request($0[field]?.textForm ?? "") } },
                derive: { answers in try answers.map { References.normalized(try $0.singleVector().vector) } })
            let answer = try await context.send(request(text), on: engine).singleVector()
            context.countTokens(in: answer.promptTokens)
            let vectors = try await pool.value()
            let row = References.normalized(answer.vector)
            let similarity = Dictionary(
                uniqueKeysWithValues: candidates.map { ($0, References.dot(row, vectors[$0])) })
            picked =
                select == .similar
                ? Array(candidates.sorted { (similarity[$0]!, $1) > (similarity[$1]!, $0) }.prefix(k))
                : Self.maximalMarginalRelevance(
                    candidates, similarity: similarity, vectors: vectors, k: k, diversity: diversity)
        }
        return .array(picked.map { .object(records[$0]) })
    }

    /// Picks `k` of `candidates` one at a time: each the one with the highest `(1 − diversity) ·
    /// similarity to the row − diversity · its highest similarity to those already picked`; ties go
    /// to the pool's order.
    static func maximalMarginalRelevance(
        _ candidates: [Int], similarity: [Int: Double], vectors: [[Double]], k: Int, diversity: Double
    ) -> [Int] {
        var picked: [Int] = []
        var remaining = candidates
        while picked.count < k, !remaining.isEmpty {
            func score(_ i: Int) -> Double {
                let redundancy = picked.map { References.dot(vectors[i], vectors[$0]) }.max() ?? 0
                return (1 - diversity) * similarity[i]! - diversity * redundancy
            }
            let scores = remaining.map(score)
            let best = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) }!
            picked.append(remaining.remove(at: best))
        }
        return picked
    }
}
