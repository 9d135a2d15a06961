import Foundation
import LabelForgeCore
import LabelForgeLLM
import Synchronization

/// What the run gives one stage, the same for every row: its engines (behind their batchers), the
/// token limits its texts are cut to, the executor (cache, single flight), its seeds and prompts.
/// One object per stage, shared by every row's `StageContext`.
package final class StageServices: Sendable {
    package let stageID: String
    /// The run's seed, from which every request's seed derives.
    package let runSeed: UInt64
    /// Whether chat requests may reuse the engine's prompt cache (not under `determinism: strict`).
    package let cachePrompt: Bool
    package let pack: PromptPack
    package let executor: RequestExecutor
    /// The stage's engines by task (`PipelineStage.engineUses`).
    package let endpoints: [EngineUse.Task: EngineEndpoint]
    /// The token limit each task's texts carry (`Truncation`); none sends texts whole.
    package let limits: [EngineUse.Task: Int]
    /// The run's clocks and environment variables.
    package let environment: RunEnvironment
    /// Answers every row of the stage shares (`StageContext.sendShared`), by the stage's name for them.
    package let shared = Mutex<[String: Task<any Sendable, any Error>]>([:])

    package init(
        stageID: String, runSeed: UInt64, cachePrompt: Bool, pack: PromptPack, executor: RequestExecutor,
        endpoints: [EngineUse.Task: EngineEndpoint] = [:], limits: [EngineUse.Task: Int] = [:],
        environment: RunEnvironment = .live
    ) {
        self.stageID = stageID
        self.runSeed = runSeed
        self.cachePrompt = cachePrompt
        self.pack = pack
        self.executor = executor
        self.endpoints = endpoints
        self.limits = limits
        self.environment = environment
    }
}

/// What a stage's `process` has for one row: its engines, seeds and prompts, and `send`, which goes
/// through the executor and records every request in the row's ledger (keys in the order sent,
/// cache hits, attempts, tokens, replicas) for the manifest.
public final class StageContext: Sendable {
    package struct Ledger: Sendable {
        package var requestKeys: [String] = []
        package var cacheHits = 0
        package var attempts = 0
        package var servedBy: [String] = []
        package var tokensIn = 0
        package var tokensOut = 0
    }

    package let services: StageServices
    private let ledger = Mutex(Ledger())

    package init(_ services: StageServices) { self.services = services }

    /// Whether chat requests may reuse the engine's prompt cache (not under `determinism: strict`).
    package var cachePrompt: Bool { services.cachePrompt }
    package var pack: PromptPack { services.pack }

    /// The engine this stage uses for `task`.
    /// - Throws: `LabelForgeError.invalidConfig` when the stage declared no such engine.
    package func endpoint(_ task: EngineUse.Task) throws -> EngineEndpoint {
        guard let endpoint = services.endpoints[task] else {
            throw LabelForgeError(.invalidConfig, "stage '\(services.stageID)' has no \(task.rawValue) engine.")
        }
        return endpoint
    }

    /// The token limit `task`'s texts are cut to; `nil` sends them whole.
    package func truncationLimit(_ task: EngineUse.Task) -> Int? { services.limits[task] }

    /// The run's clocks (`RunEnvironment`): what a stage that times or dates anything reads, so a run
    /// with a fixed environment stays byte-identical.
    package var environment: RunEnvironment { services.environment }

    /// The seed of one call of a row: derived from the run's seed, the call's seed id (the stage id,
    /// plus a suffix per call and retry), the row and the sample.
    package func seed(_ seedID: String, row: String, sample: Int) -> UInt32 {
        Seed.derive(runSeed: services.runSeed, stageID: seedID, rowID: row, sampleIndex: sample)
    }

    /// Sends one request through the executor. Its key is recorded before it goes; its cache hit,
    /// attempts and replica when it is answered. A failure that says what the request would have
    /// cost (`LabelForgeError.promptTokens`: a miss under `labelforge plan`) records those tokens.
    package func send(_ request: PreparedRequest, on engine: EngineEndpoint) async throws -> ExecutedRequest {
        ledger.withLock { $0.requestKeys.append(request.key.description) }
        do {
            let answer = try await services.executor.execute(request, on: engine)
            recordAnswers([answer])
            return answer
        } catch {
            if let tokens = (error as? LabelForgeError)?.promptTokens { ledger.withLock { $0.tokensIn += tokens } }
            throw error
        }
    }

    /// Sends requests all at once; answers come in request order. Their keys are recorded in that
    /// order before any goes; their hits, attempts and replicas once all are answered. When any
    /// fails, every request is still waited for, and the first failure in request order is thrown.
    package func sendAll(_ requests: [PreparedRequest], on engine: EngineEndpoint) async throws -> [ExecutedRequest] {
        ledger.withLock { $0.requestKeys += requests.map(\.key.description) }
        let answers = try await executeAll(requests, on: engine)
        recordAnswers(answers)
        return answers
    }

