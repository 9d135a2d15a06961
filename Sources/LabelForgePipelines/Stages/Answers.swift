import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// What several stage types make of an engine's answer, kept in no one stage's file: a stage names no
/// other stage type.
enum Answers {
    /// An answer as an error quotes it: its first 80 characters, newlines escaped.
    static func quoted(_ text: String) -> String {
        "\"" + String(text.prefix(80)).replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    /// The constrained probability of `label` from per-token logprobs, or `nil` without them.
    static func confidence(of label: String, among labels: [String], logprobs: [TokenLogprob]?) -> Double? {
        guard let logprobs, !logprobs.isEmpty else { return nil }
        var probability = 1.0
        var prefix = ""
        for token in logprobs {
            guard prefix.count < label.count else { break }
            var alternatives = token.top.map { ($0.token, $0.logprob) }
            if !alternatives.contains(where: { $0.0 == token.token }) {
                alternatives.append((token.token, token.logprob))
            }
            let allowed = alternatives.filter { candidate in
                let text = prefix + candidate.0
                return !candidate.0.isEmpty && labels.contains { $0.hasPrefix(text) }
            }
            let total = allowed.reduce(0.0) { $0 + exp($1.1) }
            guard total > 0 else { return nil }
            probability *= exp(token.logprob) / total
            prefix += token.token
        }
        guard prefix == label else { return nil }
        return (probability * 1e6).rounded() / 1e6
    }

    /// Scores as outputs record them: 6 decimals, so outputs do not depend on float noise below that.
    static func rounded(_ value: Double) -> Double { (value * 1e6).rounded() / 1e6 }

    /// A reranker's outputs for one query: each document's score (6 decimals) and the documents
    /// best first (ties in document order); the `judge` method records the same.
    static func rerankFields(scores: [Double]) -> [String: JSONValue] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return [
            "scores": .array(scores.map { .double(($0 * 1e6).rounded() / 1e6) }),
            "order": .array(order.map { .int(Int64($0)) }),
        ]
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
