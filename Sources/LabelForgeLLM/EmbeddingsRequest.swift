import Foundation
import LabelForgeCore

/// A request for one vector per input text (`POST /v1/embeddings`).
public struct EmbeddingsRequest: Sendable, Hashable {
    public var input: [String]
    /// Texts longer than this many tokens (special tokens included) are cut to it, as
    /// sentence-transformers cuts to `max_seq_length`; `nil` sends them whole.
    public var truncatePromptTokens: Int?

    public init(input: [String], truncatePromptTokens: Int? = nil) {
        self.input = input
        self.truncatePromptTokens = truncatePromptTokens
    }

    /// The wire body; `model` is the configured id, never a local path. The limit travels as vLLM's
    /// `truncate_prompt_tokens` (`TruncatingTransport` applies it for llama.cpp).
    public func body(modelID: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(modelID), "input": .array(input.map(JSONValue.string)), "encoding_format": "float",
        ]
        if let truncatePromptTokens { body["truncate_prompt_tokens"] = .int(Int64(truncatePromptTokens)) }
        return .object(body)
    }
}

/// The vectors of an embeddings response, in input order.
///
/// Cached entries keep the vectors as a binary payload (little-endian float32, one vector after
/// another) and the rest of the body as JSON, so a vector costs 4 bytes per dimension on disk.
public struct EmbeddingsResponse: Sendable, Hashable {
    public var vectors: [[Float]]
    public var promptTokens: Int
    /// For each input cut to the request's limit, its token count before the cut (`input_tokens`,
    /// which `TruncatingTransport` adds to the answer's item); `nil` for inputs sent whole.
    public var truncatedFrom: [Int?] = []

    /// How many inputs were cut to the limit.
    public var truncatedCount: Int { truncatedFrom.filter { $0 != nil }.count }

    /// Parses a body as the engine sent it (`data[].embedding`, ordered by `data[].index`).
    /// - Throws: `LabelForgeError.invalidResponse` when a vector is missing or the dimensions differ.
    public init(raw: JSONValue) throws {
        guard let data = raw["data"]?.arrayValue, !data.isEmpty else {
            throw LabelForgeError(
                .invalidResponse,
                "The engine's embeddings response has no data[]: \(CanonicalJSON.string(raw).prefix(300))")
        }
        let ordered = data.enumerated().sorted {
            ($0.element["index"]?.intValue ?? $0.offset) < ($1.element["index"]?.intValue ?? $1.offset)
        }
        var vectors: [[Float]] = []
        for (_, item) in ordered {
            guard let values = item["embedding"]?.arrayValue else {
                throw LabelForgeError(
                    .invalidResponse, "An embeddings item has no 'embedding' array (base64 encoding is not requested).")
            }
            vectors.append(values.map { Float($0.doubleValue ?? .nan) })
            truncatedFrom.append(item["input_tokens"]?.intValue)
        }
        guard Set(vectors.map(\.count)).count == 1 else {
            throw LabelForgeError(.invalidResponse, "The engine returned vectors of different dimensions.")
        }
        self.vectors = vectors
        promptTokens = raw["usage"]?["prompt_tokens"]?.intValue ?? 0
    }

    /// Rebuilds a response from a cached entry's JSON and binary payload (see `split(_:)`).
    /// - Throws: `LabelForgeError.invalidResponse` when the payload does not match the recorded shape.
    public init(json: JSONValue, payload: Data) throws {
        let count = json["count"]?.intValue ?? 0
        let dimension = json["dimension"]?.intValue ?? 0
        guard count > 0, dimension > 0, payload.count == count * dimension * 4 else {
            throw LabelForgeError(.invalidResponse, "A cached embeddings entry's payload does not match its shape.")
        }
        let floats = Self.decodeFloats(payload)
        vectors = (0..<count).map { Array(floats[($0 * dimension)..<(($0 + 1) * dimension)]) }
        promptTokens = json["usage"]?["prompt_tokens"]?.intValue ?? 0
        let cut = json["truncated_from"]?.arrayValue ?? []
        truncatedFrom = (0..<count).map { $0 < cut.count ? cut[$0].intValue : nil }
    }