    /// Requests whose answers every row of the stage shares (a classifier's label and example
    /// texts), sent once per run. The first row to ask builds and sends them (executor, cache, single
    /// flight) and lists them in its ledger (keys at once, hits and attempts once answered), so the
    /// manifest holds every key once, for replay's and `plan`'s counts; every other row waits for the
    /// same answers and sends nothing. A failure is the answer of every row waiting for it; the next
    /// row to ask sends the requests again, except after a cache miss (under `plan` or an offline
    /// replay), which would only miss again. `name` tells the stage's shared sets apart; `derive`
    /// turns the answers into what rows use (vectors, say), once.
    ///
    /// Claiming is synchronous, so a stage that claims before sending its row's own requests lists
    /// the shared keys first, in the same order every run.
    package func claimShared<Value: Sendable>(
        _ name: String, on engine: EngineEndpoint, requests: () -> [PreparedRequest],
        derive: @escaping @Sendable ([ExecutedRequest]) throws -> Value
    ) -> SharedAnswers<Value> {
        let task = services.shared.withLock { shared in
            if let task = shared[name] { return task }
            let requests = requests()
            ledger.withLock { $0.requestKeys += requests.map(\.key.description) }
            let task = Task<any Sendable, any Error> {
                let answers = try await self.executeAll(requests, on: engine)
                self.recordAnswers(answers)
                return try derive(answers)
            }
            shared[name] = task
            return task
        }
        return SharedAnswers(name: name, task: task, services: services)
    }

    /// Sends requests at once and records what they cost (not their keys): see `sendAll`.
    private func executeAll(_ requests: [PreparedRequest], on engine: EngineEndpoint) async throws
        -> [ExecutedRequest]
    {
        let executor = services.executor
        // Each task files its answer in its request's place. (Returning `(index, result)` through
        // the group came back with garbage indices in release builds of Swift 6.3.1.)
        let slots = AnswerSlots(count: requests.count)
        await withTaskGroup(of: Void.self) { group in
            for index in requests.indices {
                let request = requests[index]
                group.addTask {
                    do {
                        slots.file(.success(try await executor.execute(request, on: engine)), at: index)
                    } catch {
                        slots.file(.failure(error), at: index)
                    }
                }
            }
        }
        guard let answers = slots.all else {
            throw LabelForgeError(.engineFailed, "a shared request of \(requests.count) came back without an answer.")
        }
        // Failures that say what their request would have cost (a miss under `labelforge plan`)
        // record those tokens, as `send` does; the first failure, in request order, is thrown.
        let failures = answers.compactMap { result -> (any Error)? in
            if case .failure(let error) = result { return error }
            return nil
        }
        let tokens = failures.reduce(0) { $0 + (($1 as? LabelForgeError)?.promptTokens ?? 0) }
        if tokens > 0 { ledger.withLock { $0.tokensIn += tokens } }
        if let failure = failures.first { throw failure }
        return try answers.map { try $0.get() }
    }

    private func recordAnswers(_ answers: [ExecutedRequest]) {
        ledger.withLock { ledger in
            for answer in answers {
                if answer.servedWithoutRequest { ledger.cacheHits += 1 }
                ledger.attempts += answer.attempts
                if let replica = answer.replica { ledger.servedBy.append(replica) }
            }
        }
    }

    /// Adds the tokens an answer reports to the row's counts.
    package func countTokens(in tokensIn: Int, out tokensOut: Int = 0) {
        ledger.withLock {
            $0.tokensIn += tokensIn
            $0.tokensOut += tokensOut
        }
    }

    /// The row's outcome: the stage's result with what its requests cost.
    package func outcome(_ result: StageResult) -> StageOutcome {
        let ledger = self.ledger.withLock { $0 }
        var outcome = StageOutcome(stageID: services.stageID)
        outcome.output = result.output
        outcome.failure = result.failure
        outcome.vector = result.vector
        outcome.truncated = result.truncated
        outcome.requestKeys = ledger.requestKeys
        outcome.cacheHits = ledger.cacheHits
        outcome.attempts = ledger.attempts
        outcome.servedBy = ledger.servedBy
        outcome.tokensIn = ledger.tokensIn
        outcome.tokensOut = ledger.tokensOut
        return outcome
    }
}

