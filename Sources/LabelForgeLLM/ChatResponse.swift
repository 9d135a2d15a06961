import LabelForgeCore

/// One generated token with its log probability and the alternatives the engine reported.
public struct TokenLogprob: Sendable, Hashable {
    public var token: String
    public var logprob: Double
    public var top: [(token: String, logprob: Double)]

    public init(token: String, logprob: Double, top: [(token: String, logprob: Double)]) {
        self.token = token
        self.logprob = logprob
        self.top = top
    }

    public static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.map(\.token) == b.top.map(\.token)
            && a.top.map(\.logprob) == b.top.map(\.logprob)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(token)
        hasher.combine(logprob)
    }
}

/// The parts of a chat-completion response that stages use, parsed from the raw JSON body.
public struct ChatResponse: Sendable {
    public var content: String
    public var finishReason: String?
    public var promptTokens: Int
    public var completionTokens: Int
    public var logprobs: [TokenLogprob]?
    /// The body exactly as the engine returned it; this is what the cache stores.
    public var raw: JSONValue

    /// Parses an OpenAI chat-completion body.
    /// - Throws: `LabelForgeError.invalidResponse` when the body has no first choice with a message.
    public init(raw: JSONValue) throws {
        guard let choice = raw["choices"]?.arrayValue?.first, let message = choice["message"] else {
            throw LabelForgeError(
                .invalidResponse,
                "The engine's response has no choices[0].message: \(CanonicalJSON.string(raw).prefix(300))")
        }
        self.raw = raw
        content = message["content"]?.stringValue ?? ""
        finishReason = choice["finish_reason"]?.stringValue
        promptTokens = raw["usage"]?["prompt_tokens"]?.intValue ?? 0
        completionTokens = raw["usage"]?["completion_tokens"]?.intValue ?? 0
        logprobs = choice["logprobs"]?["content"]?.arrayValue?.compactMap { entry in
            guard let token = entry["token"]?.stringValue, let lp = entry["logprob"]?.doubleValue else { return nil }
            let top = (entry["top_logprobs"]?.arrayValue ?? []).compactMap { alt -> (String, Double)? in
                guard let t = alt["token"]?.stringValue, let l = alt["logprob"]?.doubleValue else { return nil }
                return (t, l)
            }
            return TokenLogprob(token: token, logprob: lp, top: top)
        }
    }
}
