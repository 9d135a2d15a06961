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
    var latencyMs = 0
    var tokensIn = 0
    var tokensOut = 0

    /// The manifest's `cache`: `hit` when every request came from the cache, `miss` when one did
    /// not, `none` when the row failed before any request.
    var cacheStatus: String {
        requestKeys.isEmpty ? "none" : cacheHits == requestKeys.count ? "hit" : "miss"
    }
}

/// One row after every stage ran.
struct RowResult: Sendable {
    var index: Int
    var rowID: String
    var fields: [String: JSONValue]
    var outcomes: [StageOutcome]
}

/// Runs one row through the row-wise stages: render → cache lookup → engine → validate → output.
///
/// A response that fails validation is retried with a new seed derived from
/// `<stage id>#retry<k>`, so retries too are deterministic and cached.
struct RowProcessor: Sendable {
    var config: RunConfig
    var pack: PromptPack
    var stages: [any RowStage]
    var endpoints: [String: EngineEndpoint]
    var executor: RequestExecutor
    var logger: Logger

    func process(index: Int, rowID: String, record: LoadedRecord) async throws -> RowResult {
        var outcomes: [StageOutcome] = []
        let row = RowContext(
            rowID: rowID, index: index, fields: record.recorded, images: record.images, imageFailures: record.failures)
        for stage in stages {
            try Task.checkCancellation()
            let outcome = await run(stage, row: row)
            // An interrupted request is not a result: the row stays unfinished, to be resumed.
            if Task.isCancelled || outcome.failure?.errorClass == "cancelled" { throw CancellationError() }
            outcomes.append(outcome)
        }
        return RowResult(index: index, rowID: rowID, fields: record.recorded, outcomes: outcomes)
    }

    private func run(_ stage: any RowStage, row: RowContext) async -> StageOutcome {
        let start = ContinuousClock.now
        var outcome = await attempts(stage, row: row)
        outcome.latencyMs = Int((ContinuousClock.now - start) / .milliseconds(1))
        return outcome
    }

    private func attempts(_ stage: any RowStage, row: RowContext) async -> StageOutcome {
        var outcome = StageOutcome(stageID: stage.config.id)
        if let failure = stage.inputFailure(in: row) {
            outcome.failure = failure
            return outcome
        }
        var parts: [[String: JSONValue]] = []
        for (index, call) in stage.calls(for: row).enumerated() {
            guard let part = await attempts(stage, call: call, index: index, row: row, outcome: &outcome) else {
                return outcome
            }
            parts.append(part)
        }
        outcome.output = stage.merge(parts)
        return outcome
    }

    /// One call's attempts: returns its parsed fields, or `nil` with `outcome.failure` set.
    private func attempts(
        _ stage: any RowStage, call: StageCall, index: Int, row: RowContext, outcome: inout StageOutcome
    ) async -> [String: JSONValue]? {
        let engine = endpoints[stage.config.engine]!
        for attempt in 0...stage.config.maxValidationRetries {
            let callID = stage.config.id + call.seedSuffix
            let seedStage = attempt == 0 ? callID : "\(callID)#retry\(attempt)"
            let seed = Seed.derive(runSeed: config.seed, stageID: seedStage, rowID: row.rowID, sampleIndex: 0)
            let request: EngineRequest
            do {
                let chat = try stage.request(
                    for: row, call: call, pack: pack, seed: seed, cachePrompt: config.determinism != "strict")
                request = EngineRequest(kind: .chat, body: engine.dialect.body(for: chat, modelID: engine.modelID))
            } catch {
                outcome.failure = StageFailure(errorClass: "render_error", message: String(describing: error))
                return nil
            }
            outcome.requestKeys.append(RequestExecutor.key(of: request, on: engine).description)
            let raw: JSONValue
            do {
                let answer = try await executor.execute(request, on: engine)
                if answer.servedWithoutRequest { outcome.cacheHits += 1 }
                outcome.attempts += answer.attempts
                raw = answer.response
            } catch is CancellationError {
                outcome.failure = StageFailure(errorClass: "cancelled", message: "the run was interrupted")
                return nil
            } catch let error as LabelForgeError {
                outcome.failure = StageFailure(errorClass: error.code.rawValue, message: error.message)
                return nil
            } catch {
                outcome.failure = StageFailure(errorClass: "engine_failed", message: String(describing: error))
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
                    message: failure.message + " (attempt \(attempt + 1) of \(stage.config.maxValidationRetries + 1))")
            }
        }
        return nil
    }
}
