import Foundation
import LabelForgeCore

/// How requests are written for one family of OpenAI-compatible servers (docs/architecture.md).
///
/// Dialects differ in how they take structured-output constraints; each uses the tightest one
/// its server supports. The dialect's name is part of every cache key, so changing how a dialect
/// translates requests never serves stale entries.
public struct EngineDialect: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public var description: String { name }

    /// vLLM ≥ 0.12: `structured_outputs: {choice}` and `structured_outputs: {json}` (compact JSON is a
    /// server setting, `VLLMLaunch.structuredOutputsConfig`).
    public static let vllm = EngineDialect("vllm")
    /// llama.cpp's `llama-server`: GBNF `grammar`s, for choices and for compact JSON objects.
    public static let llamacpp = EngineDialect("llamacpp")
    /// Any OpenAI-compatible server: everything as `response_format` json_schema.
    public static let openai = EngineDialect("openai")
    /// SGLang: `regex` for choices, `response_format` json_schema for objects.
    public static let sglang = EngineDialect("sglang")

    public static let all: [EngineDialect] = [.vllm, .llamacpp, .openai, .sglang]

    private init(_ name: String) { self.name = name }

    /// The dialect with this name, or `nil` when there is none.
    public init?(name: String) {
        guard let known = Self.all.first(where: { $0.name == name }) else { return nil }
        self = known
    }

    /// The JSON body of `POST /v1/chat/completions` for `request`.
    /// - Parameters:
    ///   - request: the messages, sampling and constraint.
    ///   - modelID: the configured model id, never a machine-local path (it is part of the cache key).
    public func body(for request: ChatRequest, modelID: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(modelID),
            "messages": .array(request.messages.map(\.json)),
            "temperature": .double(request.sampling.temperature),
        ]
        // vLLM deprecates `max_tokens` for OpenAI's `max_completion_tokens`; llama.cpp and SGLang
        // read `max_tokens`.
        body[self == .vllm ? "max_completion_tokens" : "max_tokens"] = .int(Int64(request.sampling.maxTokens))
        if let topP = request.sampling.topP { body["top_p"] = .double(topP) }
        if let seed = request.sampling.seed { body["seed"] = .int(Int64(seed)) }
        if !request.sampling.stop.isEmpty { body["stop"] = .array(request.sampling.stop.map(JSONValue.string)) }
        if let k = request.sampling.topLogprobs {
            body["logprobs"] = true
            body["top_logprobs"] = .int(Int64(k))
        }
        if self == .llamacpp && !request.cachePrompt { body["cache_prompt"] = false }
        switch request.constraint {
        case .choice(let labels)?:
            switch self {
            case .vllm:
                body["structured_outputs"] = ["choice": .array(labels.map(JSONValue.string))]
            case .llamacpp:
                body["grammar"] = .string(Self.grammar(choices: labels))
            case .sglang:
                body["regex"] = .string("(" + labels.map(Self.regexEscaped).joined(separator: "|") + ")")
            default:
                body["response_format"] = Self.responseFormat(name: "choice", schema: Self.choiceSchema(labels))
            }
        case .jsonSchema(let name, let schema)?:
            switch self {
            case .vllm:
                // Compact JSON is the server's `--structured-outputs-config` (`labelforge engine vllm`
                // prints it): vLLM ignores `disable_any_whitespace` in a request.
                body["structured_outputs"] = ["json": schema]
            case .llamacpp:
                if let grammar = JSONSchemaGrammar.gbnf(for: schema) {
                    body["grammar"] = .string(grammar)
                } else {
                    body["response_format"] = Self.responseFormat(name: name, schema: schema)
                }
            default:
                body["response_format"] = Self.responseFormat(name: name, schema: schema)
            }
        case nil:
            break
        }
        return .object(body)
    }

    /// The label a response chose, from the text a `choice` constraint produced.
    public func choiceText(fromContent content: String) -> String {
        if self == .openai, case .object(let o)? = try? JSONValue.parse(content), let label = o["label"]?.stringValue {
            return label
        }
        return content.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether this dialect emits choice labels as bare tokens, so token logprobs describe the label.
    public var emitsBareChoices: Bool { self != .openai }

    static func responseFormat(name: String, schema: JSONValue) -> JSONValue {
        ["type": "json_schema", "json_schema": ["name": .string(name), "schema": schema, "strict": true]]
    }

    static func choiceSchema(_ labels: [String]) -> JSONValue {
        [
            "type": "object", "additionalProperties": false, "required": ["label"],
            "properties": ["label": ["type": "string", "enum": .array(labels.map(JSONValue.string))]],
        ]
    }

    /// A GBNF grammar with one alternative per label: the answer is a bare label, 3–4 tokens.
    static func grammar(choices: [String]) -> String {
        "root ::= " + choices.map { "\"" + gbnfEscaped($0) + "\"" }.joined(separator: " | ")
    }

    private static func gbnfEscaped(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    private static func regexEscaped(_ s: String) -> String {
        var out = ""
        for c in s {
            if "\\^$.|?*+()[]{}/".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
