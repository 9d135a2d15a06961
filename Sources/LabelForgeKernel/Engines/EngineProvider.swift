import Foundation
import LabelForgeCore
import LabelForgeLLM
import Logging

/// Where a run's engines come from. `withEngines` brings up the engines `plan`'s stages send
/// requests to (engines no stage uses are neither started nor contacted), runs `body` with them, and
/// takes them down after it, whether it returns or throws. An error thrown before `body` begins is a
/// start failure: the run records it as such.
///
/// Three kinds: live (`LiveEngines` in LabelForgePipelines: local servers started, HTTP and Ray
/// engines connected), recorded (`RecordedEngines`: nothing is reached, every answer comes from the
/// cache) and in-memory (`InMemoryEngines`: transports given in code, for tests of the kernel).
package protocol EngineProvider: Sendable {
    func withEngines<T: Sendable>(
        for plan: RunPlan, logPath: String, ledger: (any BatchLedger)?, _ body: (EngineSet) async throws -> T
    ) async throws -> T
}

extension EngineProvider {
    /// Engines with no ledger for batches (a batch engine's batches are then not recorded).
    package func withEngines<T: Sendable>(
        for plan: RunPlan, logPath: String, _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        try await withEngines(for: plan, logPath: logPath, ledger: nil, body)
    }
}

extension RunPlan {
    /// The engines a stage of this plan sends requests to, in the config's order: the only ones a run
    /// starts or contacts.
    package var usedEngines: [RunConfig.Engine] {
        let used = Set(stages.flatMap { $0.engineUses.map(\.engine) })
        return config.engines.filter { used.contains($0.name) }
    }

    /// The model pin of `engine`.
    package func model(of engine: RunConfig.Engine) -> ResolvedModel {
        models.first { $0.engine == engine.name }!
    }
}

/// Engines that are never reached: every answer must come from the cache (an offline replay, a
/// merge that stops at the first barrier, `labelforge plan`). A request that gets past the cache
/// is refused (`RecordedEngine`).
package struct RecordedEngines: EngineProvider {
    package init() {}

    package func withEngines<T: Sendable>(
        for plan: RunPlan, logPath: String, ledger: (any BatchLedger)?, _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        // Every engine the config lists: a replay names engines by its recorded pins.
        try await EngineSet.offline(config: plan.config, models: plan.models).serving(body)
    }
}

/// Engines whose transports are given in code (`InMemoryTransport` of LabelForgeTesting, or any
/// other `EngineTransport`), by engine name: a run of the kernel with no socket and no process.
/// An engine the plan uses and `transports` lacks is refused before the run starts.
package struct InMemoryEngines: EngineProvider {
    package var transports: [String: any EngineTransport]

    package init(_ transports: [String: any EngineTransport]) { self.transports = transports }

    package func withEngines<T: Sendable>(
        for plan: RunPlan, logPath: String, ledger: (any BatchLedger)?, _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        var handles: [String: EngineHandle] = [:]
        for engine in plan.usedEngines {
            guard let transport = transports[engine.name] else {
                throw LabelForgeError(
                    .engineUnavailable, "engine '\(engine.name)' has no in-memory transport (InMemoryEngines).")
            }
            handles[engine.name] = EngineHandle(
                config: engine, dialect: EngineDialect(name: engine.dialect)!, transport: transport,
                model: plan.model(of: engine), launcher: nil)
        }
        return try await EngineSet(handles: handles).serving(body)
    }
}