extension StageServices {
    /// Vectors for texts, for a dataset-wide stage: one single-text request each through the
    /// executor (cache, single flight) and the stage's batcher, with enough in flight to fill
    /// batches. A request that fails is that text's answer, not the stage's end; every request goes
    /// into `ledger`. A failed text records the prompt tokens its failure says it would have
    /// cost (`LabelForgeError.promptTokens`: a miss under `labelforge plan`).
    /// - Parameter progress: called with how many texts have their answer.
    package func embed(_ texts: [String], ledger: BarrierLedger, progress: @Sendable (Int) -> Void) async throws
        -> [BarrierAnswer<[Float]>]
    {
        guard let engine = endpoints[.embed] else {
            throw LabelForgeError(.invalidConfig, "stage '\(stageID)' has no embedding engine.")
        }
        let window = 256
        let executor = self.executor
        let limit = limits[.embed]
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
                    .embedding(text: text, modelID: engine.modelID, truncate: limit), on: engine)
                group.addTask {
                    let key = request.key.description
                    do {
                        let answer = try await executor.execute(request, on: engine)
                        let (vector, tokens, truncated) = try answer.singleVector()
                        ledger.record(
                            key,
                            .init(
                                cacheHit: answer.servedWithoutRequest, attempts: answer.attempts, tokensIn: tokens,
                                failed: false, truncated: truncated))
                        return (index, BarrierAnswer(key: key, result: .success(vector)))
                    } catch {
                        return (index, try Self.failedAnswer(error, key: key, ledger: ledger))
                    }
                }
            }
            while next < min(window, texts.count) { add() }
            do {
                while let (index, answer) = try await group.next() {
                    answers[index] = answer
                    done += 1
                    progress(done)
                    if next < texts.count { add() }
                }
            } catch is CancellationError where executor.budgetStop != nil {
                try await Self.finishInFlight(&group)
            }
            return answers.map { $0! }
        }
    }

    /// The budget stops the run: the requests in flight finish (paid for, and cached), then the
    /// stage stops as a cancelled one does.
    private static func finishInFlight<T>(_ group: inout ThrowingTaskGroup<T, any Error>) async throws -> Never {
        while !group.isEmpty { _ = try? await group.next() }
        throw CancellationError()
    }

    /// A barrier request that failed: recorded in `ledger` with the prompt tokens its failure says it
    /// would have cost (`LabelForgeError.promptTokens`), its failure that text's answer. A
    /// cancellation stops the stage instead.
    private static func failedAnswer<Value>(_ error: any Error, key: String, ledger: BarrierLedger) throws
        -> BarrierAnswer<Value>
    {
        let failure = StageFailure(error)
        if failure.errorClass == "cancelled" { throw CancellationError() }
        let tokens = (error as? LabelForgeError)?.promptTokens ?? 0
        ledger.record(key, .init(cacheHit: false, attempts: 0, tokensIn: tokens, failed: true))
        return BarrierAnswer(key: key, result: .failure(failure))
    }

    /// Scores of documents for a query, for a dataset-wide stage's reranker: one cached request per
    /// pair, concurrently, through the executor and the stage's batcher; a pair whose request fails
    /// gets its failure. Every request goes into `ledger`.
    package func rerank(query: String, documents: [String], ledger: BarrierLedger) async throws -> [BarrierAnswer<
        Double
    >] {
        guard let engine = endpoints[.rerank] else {
            throw LabelForgeError(.invalidConfig, "stage '\(stageID)' has no rerank engine.")
        }
        let executor = self.executor
        let limit = limits[.rerank]
        return try await withThrowingTaskGroup(of: (Int, BarrierAnswer<Double>).self) { group in
            for (index, document) in documents.enumerated() {
                let request = PreparedRequest(
                    .rerank(query: query, document: document, modelID: engine.modelID, truncate: limit), on: engine)
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
                        return (index, try Self.failedAnswer(error, key: key, ledger: ledger))
                    }
                }
            }
            var answers = [BarrierAnswer<Double>?](repeating: nil, count: documents.count)
            do {
                for try await (index, answer) in group { answers[index] = answer }
            } catch is CancellationError where executor.budgetStop != nil {
                try await Self.finishInFlight(&group)
            }
            return answers.map { $0! }
        }
    }
}

/// Answers a stage's rows share (`StageContext.claimShared`), once they come.
package struct SharedAnswers<Value: Sendable>: Sendable {
    let name: String
    let task: Task<any Sendable, any Error>
    let services: StageServices

    package func value() async throws -> Value {
        let value: any Sendable
        do {
            value = try await task.value
        } catch {
            if (error as? LabelForgeError)?.code != .cacheMiss {
                services.shared.withLock { shared in
                    if shared[name] == task { shared[name] = nil }
                }
            }
            throw error
        }
        guard let value = value as? Value else {
            throw LabelForgeError(.invalidConfig, "stage '\(services.stageID)' shares '\(name)' as two types.")
        }
        return value
    }
}

/// The answers of requests sent at once, each in its request's place.
private final class AnswerSlots: Sendable {
    private let slots: Mutex<[Result<ExecutedRequest, any Error>?]>

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func file(_ answer: Result<ExecutedRequest, any Error>, at index: Int) { slots.withLock { $0[index] = answer } }

    /// Every answer, once each request has one.
    var all: [Result<ExecutedRequest, any Error>]? {
        slots.withLock { slots in slots.contains { $0 == nil } ? nil : slots.map { $0! } }
    }
}
