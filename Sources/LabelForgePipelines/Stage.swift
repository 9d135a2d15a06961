import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// One row as a stage sees it.
public struct RowContext: Sendable {
    public var rowID: String
    public var index: Int
    public var fields: [String: JSONValue]
    /// The row's images that loaded, by field.
    public var images: [String: ImageFile] = [:]
    /// The row's images that did not load, by field; a stage that needs one fails for this row.
    public var imageFailures: [String: ImageError] = [:]
    /// Outputs of the upstream stages this stage reads, by stage id; templates see them as
    /// `{{<stage>.<field>}}`.
    public var upstream: [String: [String: JSONValue]] = [:]

    /// A row field, or `<stage>.<field>` for an upstream output this stage reads.
    /// A path that goes on past an output or a field (`judge.scores.accuracy`) descends into it.
    public func value(at path: String) -> JSONValue? {
        if let dot = path.firstIndex(of: "."), let outputs = upstream[String(path[..<dot])] {
            return Self.descend(outputs, String(path[path.index(after: dot)...]))
        }
        return Self.descend(fields, path)
    }

    /// The value at `path` in `object`: the key itself when present, else the first dotted
    /// component and the rest inside it.
    static func descend(_ object: [String: JSONValue], _ path: String) -> JSONValue? {
        if let value = object[path] { return value }
        guard let dot = path.firstIndex(of: "."), let inner = object[String(path[..<dot])]?.objectValue else {
            return nil
        }
        return descend(inner, String(path[path.index(after: dot)...]))
    }
}

/// What every stage has, whether it sends requests (`RowStage`), only looks at rows
/// (`FilterStage`) or consumes the whole row set (`BarrierStage`).
public protocol PipelineStage: Sendable {
    var config: RunConfig.Stage { get }
    /// Bumped when the stage's prompting or parsing logic changes.
    var version: Int { get }
    /// Output fields, in the order they are documented.
    var outputFields: [String] { get }
    /// Field paths the stage's options read (candidates, filter clauses, a dedup field); each is a
    /// row field or `<stage>.<field>`.
    var optionReferences: [String] { get }
    /// How the stage fits texts to an embedding or rerank model's window; `nil` for stages that
    /// send no such texts.
    var truncation: Truncation? { get }
}

extension PipelineStage {
    public var optionReferences: [String] { [] }
    public var truncation: Truncation? { nil }
}

/// One request a stage makes for a row. Most stages make one; a pairwise judge makes two.
public struct StageCall: Sendable {
    /// Appended to the stage id when seeds are derived, so each call has its own seed.
    public var seedSuffix: String
    /// Variables added to the template context for this call.
    public var variables: [String: JSONValue]

    public init(seedSuffix: String = "", variables: [String: JSONValue] = [:]) {
        self.seedSuffix = seedSuffix
        self.variables = variables
    }
}

/// Why a response could not become a label; recorded in the manifest, never written as output.
public struct StageFailure: Error, Sendable, Equatable {
    public var errorClass: String
    public var message: String

    /// `{class, message}`, as output and manifest lines record it.
    public var json: JSONValue { ["class": .string(errorClass), "message": .string(message)] }
}

/// A row-wise stage: turns a row into a request and a response into output fields (docs/architecture.md).
///
/// Parsing is a pure function of the response, so cached responses reproduce a stage's outputs
/// without an engine.
public protocol RowStage: PipelineStage {
    /// Samples per row: more than one fans the row out into that many rows.
    var samples: Int { get }
    /// Variables the stage adds to the template context besides the row's fields.
    var templateVariables: [String: JSONValue] { get }
    /// The output constraint the engine must apply; `nil` for free text.
    var constraint: OutputConstraint? { get }
    /// Parses and validates a response into output fields.
    func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure>
    /// `(output field, gold field)` pairs to score against, where the dataset has gold labels.
    var goldPairs: [(output: String, gold: String)] { get }
    /// The requests the stage makes for a row; one by default.
    func calls(for row: RowContext) -> [StageCall]
    /// Template variables its calls add (so rows need not have them); none by default.
    var callVariableNames: Set<String> { get }
    /// Row fields the stage reads besides those its template names; every row must have them.
    var inputFields: [String] { get }
    /// Parses the response to call `call`; `parse(_:dialect:)` by default.
    func parse(_ response: ChatResponse, call: Int, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure>
    /// Combines the parsed calls into the stage's output; the only call's fields by default.
    func merge(_ calls: [[String: JSONValue]]) -> [String: JSONValue]
    /// The row's output from its parsed calls: `merge` by default.
    func output(merging parts: [[String: JSONValue]], for row: RowContext) -> [String: JSONValue]
    /// Whether the stage reads logprobs from responses in this dialect; when it does not, none are
    /// asked for (they cost the engine time and change nothing). True by default.
    func usesLogprobs(in dialect: EngineDialect) -> Bool
    /// Why this row cannot be sent at all (an image that did not load, a missing candidate), if so;
    /// the row then fails this stage without a request.
    func inputFailure(in row: RowContext) -> StageFailure?
    /// Whether requests carry the row's seed. A stage that decodes greedily and wants one cache
    /// entry per prompt whatever row it comes from (a relevance judge) sends none. True by default.
    var seeded: Bool { get }
    /// The call after `parts` (the parsed fields of the calls made so far, in order), or `nil`
    /// when the row is done: `calls(for:)` one after another by default. A stage whose next
    /// request depends on the answers before it (a conversation) decides here.
    func nextCall(for row: RowContext, after parts: [[String: JSONValue]]) -> StageCall?
    /// The chat request for one row, call and attempt; the stage's images and its rendered
    /// template as one user message by default.
    func request(for row: RowContext, call: StageCall, pack: PromptPack, seed: UInt32, cachePrompt: Bool) throws
        -> ChatRequest
    /// Templates of the prompt pack the stage renders: its `template` by default.
    var templates: [String] { get }
    /// Whether each output records `lineage`: the row it was made from, the stage and the sample.
    var recordsLineage: Bool { get }
}

extension RowStage {
    public var samples: Int { 1 }

