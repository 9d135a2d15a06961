import Foundation
import LabelForgeCore
import Synchronization

/// A transport in front of an embedding or rerank engine that fits texts to the model's window as
/// a request's `truncate_prompt_tokens` asks, and marks each text it cut with its token count
/// before the cut (`input_tokens` on the answer's item), so runs can say how many texts were cut.
///
/// - vLLM cuts texts itself (`truncate_prompt_tokens`); texts that may be over the limit are
///   counted with its `/tokenize`.
/// - llama.cpp cannot cut (a text over its window is an HTTP 500): a text over the limit goes as its
///   first tokens from the server's own `/tokenize`, the model's special tokens kept at both ends, as
///   sentence-transformers' tokenizer cuts. Rerank documents must be strings there, so a pair over
///   the limit sends its document cut and decoded back to text (`/detokenize`).
///
/// Texts shorter in bytes than the limit (with a margin: a SentencePiece tokenizer's word marker
/// can make one byte two tokens) are never tokenized. A server that gives each text's token count
/// before the cut itself (`input_tokens`: LabelForge's embedding server) is taken at its word. The request body, and so the cache key, is
/// the one with the whole text.
public final class TruncatingTransport: EngineTransport {
    public let base: any EngineTransport
    public let dialect: EngineDialect
    /// The model id the server knows (vLLM's `/tokenize` checks it).
    public let modelID: String
    /// Special tokens the model adds before and after a text, found once by tokenizing a probe.
    private let specials = Mutex<(leading: Int, trailing: Int)?>(nil)

    public init(base: any EngineTransport, dialect: EngineDialect, modelID: String) {
        self.base = base
        self.dialect = dialect
        self.modelID = modelID
    }

    public var requestsSent: Int { base.requestsSent }

    /// Whether LabelForge can fit texts to a model's window on engines of this dialect.
    public static func truncates(_ dialect: EngineDialect) -> Bool { dialect == .vllm || dialect == .llamacpp }

    public func send(_ request: EngineRequest) async throws -> EngineReply {
        guard let limit = request.body["truncate_prompt_tokens"]?.intValue, limit > 0 else {
            return try await base.send(request)
        }
        switch request.kind {
        case .embeddings: return try await embeddings(request, limit: limit)
        case .rerank, .score: return try await pairs(request, limit: limit)
        default: return try await base.send(request)
        }
    }

    // MARK: Embeddings

    private func embeddings(_ request: EngineRequest, limit: Int) async throws -> EngineReply {
        guard var body = request.body.objectValue, let inputs = body["input"]?.arrayValue?.map(\.textForm) else {
            return try await base.send(request)
        }
        var inputTokens: [Int: Int] = [:]
        var reply: EngineReply
        if dialect == .vllm {
            // vLLM cuts texts itself; what was cut is counted afterwards, unless the server said.
            reply = try await base.send(request)
            let data = reply.body["data"]?.arrayValue ?? []
            if data.contains(where: { $0["input_tokens"] != nil }) {
                // The server counted each text before its cut: only those over the limit were cut.
                return Self.keepingCutMarks(reply, limit: limit)
            }
            let (leading, trailing) = try await specialTokens()
            let candidates = inputs.indices.filter { inputs[$0].utf8.count + leading + trailing + 2 > limit }
            let counted = try await tokenized(candidates.map { inputs[$0] }, special: true)
            for (index, tokens) in zip(candidates, counted) where tokens.count > limit {
                inputTokens[index] = tokens.count
            }
        } else {
            let (leading, trailing) = try await specialTokens()
            let candidates = inputs.indices.filter { inputs[$0].utf8.count + leading + trailing + 2 > limit }
            let counted = try await tokenized(candidates.map { inputs[$0] }, special: true)
            var wire = inputs.map(JSONValue.string)
            for (index, tokens) in zip(candidates, counted) where tokens.count > limit {
                inputTokens[index] = tokens.count
                // The first tokens, and the model's closing special tokens (BERT's [SEP]) kept at the end.
                let kept = Array(tokens.prefix(max(leading, limit - trailing))) + Array(tokens.suffix(trailing))
                wire[index] = .array(kept.map { .int(Int64($0)) })
            }
            body["input"] = .array(wire)
            // llama.cpp takes no such key; the cut above is its equivalent.
            body["truncate_prompt_tokens"] = nil
            reply = try await base.send(EngineRequest(kind: request.kind, body: .object(body)))
        }
        guard !inputTokens.isEmpty, var answer = reply.body.objectValue, let data = answer["data"]?.arrayValue else {
            return reply
        }
        answer["data"] = .array(
            data.enumerated().map { offset, item in
                guard var item = item.objectValue, let count = inputTokens[item["index"]?.intValue ?? offset] else {
                    return item
                }
                item["input_tokens"] = .int(Int64(count))
                return .object(item)
            })
        reply.body = .object(answer)
        return reply
    }

