import LabelForgeCore
import LabelForgeLLM

/// How `labelforge plan` counts the prompt tokens of a chat request the cache lacks: by the engine
/// where plan reached one that tokenizes (`PlanTransport`), else estimated.
struct PromptTokenCounter: Sendable {
    /// The engine's server, which counts prompt tokens with its `/tokenize`; `nil` estimates them.
    var tokenizer: (any EngineTransport)?

    /// A prompt's tokens, estimated without a tokenizer: its text's characters divided by 4 (about
    /// right for English with BPE tokenizers; images are not counted), plus the chat format's own: 3
    /// tokens a message and 3 that prime the reply, as OpenAI counts them for its chat models.
    static func estimatedTokens(of body: JSONValue) -> Int {
        var characters = 0
        let messages = body["messages"]?.arrayValue ?? []
        for message in messages {
            if let text = message["content"]?.stringValue {
                characters += text.count
            } else {
                for part in message["content"]?.arrayValue ?? [] { characters += part["text"]?.stringValue?.count ?? 0 }
            }
        }
        return (characters + 3) / 4 + (messages.isEmpty ? 0 : 3 * messages.count + 3)
    }

    /// A new request's prompt tokens. vLLM's `/tokenize` renders the chat template itself;
    /// llama.cpp's takes text, so the messages go through its `/apply-template` first and the prompt
    /// is tokenized as the server tokenizes a chat prompt (special tokens added and parsed).
    func promptTokens(of body: JSONValue, dialect: EngineDialect) async -> Int {
        guard let tokenizer, let messages = body["messages"] else {
            return Self.estimatedTokens(of: body)
        }
        if dialect == .llamacpp {
            if let rendered = try? await tokenizer.send(
                EngineRequest(kind: .applyTemplate, body: ["messages": messages])),
                let prompt = rendered.body["prompt"]?.stringValue,
                let reply = try? await tokenizer.send(
                    EngineRequest(
                        kind: .tokenize, body: ["content": .string(prompt), "add_special": true, "parse_special": true])
                ),
                let tokens = reply.body["tokens"]?.arrayValue
            {
                return tokens.count
            }
            return Self.estimatedTokens(of: body)
        }
        if let reply = try? await tokenizer.send(
            EngineRequest(
                kind: .tokenize,
                body: ["model": body["model"] ?? .null, "messages": messages, "add_generation_prompt": true])),
            let count = reply.body["count"]?.intValue
        {
            return count
        }
        return Self.estimatedTokens(of: body)
    }
}
