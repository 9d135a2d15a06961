import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import Logging

/// What one stage did for one row: the manifest's row line, and the output if there is one.
struct StageOutcome: Sendable {
    var stageID: String
    var output: [String: JSONValue]?
    var failure: StageFailure?
    var requestKeys: [String] = []
    /// How many of `requestKeys` were answered from the cache.
    var cacheHits = 0
    var attempts = 0
    /// The replicas that answered this stage's engine requests (`RowRecord.servedBy`).
    var servedBy: [String] = []
    var latencyMs = 0
    var tokensIn = 0
    var tokensOut = 0
    /// An `embed` stage's vector; it goes to `outputs/<stage>.npy`, not into the JSON output.
    var vector: [Float]? = nil
    /// Texts (or rerank pairs) longer than the model's window, cut to it.
    var truncated = 0

    /// The manifest's `cache`: `hit` when every request came from the cache, `miss` when one did
    /// not, `none` when the row failed before any request.
    var cacheStatus: String {
        requestKeys.isEmpty ? "none" : cacheHits == requestKeys.count ? "hit" : "miss"
    }

    /// The output line's fields without `row_id`: the output, or `error`.
    var record: [String: JSONValue] {
        failure.map { ["error": $0.json] } ?? output ?? [:]
    }
}

/// What one stage did for one row, ready to be written: the manifest line's facts, the output
/// line's fields, and whether the row was dropped.
struct StageEmission: Sendable {
    var rowID: String
    var outcome: StageOutcome
    /// Why a filter or barrier dropped the row; the line then goes to `<stage>.rejected.jsonl`.
    var rejection: String? = nil
    /// For rows fanned out by this stage: the parent row and the sample index.
    var parent: String? = nil
    var sampleIndex: Int? = nil
    /// The row's input fields, for scoring against gold labels.
    var fields: [String: JSONValue]
    /// Whether the stage's counts take this row's requests; a dataset-wide stage counts its requests
    /// once each, however many rows list them.
    var countsRequests = true

    /// The output line without `row_id`: the outcome's fields, then the lineage of a fanned-out row.
    var record: [String: JSONValue] {
        var record = outcome.record
        if let parent {
            record["parent_row_id"] = .string(parent)
            record["sample_index"] = sampleIndex.map { .int(Int64($0)) } ?? .null
        }
        return record
    }
}

/// One source row after a segment's stages: what each stage did, and the rows that come out.
struct SegmentResult: Sendable {
    var emissions: [StageEmission]
    var rows: [PipelineRow]
    /// The input row (its index in the dataset) these came from.
    var sourceIndex: Int
    /// Whether any stage failed for this row or a row fanned out of it.
    var failed: Bool { emissions.contains { $0.outcome.failure != nil } }
}

/// Runs rows through row-wise stages: render → executor (cache, single flight, engine) →
/// validate → output, with filters and fan-out in between.
///
/// A response that fails validation is retried with a new seed derived from
/// `<stage id>#retry<k>`, so retries too are deterministic and cached.
struct RowProcessor: Sendable {
    var config: RunConfig
    var pack: PromptPack
    var graph: StageGraph
    var endpoints: [String: EngineEndpoint]
    /// Endpoints of `embed` stages by stage id: their engine's, behind the stage's batcher.
    var embedEndpoints: [String: EngineEndpoint] = [:]
    /// Rerankers of dataset-wide stages by stage id (behind a batcher).
    var rerankEndpoints: [String: EngineEndpoint] = [:]
    var executor: RequestExecutor
    /// Row lines an interrupted run recorded, by `ManifestRecovery.key`: a failure recorded there
    /// stays a failure, so the manifest, the outputs and downstream stages agree.
    var previous: [String: RowRecord] = [:]
    var logger: Logger
    /// `labelforge plan`: a request the cache lacks records an estimate of its prompt tokens.
    var estimateMisses = false
    /// `labelforge plan`: engines (by name) that count prompt tokens with vLLM's `/tokenize`.
    var tokenizers: [String: any EngineTransport] = [:]
    /// The token limit each stage's embedding (or rerank) requests carry, by stage id; a stage without
    /// one sends texts whole (`Truncation`).
    var truncation: [String: Int] = [:]
    /// The limit of the requests a dataset-wide stage sends to its reranker, by stage id.
    var rerankTruncation: [String: Int] = [:]

