import Foundation
import LabelForgeCore

/// Anthropic's Message Batches API (`POST /v1/messages/batches`, polled at
/// `GET /v1/messages/batches/{id}`, results read from its `results_url`, cancelled at
/// `POST /v1/messages/batches/{id}/cancel`).
///
/// Each item is the engine's OpenAI chat body (its cache key is that body's), written on the wire
/// as Messages API `params` as the official SDK types them (anthropic 2.17): system messages as
/// `system`, `max_tokens`, `stop` as `stop_sequences`, images as base64 or URL sources, a
/// JSON-schema `response_format` as `output_config.format` (structured outputs). Its answer comes
/// back as an OpenAI chat completion (text, `finish_reason`, usage as `prompt_tokens` and
/// `completion_tokens`), so stages read it as any other. The Messages API takes no seed,
/// temperature or top_p (the SDK's params have none) and gives no log-probabilities: those are left
/// out, and a request asking for `logprobs` is refused.
public struct AnthropicBatches: BatchProvider {
    public var name: String { "anthropic" }
    public let maxRequests: Int
    public let maxBytes: Int
    let http: BatchHTTP

    public init(baseURL: String, apiKey: String, maxRequests: Int = 100_000, maxBytes: Int = 256_000_000) {
        http = BatchHTTP(
            baseURL: baseURL,
            headers: [
                // The key as Anthropic's API documents it; the version the official SDK (2.17) sends.
                ("x-api-key", apiKey), ("anthropic-version", "2026-10-21"),
            ], secrets: [apiKey])
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
    }

    /// One request of the batch: `{custom_id, params}`.
    static func request(_ item: BatchItem) throws -> JSONValue {
        ["custom_id": .string(item.customID), "params": try params(item.request)]
    }

    /// The Messages API parameters for an OpenAI chat body.
    /// - Throws: `LabelForgeError.invalidConfig` for what the Messages API cannot do (embeddings,
    ///   log-probabilities).
    static func params(_ request: EngineRequest) throws -> JSONValue {
        guard request.kind == .chat else {
            throw LabelForgeError(
                .invalidConfig, "Anthropic's message batches answer chat requests only, not \(request.kind.name).")
        }
        let body = request.body
        if body["logprobs"]?.boolValue == true {
            throw LabelForgeError(
                .invalidConfig,
                "Anthropic's API gives no log-probabilities: use a stage without logprobs (or another provider).")
        }
        var params: [String: JSONValue] = [
            "model": body["model"] ?? .null,
            "max_tokens": body["max_tokens"] ?? body["max_completion_tokens"] ?? 1024,
        ]
        var system: [String] = []
        var messages: [JSONValue] = []
        for message in body["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "user"
            if role == "system" {
                let content = message["content"] ?? ""
                system.append(
                    content.stringValue
                        ?? (content.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined(separator: "\n"))
                continue
            }
            messages.append(["role": .string(role), "content": content(message["content"] ?? "")])
        }
        params["messages"] = .array(messages)
        if !system.isEmpty { params["system"] = .string(system.joined(separator: "\n\n")) }
        if let stop = body["stop"]?.arrayValue, !stop.isEmpty { params["stop_sequences"] = .array(stop) }
        if let schema = body["response_format"]?["json_schema"]?["schema"] {
            params["output_config"] = ["format": ["type": "json_schema", "schema": schema]]
        }
        return .object(params)
    }

    /// A message's content as Messages API content: a string, or text and image blocks.
    private static func content(_ content: JSONValue) -> JSONValue {
        guard let parts = content.arrayValue else { return content }
        return .array(
            parts.map { part in
                guard part["type"]?.stringValue == "image_url", let url = part["image_url"]?["url"]?.stringValue else {
                    return ["type": "text", "text": part["text"] ?? ""]
                }
                if url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") {
                    let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
                    let mediaType = header.split(separator: ";").first.map(String.init) ?? "image/png"
                    return [
                        "type": "image",
                        "source": [
                            "type": "base64", "media_type": .string(mediaType),
                            "data": .string(String(url[url.index(after: comma)...])),
                        ],
                    ]
                }
                return ["type": "image", "source": ["type": "url", "url": .string(url)]]
            })
    }

    /// A Messages API message as the OpenAI chat completion the same request would have had.
    static func completion(_ message: JSONValue) -> JSONValue {
        let text = (message["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined()
        let input = message["usage"]?["input_tokens"]?.intValue ?? 0
        let output = message["usage"]?["output_tokens"]?.intValue ?? 0
        return [
            "id": message["id"] ?? .null, "object": "chat.completion", "created": 0, "model": message["model"] ?? .null,
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string(text)],
                    "finish_reason": message["stop_reason"]?.stringValue == "max_tokens" ? "length" : "stop",
                ]
            ],
            "usage": [
                "prompt_tokens": .int(Int64(input)), "completion_tokens": .int(Int64(output)),
                "total_tokens": .int(Int64(input + output)),
            ],
        ]
    }

    public func refusal(of item: BatchItem) -> String? {
        do {
            _ = try Self.params(item.request)
            return nil
        } catch let error as LabelForgeError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    public func size(of item: BatchItem) -> Int {
        ((try? Self.request(item)).map { CanonicalJSON.data($0).count } ?? 0) + 1
    }

    public func submit(_ items: [BatchItem], submission: String) async throws -> String {
        let batch = try await http.json(
            .POST, "/v1/messages/batches", body: ["requests": .array(try items.map(Self.request))], creates: true)
        guard let id = batch["id"]?.stringValue else {
            throw LabelForgeError(
                .invalidResponse, "POST /v1/messages/batches answered no batch id: \(batch.textForm.prefix(300))")
        }
        return id
    }

    /// Message batches carry no metadata to find a submission by.
    public func find(submission: String) async throws -> String? { nil }

    public func status(of batch: String) async throws -> BatchStatus {
        let state = try await http.json(.GET, "/v1/messages/batches/\(batch)")["processing_status"]?.stringValue
        return BatchStatus(state: state ?? "unknown", ended: state == "ended")
    }

    public func results(of batch: String) async throws -> [String: BatchItemOutcome] {
        let info = try await http.json(.GET, "/v1/messages/batches/\(batch)")
        guard let url = info["results_url"]?.stringValue else { return [:] }
        var outcomes: [String: BatchItemOutcome] = [:]
        for line in try await http.call(.GET, url).split(separator: 0x0A) where !line.isEmpty {
            let value = try JSONValue.parse(Data(line))
            guard let id = value["custom_id"]?.stringValue else { continue }
            let result = value["result"] ?? .null
            switch result["type"]?.stringValue {
            case "succeeded": outcomes[id] = .succeeded(Self.completion(result["message"] ?? .null))
            case "errored":
                let error = result["error"]?["error"] ?? result["error"] ?? .null
                outcomes[id] = .failed(error["message"]?.stringValue ?? error.textForm)
            case let other: outcomes[id] = .unanswered(other ?? "no result")
            }
        }
        return outcomes
    }

    public func cancel(_ batch: String) async throws {
        _ = try await http.call(.POST, "/v1/messages/batches/\(batch)/cancel")
    }
}
