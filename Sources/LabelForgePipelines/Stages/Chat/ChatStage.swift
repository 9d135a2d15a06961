import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel
import LabelForgeLLM

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

/// A chat stage: turns a row into chat requests and each response into output fields
/// (docs/architecture.md). Its `process` is the chat loop: render, send, validate, retry.
///
/// Parsing is a pure function of the response, so cached responses reproduce a stage's outputs
/// without an engine.
public protocol ChatStage: RowWiseStage {
    /// Samples per row: more than one fans the row out into that many rows.
    var samples: Int { get }
    /// Variables the stage adds to the template context besides the row's fields.
    var templateVariables: [String: JSONValue] { get }
    /// The output constraint the engine must apply; `nil` for free text.
    var constraint: OutputConstraint? { get }
    /// Parses and validates a response into output fields.
    func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure>
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
    /// Whether each output records `lineage`: the row it was made from, the stage and the sample.
    var recordsLineage: Bool { get }
    /// Worked examples chosen per row for the template's `examples` (`examples:`); none by default.
    var promptExamples: PromptExamples? { get }
}

extension ChatStage {
    public var samples: Int { 1 }

    public var rowSet: RowSet { samples > 1 ? .fansOut(samples) : .preserves }

    public var engineUses: [EngineUse] {
        [EngineUse(engine: config.engine, task: .chat)]
            + (promptExamples?.engine.map { [EngineUse(engine: $0, task: .embed, batchSize: 32)] } ?? [])
    }

    /// Texts compared to choose examples are cut to the embedding model's window.
    public var truncation: Truncation? { promptExamples?.engine == nil ? nil : .model }

    public var promptExamples: PromptExamples? { nil }

    /// The row fields its templates read (less its variables, its calls' and upstream outputs), and
    /// its `inputFields`.
    public func requiredRowFields(graph: StageGraph, pack: PromptPack) -> [String] {
        let readStages = Set(graph.reads(of: config.id))
        let templateFields = graph.rowFields(templates.flatMap { pack.references(of: $0) }.sorted()).map(
            PromptPack.rootName)
        return Set(templateFields).subtracting(templateVariables.keys).subtracting(callVariableNames)
            .subtracting(promptExamples == nil ? [] : ["examples"])
            .subtracting(readStages).union(graph.rowFields(inputFields)).sorted()
    }

    public func use(ofField field: String) -> String {
        inputFields.contains(field) ? "" : "template '\(templates.joined(separator: "' or '"))' "
    }

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

    /// The chat loop: the row's calls one after another, each rendered, sent and parsed, a response
    /// that fails validation retried with a new seed derived from `<stage id>#retry<k>` (so retries
    /// too are deterministic and cached).
    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        if let failure = inputFailure(in: row) { return .failed(failure) }
        let engine = try context.endpoint(.chat)
        var examples: JSONValue?
        if let promptExamples {
            do {
                examples = try await promptExamples.chosen(for: row, in: context)
            } catch {
                return .failed(error as? StageFailure ?? StageFailure(error))
            }
        }
        var parts: [[String: JSONValue]] = []
        while var call = nextCall(for: row, after: parts) {
            if let examples { call.variables["examples"] = examples }
            switch await attempts(call: call, index: parts.count, row: row, sample: sample, engine: engine, context) {
            case .success(let part): parts.append(part)
            case .failure(let failure): return .failed(failure)
            }
        }
        var output = output(merging: parts, for: row)
        if recordsLineage {
            output["lineage"] = [
                "seed_row_id": .string(row.rowID), "stage": .string(config.id), "sample_index": .int(Int64(sample)),
            ]
        }
        return StageResult(output: output)
    }

    /// One call's attempts: its parsed fields, or the last attempt's failure.
    private func attempts(
        call: StageCall, index: Int, row: RowContext, sample: Int, engine: EngineEndpoint, _ context: StageContext
    ) async -> Result<[String: JSONValue], StageFailure> {
        // `config` read once: through the existential, every read copies the whole struct.
        let config = self.config
        let cachePrompt = context.cachePrompt
        var failure = StageFailure(errorClass: "invalid_response", message: "no attempt was made")
        for attempt in 0...config.maxValidationRetries {
            let callID = config.id + call.seedSuffix
            let seed = context.seed(attempt == 0 ? callID : "\(callID)#retry\(attempt)", row: row.rowID, sample: sample)
            let request: PreparedRequest
            do {
                var chat = try self.request(
                    for: row, call: call, pack: context.pack, seed: seed, cachePrompt: cachePrompt)
                if !usesLogprobs(in: engine.dialect) { chat.sampling.topLogprobs = nil }
                // At temperature 0 an engine samples greedily (vLLM ignores the seed), so a retry
                // with only a new seed would repeat the invalid answer: retries sample warmer.
                if attempt > 0 {
                    chat.sampling.temperature = max(chat.sampling.temperature, config.sampling.retryTemperature)
                    // A retry samples, so it carries its own seed even where the first attempt (greedy,
                    // shared between rows) has none: each retry is then its own cache entry.
                    chat.sampling.seed = chat.sampling.seed ?? seed
                }
                request = PreparedRequest(
                    EngineRequest(kind: .chat, body: engine.dialect.body(for: chat, modelID: engine.modelID)),
                    on: engine)
            } catch {
                return .failure(StageFailure(errorClass: "render_error", message: String(describing: error)))
            }
            let raw: JSONValue
            do {
                raw = try await context.send(request, on: engine).response
            } catch {
                return .failure(StageFailure(error))
            }
            let response: ChatResponse
            do {
                response = try ChatResponse(raw: raw)
            } catch {
                failure = StageFailure(errorClass: "invalid_response", message: String(describing: error))
                continue
            }
            context.countTokens(in: response.promptTokens, out: response.completionTokens)
            switch parse(response, call: index, dialect: engine.dialect) {
            case .success(let fields): return .success(fields)
            case .failure(let parsed):
                failure = StageFailure(
                    errorClass: parsed.errorClass,
                    message: parsed.message + " (attempt \(attempt + 1) of \(config.maxValidationRetries + 1))")
            }
        }
        return .failure(failure)
    }

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
                message: "the engine's answer is not JSON\(reason): \(Answers.quoted(response.content))"))
    }
    if let violation = JSONSchemaValidator.firstViolation(of: schema, in: value) {
        return .failure(
            StageFailure(errorClass: "schema_violation", message: "the answer violates the schema: \(violation)"))
    }
    return .success(value)
}