    /// A reply whose items keep `input_tokens` only where the text was longer than `limit`.
    private static func keepingCutMarks(_ reply: EngineReply, limit: Int) -> EngineReply {
        guard var answer = reply.body.objectValue, let data = answer["data"]?.arrayValue else { return reply }
        answer["data"] = .array(
            data.map { item in
                guard var item = item.objectValue, let count = item["input_tokens"]?.intValue, count <= limit else {
                    return item
                }
                item["input_tokens"] = nil
                return .object(item)
            })
        var reply = reply
        reply.body = .object(answer)
        return reply
    }

    // MARK: Rerank and score

    /// A (query, document) pair holds the model's special tokens once around the query and once
    /// after the document (BERT: `[CLS] q [SEP] d [SEP]`); a pair over the limit loses the end of
    /// its document, as sentence-transformers' cross-encoders cut the longer text first.
    private func pairs(_ request: EngineRequest, limit: Int) async throws -> EngineReply {
        let isScore = request.kind == .score
        let queryKey = isScore ? "text_1" : "query"
        let documentsKey = isScore ? "text_2" : "documents"
        guard var body = request.body.objectValue, let query = body[queryKey]?.stringValue,
            let documents = body[documentsKey]?.arrayValue?.map(\.textForm)
        else { return try await base.send(request) }
        let (leading, trailing) = try await specialTokens()
        let pairSpecials = leading + 2 * trailing
        let queryTokens = try await tokenized([query], special: false)[0].count
        let candidates = documents.indices.filter {
            queryTokens + documents[$0].utf8.count + pairSpecials + 2 > limit
        }
        let counted = try await tokenized(candidates.map { documents[$0] }, special: false)
        var inputTokens: [Int: Int] = [:]
        var wire = documents
        for (index, tokens) in zip(candidates, counted) where queryTokens + tokens.count + pairSpecials > limit {
            inputTokens[index] = queryTokens + tokens.count + pairSpecials
            if dialect == .llamacpp {
                wire[index] = try await cut(tokens, to: max(1, limit - queryTokens - pairSpecials))
            }
        }
        if dialect == .llamacpp {
            body[documentsKey] = .array(wire.map(JSONValue.string))
            body["truncate_prompt_tokens"] = nil
        }
        var reply = try await base.send(EngineRequest(kind: request.kind, body: .object(body)))
        let resultsKey = isScore ? "data" : "results"
        guard !inputTokens.isEmpty, var answer = reply.body.objectValue, let results = answer[resultsKey]?.arrayValue
        else { return reply }
        answer[resultsKey] = .array(
            results.map { result in
                guard var result = result.objectValue, let index = result["index"]?.intValue,
                    let count = inputTokens[index]
                else { return result }
                result["input_tokens"] = .int(Int64(count))
                return .object(result)
            })
        reply.body = .object(answer)
        return reply
    }

    /// A document's first `budget` tokens as text (llama.cpp's `/detokenize`), shortened further
    /// while the text tokenizes to more than the budget.
    private func cut(_ tokens: [Int], to budget: Int) async throws -> String {
        var keep = min(budget, tokens.count)
        while true {
            let reply = try await base.send(
                EngineRequest(kind: .detokenize, body: ["tokens": .array(tokens.prefix(keep).map { .int(Int64($0)) })]))
            let text = reply.body["content"]?.stringValue ?? ""
            let count = try await tokenized([text], special: false)[0].count
            if count <= budget || keep <= 1 { return text }
            keep = max(1, keep - max(1, count - budget))
        }
    }

    // MARK: Tokens

    /// The model's special tokens before and after a text: a probe tokenized with and without them.
    private func specialTokens() async throws -> (leading: Int, trailing: Int) {
        if let known = specials.withLock({ $0 }) { return known }
        let probe = "a"
        let with = try await tokens(of: probe, special: true)
        let without = try await tokens(of: probe, special: false)
        var found = (leading: 0, trailing: max(0, with.count - without.count))
        if !without.isEmpty,
            let start = (0...max(0, with.count - without.count)).first(where: {
                Array(with[$0..<min(with.count, $0 + without.count)]) == without
            })
        {
            found = (start, with.count - without.count - start)
        }
        specials.withLock { $0 = found }
        return found
    }

    /// The tokens of each text, concurrently.
    private func tokenized(_ texts: [String], special: Bool) async throws -> [[Int]] {
        try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
            for (index, text) in texts.enumerated() {
                group.addTask { (index, try await self.tokens(of: text, special: special)) }
            }
            var all = [[Int]](repeating: [], count: texts.count)
            for try await (index, tokens) in group { all[index] = tokens }
            return all
        }
    }

    private func tokens(of text: String, special: Bool) async throws -> [Int] {
        let body: JSONValue =
            dialect == .llamacpp
            ? ["content": .string(text), "add_special": .bool(special)]
            : ["model": .string(modelID), "prompt": .string(text), "add_special_tokens": .bool(special)]
        let reply = try await base.send(EngineRequest(kind: .tokenize, body: body))
        guard let tokens = reply.body["tokens"]?.arrayValue else {
            throw LabelForgeError(
                .invalidResponse,
                "The engine's /tokenize answered without tokens: \(CanonicalJSON.string(reply.body).prefix(200))")
        }
        return tokens.map { $0.intValue ?? $0["id"]?.intValue ?? 0 }
    }
}