    /// A raw body as the JSON kept in the cache (shape and usage) and the vectors as a payload.
    public static func split(_ raw: JSONValue) throws -> (json: JSONValue, payload: Data) {
        let response = try EmbeddingsResponse(raw: raw)
        var json: [String: JSONValue] = [
            "object": "embeddings", "count": .int(Int64(response.vectors.count)),
            "dimension": .int(Int64(response.vectors.first?.count ?? 0)), "usage": raw["usage"] ?? .null,
        ]
        // Only when an input was cut, so the entries of texts sent whole stay as they were.
        if response.truncatedCount > 0 {
            json["truncated_from"] = .array(response.truncatedFrom.map { $0.map { .int(Int64($0)) } ?? .null })
        }
        return (.object(json), encodeFloats(response.vectors.flatMap { $0 }))
    }

    /// Little-endian float32 bytes.
    public static func encodeFloats(_ values: [Float]) -> Data {
        var data = Data(capacity: values.count * 4)
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Floats from little-endian float32 bytes.
    public static func decodeFloats(_ data: Data) -> [Float] {
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count - 3, by: 4).map { i in
            Float(
                bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(
                    bytes[i + 3]) << 24)
        }
    }
}

/// A request to score documents against a query (`POST /v1/rerank`; vLLM and llama.cpp share it).
public struct RerankRequest: Sendable, Hashable {
    public var query: String
    public var documents: [String]
    /// (query, document) pairs longer than this many tokens are cut to it; `nil` sends them whole.
    public var truncatePromptTokens: Int?

    public init(query: String, documents: [String], truncatePromptTokens: Int? = nil) {
        self.query = query
        self.documents = documents
        self.truncatePromptTokens = truncatePromptTokens
    }

    /// The wire body; every document is scored (`top_n` = all), so results map back by index.
    public func body(modelID: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(modelID), "query": .string(query), "documents": .array(documents.map(JSONValue.string)),
            "top_n": .int(Int64(documents.count)),
        ]
        if let truncatePromptTokens { body["truncate_prompt_tokens"] = .int(Int64(truncatePromptTokens)) }
        return .object(body)
    }
}

extension RerankRequest {
    /// The body of vLLM's `/score`: `text_1` the query, `text_2` the documents.
    public func scoreBody(modelID: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(modelID), "text_1": .string(query), "text_2": .array(documents.map(JSONValue.string)),
        ]
        if let truncatePromptTokens { body["truncate_prompt_tokens"] = .int(Int64(truncatePromptTokens)) }
        return .object(body)
    }
}

/// Relevance scores of a rerank response, one per document in request order.
public struct RerankResponse: Sendable, Hashable {
    public var scores: [Double]
    /// For each (query, document) pair cut to the request's limit, its token count before the cut
    /// (`input_tokens`, added by `TruncatingTransport`); `nil` for pairs sent whole.
    public var truncatedFrom: [Int?]

    /// Parses `results[] {index, relevance_score}` (or `/score`'s `data[] {index, score}`) into
    /// scores by document index.
    /// - Parameters:
    ///   - raw: the response body.
    ///   - documents: how many documents were sent.
    /// - Throws: `LabelForgeError.invalidResponse` when a document has no score.
    public init(raw: JSONValue, documents: Int) throws {
        var scores = [Double?](repeating: nil, count: documents)
        var truncatedFrom = [Int?](repeating: nil, count: documents)
        // `/v1/rerank` answers `results`, vLLM's `/score` answers `data`.
        for result in raw["results"]?.arrayValue ?? raw["data"]?.arrayValue ?? [] {
            guard let index = result["index"]?.intValue, scores.indices.contains(index),
                let score = result["relevance_score"]?.doubleValue ?? result["score"]?.doubleValue
            else { continue }
            scores[index] = score
            truncatedFrom[index] = result["input_tokens"]?.intValue
        }
        self.truncatedFrom = truncatedFrom
        if let missing = scores.firstIndex(where: { $0 == nil }) {
            throw LabelForgeError(
                .invalidResponse, "The engine's rerank response has no score for document \(missing).")
        }
        self.scores = scores.map { $0! }
    }
}
