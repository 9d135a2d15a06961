import LabelForgeCore
import LabelForgeLLM

/// One row as a stage sees it.
public struct RowContext: Sendable {
    public var rowID: String
    public var index: Int
    public var fields: [String: JSONValue]
}

/// Why a response could not become a label; recorded in the manifest, never written as output.
public struct StageFailure: Error, Sendable {
    public var errorClass: String
    public var message: String
}

/// A row-wise stage: turns a row into a request and a response into output fields (DESIGN.md §3.5).
///
/// Parsing is a pure function of the response, so cached responses reproduce a stage's outputs
/// without an engine.
public protocol RowStage: Sendable {
    var config: RunConfig.Stage { get }
    /// Bumped when the stage's prompting or parsing logic changes.
    var version: Int { get }
    /// Output fields, in the order they are documented.
    var outputFields: [String] { get }
    /// Variables the stage adds to the template context besides the row's fields.
    var templateVariables: [String: JSONValue] { get }
    /// The output constraint the engine must apply.
    var constraint: OutputConstraint { get }
    /// Parses and validates a response into output fields.
    func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure>
    /// `(output field, gold field)` pairs to score against, where the dataset has gold labels.
    var goldPairs: [(output: String, gold: String)] { get }
}

extension RowStage {
    /// The chat request for one row and attempt.
    public func request(for row: RowContext, pack: PromptPack, seed: UInt32, cachePrompt: Bool) throws -> ChatRequest {
        var context = row.fields
        for (key, value) in templateVariables { context[key] = value }
        let prompt = try pack.render(config.template, context: context)
        return ChatRequest(
            messages: [ChatMessage(role: "user", text: prompt)],
            sampling: SamplingParams(
                temperature: config.sampling.temperature, topP: config.sampling.topP,
                maxTokens: config.sampling.maxTokens, seed: seed, topLogprobs: config.sampling.topLogprobs),
            constraint: constraint, cachePrompt: cachePrompt)
    }
}

/// Parses a response as a JSON document and validates it against `schema`; the shared first step
/// of every schema-guided stage.
func validatedJSON(_ response: ChatResponse, schema: JSONValue) -> Result<JSONValue, StageFailure> {
    guard let value = try? JSONValue.parse(response.content) else {
        let reason = response.finishReason == "length" ? " (cut off at max_tokens; raise sampling.max_tokens)" : ""
        return .failure(
            StageFailure(
                errorClass: "schema_violation",
                message: "the engine's answer is not JSON\(reason): \(ClassifyStage.quoted(response.content))"))
    }
    if let violation = JSONSchemaValidator.firstViolation(of: schema, in: value) {
        return .failure(StageFailure(errorClass: "schema_violation", message: "the answer violates the schema: \(violation)"))
    }
    return .success(value)
}

/// Builds the stage object for a configured stage.
public func makeStage(_ config: RunConfig.Stage) -> any RowStage {
    switch config.type {
    case "classify": return ClassifyStage(config: config)
    case "rubric_score": return RubricScoreStage(config: config)
    default: return TagStage(config: config)
    }
}