    public func usesLogprobs(in dialect: EngineDialect) -> Bool { true }

    public var seeded: Bool { true }

    public var templates: [String] { [config.template] }

    public var recordsLineage: Bool { false }

    public func nextCall(for row: RowContext, after parts: [[String: JSONValue]]) -> StageCall? {
        let calls = calls(for: row)
        return parts.count < calls.count ? calls[parts.count] : nil
    }

    public func calls(for row: RowContext) -> [StageCall] { [StageCall()] }

    public var callVariableNames: Set<String> { [] }

    public var inputFields: [String] { [] }

    public func parse(_ response: ChatResponse, call: Int, dialect: EngineDialect) -> Result<
        [String: JSONValue], StageFailure
    > {
        parse(response, dialect: dialect)
    }

    public func merge(_ calls: [[String: JSONValue]]) -> [String: JSONValue] { calls.first ?? [:] }

    public func output(merging parts: [[String: JSONValue]], for row: RowContext) -> [String: JSONValue] {
        merge(parts)
    }

    public func inputFailure(in row: RowContext) -> StageFailure? { imageFailure(in: row) }

    /// The first image this stage needs that failed to load for the row, as a stage failure.
    public func imageFailure(in row: RowContext) -> StageFailure? {
        config.images.lazy.compactMap { row.imageFailures[$0] }.first.map {
            StageFailure(errorClass: $0.kind.name, message: $0.message)
        }
    }

    /// The chat request for one row, call and attempt.
    ///
    /// The stage's images go first, as `image_url` parts with `data:` URLs, then the rendered text;
    /// a stage without images sends its prompt as a plain string. Templates see each image as
    /// `{sha256, format, width, height}`.
    public func request(
        for row: RowContext, call: StageCall = StageCall(), pack: PromptPack, seed: UInt32, cachePrompt: Bool
    ) throws -> ChatRequest {
        let prompt = try render(config.template, for: row, call: call, pack: pack)
        return chatRequest(
            messages: [ChatMessage(role: "user", content: try content(prompt, imagesOf: row))], seed: seed,
            cachePrompt: cachePrompt)
    }

    /// A template rendered with the row's fields, images, upstream outputs, the stage's variables
    /// and the call's.
    func render(_ template: String, for row: RowContext, call: StageCall, pack: PromptPack) throws -> String {
        var context = row.fields
        for (key, image) in row.images { context[key] = image.templateValue }
        for (stage, outputs) in row.upstream { context[stage] = .object(outputs) }
        for (key, value) in templateVariables { context[key] = value }
        for (key, value) in call.variables { context[key] = value }
        return try pack.render(template, context: context)
    }

    /// A user message's content: the stage's images as `image_url` parts then the text, or the
    /// text alone when the stage sends no image.
    func content(_ text: String, imagesOf row: RowContext) throws -> JSONValue {
        guard !config.images.isEmpty else { return .string(text) }
        var parts: [JSONValue] = []
        for field in config.images {
            guard let image = row.images[field] else {
                throw LabelForgeError(.invalidDataset, "the row has no image in field '\(field)'.")
            }
            parts.append(["type": "image_url", "image_url": ["url": .string(image.dataURL)]])
        }
        parts.append(["type": "text", "text": .string(text)])
        return .array(parts)
    }

    /// A chat request with the stage's sampling and constraint.
    func chatRequest(messages: [ChatMessage], seed: UInt32, cachePrompt: Bool) -> ChatRequest {
        let sampling = config.sampling
        return ChatRequest(
            messages: messages,
            sampling: SamplingParams(
                temperature: sampling.temperature, topP: sampling.topP, maxTokens: sampling.maxTokens,
                seed: seeded ? seed : nil, topLogprobs: sampling.topLogprobs, stop: sampling.stop),
            constraint: constraint, cachePrompt: cachePrompt)
    }
}

/// Parses a response as a JSON document and validates it against `schema`; the shared first step
/// of every schema-guided stage.
/// - Parameter prepare: applied to the parsed answer before validation (e.g. collapsing repeats).
func validatedJSON(
    _ response: ChatResponse, schema: JSONValue, prepare: (JSONValue) -> JSONValue = { $0 }
) -> Result<JSONValue, StageFailure> {
    guard let value = (try? JSONValue.parse(response.content)).map(prepare) else {
        let reason = response.finishReason == "length" ? " (cut off at max_tokens; raise sampling.max_tokens)" : ""
        return .failure(
            StageFailure(
                errorClass: "schema_violation",
                message: "the engine's answer is not JSON\(reason): \(ClassifyStage.quoted(response.content))"))
    }
    if let violation = JSONSchemaValidator.firstViolation(of: schema, in: value) {
        return .failure(
            StageFailure(errorClass: "schema_violation", message: "the answer violates the schema: \(violation)"))
    }
    return .success(value)
}
