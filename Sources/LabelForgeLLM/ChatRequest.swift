import LabelForgeCore

/// One chat message. `content` is a plain string or an array of OpenAI content parts.
public struct ChatMessage: Sendable, Hashable {
    public var role: String
    public var content: JSONValue

    public init(role: String, content: JSONValue) {
        self.role = role
        self.content = content
    }

    public init(role: String, text: String) {
        self.init(role: role, content: .string(text))
    }

    var json: JSONValue { ["role": .string(role), "content": content] }
}

/// Sampling and decoding parameters sent with a chat request.
public struct SamplingParams: Sendable, Hashable {
    public var temperature: Double = 0
    public var topP: Double? = nil
    public var maxTokens: Int = 64
    public var seed: UInt32? = nil
    /// How many alternatives to return per generated token; `nil` asks for no logprobs.
    public var topLogprobs: Int? = nil
    /// Strings that end generation; not sent when empty.
    public var stop: [String] = []

    public init(
        temperature: Double = 0, topP: Double? = nil, maxTokens: Int = 64, seed: UInt32? = nil,
        topLogprobs: Int? = nil, stop: [String] = []
    ) {
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.seed = seed
        self.topLogprobs = topLogprobs
        self.stop = stop
    }
}

/// How the engine must constrain the output.
public enum OutputConstraint: Sendable, Hashable {
    /// Exactly one of these strings.
    case choice([String])
    /// A JSON document that conforms to `schema`.
    case jsonSchema(name: String, schema: JSONValue)
}

/// A chat-completion request, before a dialect turns it into a wire body.
public struct ChatRequest: Sendable, Hashable {
    public var messages: [ChatMessage]
    public var sampling: SamplingParams
    public var constraint: OutputConstraint?
    /// llama.cpp's per-request prompt cache; strict determinism turns it off.
    public var cachePrompt: Bool

    public init(
        messages: [ChatMessage], sampling: SamplingParams, constraint: OutputConstraint? = nil,
        cachePrompt: Bool = true
    ) {
        self.messages = messages
        self.sampling = sampling
        self.constraint = constraint
        self.cachePrompt = cachePrompt
    }
}