    /// A prompt's tokens, estimated without a tokenizer: its text's characters divided by 4 (about
    /// right for English with BPE tokenizers; images are not counted).
    static func estimatedTokens(of body: JSONValue) -> Int {
        var characters = 0
        for message in body["messages"]?.arrayValue ?? [] {
            if let text = message["content"]?.stringValue {
                characters += text.count
            } else {
                for part in message["content"]?.arrayValue ?? [] { characters += part["text"]?.stringValue?.count ?? 0 }
            }
        }
        return (characters + 3) / 4
    }

    /// A new request's prompt tokens: counted by the engine where `plan` reached one, else
    /// estimated. vLLM's `/tokenize` renders the chat template itself; llama.cpp's takes text, so the
    /// messages go through its `/apply-template` first and the prompt is tokenized as the server
    /// tokenizes a chat prompt (special tokens added and parsed).
    private func promptTokens(of body: JSONValue, engine: String) async -> Int {
        guard let tokenizer = tokenizers[engine], let messages = body["messages"] else {
            return Self.estimatedTokens(of: body)
        }
        if endpoints[engine]?.dialect == .llamacpp {
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

    /// Passes one row through `stages`, in order; every stage sees every row the stage before it emitted.
    func process(_ row: PipelineRow, through stages: [any PipelineStage]) async throws -> SegmentResult {
        var current = [row]
        var emissions: [StageEmission] = []
        for stage in stages {
            var next: [PipelineRow] = []
            for row in current {
                try Task.checkCancellation()
                for (emission, out) in try await apply(stage, to: row) {
                    emissions.append(emission)
                    if let out { next.append(out) }
                }
            }
            current = next
        }
        return SegmentResult(emissions: emissions, rows: current, sourceIndex: row.order[0])
    }

    /// Why `row` cannot go to `stage`: an upstream stage it reads failed for this row.
    func upstreamFailure(of stage: String, in row: PipelineRow) -> StageFailure? {
        row.firstFailed(among: graph.reads(of: stage)).map {
            StageFailure(errorClass: "upstream_failed", message: "upstream stage '\($0)' failed for this row")
        }
    }

    /// One stage on one row: the emissions, each with the row that continues (nil when dropped).
    private func apply(_ stage: any PipelineStage, to row: PipelineRow) async throws -> [(StageEmission, PipelineRow?)]
    {
        let id = stage.config.id
        let fansOut = ((stage as? any RowStage)?.samples ?? 1) > 1
        func emit(_ outcome: StageOutcome, for row: PipelineRow, rejection: String? = nil) -> (
            StageEmission, PipelineRow?
        ) {
            var outcome = outcome
            // A failure an interrupted run recorded stays a failure, here and downstream.
            if let recorded = previous[ManifestRecovery.key(row: row.rowID, stage: id)]?.error {
                outcome.output = nil
                outcome.failure = recorded
            }
            let emission = StageEmission(
                rowID: row.rowID, outcome: outcome, rejection: rejection, parent: fansOut ? row.parent : nil,
                sampleIndex: fansOut ? row.sampleIndex : nil, fields: row.loaded.recorded)
            guard rejection == nil else { return (emission, nil) }
            var row = row
            row.outputs[id] = emission.record
            return (emission, row)
        }

        var outcome = StageOutcome(stageID: id)
        let upstreamFailure = upstreamFailure(of: id, in: row)
        if let filter = stage as? FilterStage {
            if let upstreamFailure {
                outcome.failure = upstreamFailure
                return [emit(outcome, for: row, rejection: "upstream_failed: " + upstreamFailure.message)]
            }
            let context = row.context(reading: graph.reads(of: id))
            let rejection = filter.rejection(of: context)
            outcome.output = filter.output(for: context, kept: rejection == nil)
            return [emit(outcome, for: row, rejection: rejection)]
        }
        if let embed = stage as? EmbedStage {
            if let upstreamFailure {
                outcome.failure = upstreamFailure
                return [emit(outcome, for: row)]
            }
            return [emit(try await run(embed, row: row.context(reading: graph.reads(of: id))), for: row)]
        }
        if let rerank = stage as? RerankStage {
            if let upstreamFailure {
                outcome.failure = upstreamFailure
                return [emit(outcome, for: row)]
            }
            return [emit(try await run(rerank, row: row.context(reading: graph.reads(of: id))), for: row)]
        }
        guard let stage = stage as? any RowStage else { return [] }
        let rows = fansOut ? (0..<stage.samples).map { child(of: row, stage: id, sample: $0) } : [row]
        if let upstreamFailure {
            outcome.failure = upstreamFailure
            return rows.map { emit(outcome, for: $0) }
        }
        let context = row.context(reading: graph.reads(of: id))
        var results: [(StageEmission, PipelineRow?)] = []
        for (sample, out) in rows.enumerated() {
            results.append(emit(try await run(stage, row: context, sample: sample), for: out))
        }
        return results
    }

    private func child(of row: PipelineRow, stage: String, sample: Int) -> PipelineRow {
        var child = row
        child.rowID = PipelineRow.childID(parent: row.rowID, stage: stage, sample: sample)
        child.order = row.order + [sample]
        child.parent = row.rowID
        child.sampleIndex = sample
        return child
    }

    /// One stage's calls for one row (sample), timed.
    private func run(_ stage: any RowStage, row: RowContext, sample: Int) async throws -> StageOutcome {
        try await timed { await attempts(stage, row: row, sample: sample) }
    }

    /// A stage's outcome for a row with its latency. An interrupted request is not a result: the
    /// row stays unfinished, to be resumed.
    private func timed(_ body: () async throws -> StageOutcome) async throws -> StageOutcome {
        let start = ContinuousClock.now
        var outcome = try await body()
        outcome.latencyMs = Int((ContinuousClock.now - start) / .milliseconds(1))
        if Task.isCancelled || outcome.failure?.errorClass == "cancelled" { throw CancellationError() }
        return outcome
    }

    /// How a failed engine call is recorded.
    static func failure(for error: any Error) -> StageFailure {
        if error is CancellationError {
            return StageFailure(errorClass: "cancelled", message: "the run was interrupted")
        }
        if let error = error as? LabelForgeError {
            return StageFailure(errorClass: error.code.rawValue, message: error.message)
        }
        return StageFailure(errorClass: "engine_failed", message: String(describing: error))
    }

    /// Every request through the executor at once, answers in request order.
    private func executeAll(_ requests: [PreparedRequest], on engine: EngineEndpoint) async throws
        -> [ExecutedRequest]
    {
        let executor = self.executor
        return try await withThrowingTaskGroup(of: (Int, ExecutedRequest).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, try await executor.execute(request, on: engine)) }
            }
            var answers = [ExecutedRequest?](repeating: nil, count: requests.count)
            for try await (index, answer) in group { answers[index] = answer }
            return answers.map { $0! }
        }
    }

    /// The one vector of a single-text embeddings answer (fresh or from the cache's payload), and
    /// whether its text was cut to the model's window.
    static func vector(of answer: ExecutedRequest) throws -> (vector: [Float], promptTokens: Int, truncated: Bool) {
        let response =
            try answer.payload.map { try EmbeddingsResponse(json: answer.response, payload: $0) }
            ?? EmbeddingsResponse(raw: answer.response)
        guard response.vectors.count == 1, let vector = response.vectors.first, !vector.isEmpty else {
            throw LabelForgeError(.invalidResponse, "expected one vector for one text, got \(response.vectors.count)")
        }
        return (vector, response.promptTokens, response.truncatedCount > 0)
    }

    /// Vectors for texts, for a dataset-wide stage: one single-text request each through the
    /// executor (cache, single flight) and the stage's batcher, with enough in flight to fill
    /// batches. A request that fails is that text's answer, not the stage's end; every request goes
    /// into `ledger`. Under `labelforge plan` a text the cache lacks is a `cache_miss` failure with
    /// its prompt tokens estimated.
    /// - Parameter progress: called with how many texts have their answer.
    func embed(
        _ texts: [String], stageID: String, ledger: BarrierLedger, progress: @Sendable (Int) -> Void
    ) async throws -> [BarrierAnswer<[Float]>] {
        guard let engine = embedEndpoints[stageID] else {
            throw LabelForgeError(.invalidConfig, "stage '\(stageID)' has no embedding engine.")
        }
        let window = 256
        let executor = self.executor
        let estimateMisses = self.estimateMisses
        let limit = truncation[stageID]
        // Texts go out shortest first, so a batched request holds texts of like length and the
        // engine pads little (each text keeps its own cache key whatever batch it travels in).
        let order = texts.indices.sorted { texts[$0].utf8.count < texts[$1].utf8.count }
        return try await withThrowingTaskGroup(of: (Int, BarrierAnswer<[Float]>).self) { group in
            var answers = [BarrierAnswer<[Float]>?](repeating: nil, count: texts.count)
            var next = 0
            var done = 0
            func add() {
                let index = order[next]
                next += 1
                let text = texts[index]
                let request = PreparedRequest(
                    EmbedStage.request(text: text, modelID: engine.modelID, truncate: limit), on: engine)
                group.addTask {
                    let key = request.key.description
                    do {
                        let answer = try await executor.execute(request, on: engine)
                        let (vector, tokens, truncated) = try Self.vector(of: answer)
                        ledger.record(
                            key,
                            .init(
                                cacheHit: answer.servedWithoutRequest, attempts: answer.attempts, tokensIn: tokens,
                                failed: false, truncated: truncated))
                        return (index, BarrierAnswer(key: key, result: .success(vector)))
                    } catch {
                        let failure = Self.failure(for: error)
                        if failure.errorClass == "cancelled" { throw CancellationError() }
                        let tokens = estimateMisses ? (text.count + 3) / 4 : 0
                        ledger.record(key, .init(cacheHit: false, attempts: 0, tokensIn: tokens, failed: true))
                        return (index, BarrierAnswer(key: key, result: .failure(failure)))
                    }
                }
            }
            while next < min(window, texts.count) { add() }
            while let (index, answer) = try await group.next() {
                answers[index] = answer
                done += 1
                progress(done)
                if next < texts.count { add() }
            }
            return answers.map { $0! }
        }
    }

    /// Scores of documents for a query, for a dataset-wide stage's reranker: one cached request per
    /// pair, concurrently, through the executor and the stage's batcher; a pair whose request fails
    /// gets its failure. Every request goes into `ledger`.
    func rerank(query: String, documents: [String], stageID: String, ledger: BarrierLedger) async throws
        -> [BarrierAnswer<Double>]
    {
        guard let engine = rerankEndpoints[stageID] else {
            throw LabelForgeError(.invalidConfig, "stage '\(stageID)' has no rerank engine.")
        }
        let executor = self.executor
        let estimateMisses = self.estimateMisses
        let limit = rerankTruncation[stageID]
        return try await withThrowingTaskGroup(of: (Int, BarrierAnswer<Double>).self) { group in
            for (index, document) in documents.enumerated() {
                let request = PreparedRequest(
                    RerankStage.request(query: query, document: document, modelID: engine.modelID, truncate: limit),
                    on: engine)
                group.addTask {
                    let key = request.key.description
                    do {
                        let answer = try await executor.execute(request, on: engine)
                        let response = try RerankResponse(raw: answer.response, documents: 1)
                        let score = response.scores[0]
                        ledger.record(
                            key,
                            .init(
                                cacheHit: answer.servedWithoutRequest, attempts: answer.attempts,
                                tokensIn: answer.response["usage"]?["prompt_tokens"]?.intValue ?? 0, failed: false,
                                truncated: response.truncatedFrom[0] != nil))
                        return (index, BarrierAnswer(key: key, result: .success(score)))
                    } catch {
                        let failure = Self.failure(for: error)
                        if failure.errorClass == "cancelled" { throw CancellationError() }
                        let tokens = estimateMisses ? (query.count + document.count + 3) / 4 : 0
                        ledger.record(key, .init(cacheHit: false, attempts: 0, tokensIn: tokens, failed: true))
                        return (index, BarrierAnswer(key: key, result: .failure(failure)))
                    }
                }
            }
            var answers = [BarrierAnswer<Double>?](repeating: nil, count: documents.count)
            for try await (index, answer) in group { answers[index] = answer }
            return answers.map { $0! }
        }
    }

    /// One row's scores: a single-document rerank request per document, concurrently, through the
    /// executor and the stage's batcher (which sends one query's pairs together).
    private func run(_ stage: RerankStage, row: RowContext) async throws -> StageOutcome {
        try await timed { try await scores(stage, row: row) }
    }

    private func scores(_ stage: RerankStage, row: RowContext) async throws -> StageOutcome {
        var outcome = StageOutcome(stageID: stage.config.id)
        guard let (query, documents) = stage.options.inputs(of: row) else {
            outcome.failure = StageFailure(
                errorClass: "missing_field",
                message: "the row has no '\(stage.options.query)' or '\(stage.options.documents)' to rerank")
            return outcome
        }
        let engine = embedEndpoints[stage.config.id] ?? endpoints[stage.config.engine]!
        let limit = truncation[stage.config.id]
        let requests = documents.map {
            PreparedRequest(
                RerankStage.request(
                    query: query, document: $0, modelID: engine.modelID, endpoint: stage.options.endpoint,
                    truncate: limit), on: engine)
        }
        outcome.requestKeys = requests.map(\.key.description)
        do {
            let answers = try await executeAll(requests, on: engine)
            var scores: [Double] = []
            for answer in answers {
                if answer.servedWithoutRequest { outcome.cacheHits += 1 }
                outcome.attempts += answer.attempts
                if let replica = answer.replica { outcome.servedBy.append(replica) }
                let response = try RerankResponse(raw: answer.response, documents: 1)
                if response.truncatedFrom[0] != nil { outcome.truncated += 1 }
                scores.append(response.scores[0])
            }
            outcome.output = RerankStage.fields(scores: scores)
        } catch {
            outcome.failure = Self.failure(for: error)
        }
        return outcome
    }

    /// One row's vector: a single-text embeddings request through the executor (and the stage's
    /// batcher on a miss).
    private func run(_ stage: EmbedStage, row: RowContext) async throws -> StageOutcome {
        try await timed { await vector(stage, row: row) }
    }

    private func vector(_ stage: EmbedStage, row: RowContext) async -> StageOutcome {
        var outcome = StageOutcome(stageID: stage.config.id)
        guard let text = stage.text(of: row) else {
            outcome.failure = StageFailure(
                errorClass: "missing_field", message: "the row has no text in '\(stage.options.field)' to embed")
            return outcome
        }
        let engine = embedEndpoints[stage.config.id] ?? endpoints[stage.config.engine]!
        let request = PreparedRequest(
            EmbedStage.request(text: text, modelID: engine.modelID, truncate: truncation[stage.config.id]), on: engine)
        outcome.requestKeys.append(request.key.description)
        do {
            let answer = try await executor.execute(request, on: engine)
            if answer.servedWithoutRequest { outcome.cacheHits += 1 }
            outcome.attempts += answer.attempts
            if let replica = answer.replica { outcome.servedBy.append(replica) }
            let (vector, promptTokens, truncated) = try Self.vector(of: answer)
            outcome.tokensIn = promptTokens
            if truncated { outcome.truncated = 1 }
            outcome.output = EmbedStage.fields(of: vector)
            outcome.vector = vector
        } catch {
            outcome.failure = Self.failure(for: error)
        }
        return outcome
    }

    private func attempts(_ stage: any RowStage, row: RowContext, sample: Int) async -> StageOutcome {
        var outcome = StageOutcome(stageID: stage.config.id)
        if let failure = stage.inputFailure(in: row) {
            outcome.failure = failure
            return outcome
        }
        var parts: [[String: JSONValue]] = []
        while let call = stage.nextCall(for: row, after: parts) {
            guard
                let part = await attempts(
                    stage, call: call, index: parts.count, row: row, sample: sample, outcome: &outcome)
            else {
                return outcome
            }
            parts.append(part)
        }
        var output = stage.output(merging: parts, for: row)
        if stage.recordsLineage {
            output["lineage"] = [
                "seed_row_id": .string(row.rowID), "stage": .string(stage.config.id),
                "sample_index": .int(Int64(sample)),
            ]
        }
        outcome.output = output
        return outcome
    }

    /// One call's attempts: returns its parsed fields, or `nil` with `outcome.failure` set.
    private func attempts(
        _ stage: any RowStage, call: StageCall, index: Int, row: RowContext, sample: Int, outcome: inout StageOutcome
    ) async -> [String: JSONValue]? {
        // `config` read once: through the existential, every read copies the whole struct.
        let config = stage.config
        let engine = endpoints[config.engine]!
        let cachePrompt = self.config.determinism != "strict"
        for attempt in 0...config.maxValidationRetries {
            let callID = config.id + call.seedSuffix
            let seedStage = attempt == 0 ? callID : "\(callID)#retry\(attempt)"
            let seed = Seed.derive(runSeed: self.config.seed, stageID: seedStage, rowID: row.rowID, sampleIndex: sample)
            let request: PreparedRequest
            do {
                var chat = try stage.request(
                    for: row, call: call, pack: pack, seed: seed, cachePrompt: cachePrompt)
                if !stage.usesLogprobs(in: engine.dialect) { chat.sampling.topLogprobs = nil }
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
                outcome.failure = StageFailure(errorClass: "render_error", message: String(describing: error))
                return nil
            }
            outcome.requestKeys.append(request.key.description)
            let raw: JSONValue
            do {
                let answer = try await executor.execute(request, on: engine)
                if answer.servedWithoutRequest { outcome.cacheHits += 1 }
                outcome.attempts += answer.attempts
                if let replica = answer.replica { outcome.servedBy.append(replica) }
                raw = answer.response
            } catch {
                outcome.failure = Self.failure(for: error)
                if estimateMisses, (error as? LabelForgeError)?.code == .cacheMiss {
                    outcome.tokensIn += await promptTokens(of: request.request.body, engine: config.engine)
                }
                return nil
            }
            let response: ChatResponse
            do {
                response = try ChatResponse(raw: raw)
            } catch {
                outcome.failure = StageFailure(errorClass: "invalid_response", message: String(describing: error))
                continue
            }
            outcome.tokensIn += response.promptTokens
            outcome.tokensOut += response.completionTokens
            switch stage.parse(response, call: index, dialect: engine.dialect) {
            case .success(let fields):
                outcome.failure = nil
                return fields
            case .failure(let failure):
                outcome.failure = StageFailure(
                    errorClass: failure.errorClass,
                    message: failure.message + " (attempt \(attempt + 1) of \(config.maxValidationRetries + 1))")
            }
        }
        return nil
    }
}
