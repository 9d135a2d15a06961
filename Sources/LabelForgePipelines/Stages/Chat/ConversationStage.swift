import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `synthesize_conversation`: a multi-turn conversation grounded in the row (an image sent to a
/// VLM, a passage), generated one turn at a time.
///
/// Each user turn comes from `template` (the user's role prompt, which sees the row and
/// `{{#conversation}}{{role}}: {{content}}{{/conversation}}`, the turns so far); each assistant
/// turn from a request whose messages are `assistant_template` as the system prompt and the
/// conversation so far, the stage's images in the first user message. Every turn is its own
/// request, cache entry and seed (`<stage>#turn<k>.user`, `<stage>#turn<k>.assistant`). The
/// conversation ends after `turns` exchanges, at an empty turn, or at a turn containing one of
/// `stop_phrases` (the turn is kept up to the phrase; the first question is always answered); it
/// always ends with an assistant turn.
///
/// Outputs `messages` in the OpenAI chat format fine-tuning tools read (images as `image_url`
/// parts of the first user message), `turns` (assistant turns) and `stop_reason` (`turns`,
/// `empty_turn` or `stop_phrase`).
public struct ConversationStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: ConversationOptions
    public let version = 1
    public let outputFields = ["messages", "turns", "stop_reason"]
    public let outputTypes: [String: ColumnType] = [
        // `messages` is typed from its values: a turn's content is text, or parts when images are sent.
        "turns": .int64, "stop_reason": .string,
    ]
    public var templateVariables: [String: JSONValue] { [:] }
    public var constraint: OutputConstraint? { nil }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var templates: [String] { [config.template, options.assistantTemplate] }
    public var callVariableNames: Set<String> { ["conversation", "turn", "role"] }

    public func usesLogprobs(in dialect: EngineDialect) -> Bool { false }

    public func nextCall(for row: RowContext, after parts: [[String: JSONValue]]) -> StageCall? {
        guard parts.count < 2 * options.turns else { return nil }
        if let last = parts.last, last["stop"] != nil || last["content"]?.stringValue?.isEmpty != false {
            return nil
        }
        let turn = parts.count / 2 + 1
        let role = parts.count % 2 == 0 ? "user" : "assistant"
        return StageCall(
            seedSuffix: "#turn\(turn).\(role)",
            variables: [
                "conversation": .array(parts.map { ["role": $0["role"] ?? .null, "content": $0["content"] ?? .null] }),
                "turn": .int(Int64(turn)), "role": .string(role),
            ])
    }

    public func request(for row: RowContext, call: StageCall, pack: PromptPack, seed: UInt32, cachePrompt: Bool) throws
        -> ChatRequest
    {
        guard call.variables["role"]?.stringValue == "assistant" else {
            let prompt = try render(config.template, for: row, call: call, pack: pack)
            return chatRequest(
                messages: [ChatMessage(role: "user", content: try content(prompt, imagesOf: row))], seed: seed,
                cachePrompt: cachePrompt)
        }
        let system = try render(options.assistantTemplate, for: row, call: call, pack: pack)
        let turns = call.variables["conversation"]?.arrayValue ?? []
        return chatRequest(
            messages: [ChatMessage(role: "system", text: system)] + (try messages(turns, imagesOf: row)), seed: seed,
            cachePrompt: cachePrompt)
    }

    /// The turns as chat messages, the stage's images in the first user message.
    func messages(_ turns: [JSONValue], imagesOf row: RowContext) throws -> [ChatMessage] {
        try turns.enumerated().map { index, turn in
            let text = turn["content"]?.stringValue ?? ""
            let role = turn["role"]?.stringValue ?? "user"
            return ChatMessage(role: role, content: index == 0 ? try content(text, imagesOf: row) : .string(text))
        }
    }

    /// A turn's text, cut at the first stop phrase. An empty first exchange is an invalid answer
    /// (retried with a new seed); a later empty turn ends the conversation.
    public func parse(_ response: ChatResponse, call: Int, dialect: EngineDialect) -> Result<
        [String: JSONValue], StageFailure
    > {
        var text = response.content
        var stop: JSONValue? = nil
        for phrase in options.stopPhrases {
            if let range = text.range(of: phrase) {
                text = String(text[..<range.lowerBound])
                // The first question is always answered: a conversation has at least one exchange.
                if call > 0 { stop = .string("stop_phrase") }
            }
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty && call < 2 {
            return .failure(
                StageFailure(errorClass: "empty_output", message: "the engine generated no text for turn 1"))
        }
        var fields: [String: JSONValue] = [
            "role": .string(call % 2 == 0 ? "user" : "assistant"), "content": .string(text),
        ]
        if let stop { fields["stop"] = stop }
        return .success(fields)
    }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        parse(response, call: 0, dialect: dialect)
    }

    /// The merged turns, the stage's images as `image_url` parts of the first user message.
    public func output(merging parts: [[String: JSONValue]], for row: RowContext) -> [String: JSONValue] {
        var output = merge(parts)
        if var messages = output["messages"]?.arrayValue, !messages.isEmpty,
            let content = try? content(messages[0]["content"]?.stringValue ?? "", imagesOf: row)
        {
            messages[0] = ["role": messages[0]["role"] ?? .null, "content": content]
            output["messages"] = .array(messages)
        }
        return output
    }

    public func merge(_ calls: [[String: JSONValue]]) -> [String: JSONValue] {
        var turns = calls.filter { $0["content"]?.stringValue?.isEmpty == false }
        if turns.last?["role"]?.stringValue == "user" { turns.removeLast() }
        let stopReason: String =
            calls.contains { $0["stop"] != nil }
            ? "stop_phrase" : calls.count == 2 * options.turns && turns.count == calls.count ? "turns" : "empty_turn"
        return [
            "messages": .array(turns.map { ["role": $0["role"] ?? .null, "content": $0["content"] ?? .null] }),
            "turns": .int(Int64(turns.count / 2)), "stop_reason": .string(stopReason),
        ]
    }
}

/// `synthesize_conversation`'s options: the assistant's prompt, the turn budget, the stop phrases.
public struct ConversationOptions: ParsedStageOptions {
    public var assistantTemplate: String
    public var turns = 3
    public var stopPhrases: [String] = []

    package static let keys = ["assistant_template", "turns", "stop_phrases"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> ConversationOptions {
        var options = ConversationOptions(assistantTemplate: try node.require("assistant_template").string())
        if let turns = try node.child("turns") {
            options.turns = try turns.int()
            if options.turns < 1 { throw turns.error("turns must be at least 1.") }
        }
        if let phrases = try node.child("stop_phrases") {
            options.stopPhrases = try phrases.stringList()
            if options.stopPhrases.contains("") { throw phrases.error("a stop phrase cannot be empty.") }
        }
        return options
    }

    public var resolvedJSON: [String: JSONValue] {
        [
            "assistant_template": .string(assistantTemplate), "turns": .int(Int64(turns)),
            "stop_phrases": .array(stopPhrases.map(JSONValue.string)),
        ]
    }
}
