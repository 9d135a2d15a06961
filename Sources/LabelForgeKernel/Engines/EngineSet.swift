import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import Logging

/// The engines of a run: starts `local` ones, connects to the rest, and stops everything on exit.
package struct EngineSet: Sendable {
    package var handles: [String: EngineHandle]

    package init(handles: [String: EngineHandle]) {
        self.handles = handles
    }

    package func handle(_ name: String) -> EngineHandle { handles[name]! }

    /// Every engine as the request executor reaches it, by name. An embedding or rerank engine's
    /// requests fit their texts to the model's window on their way (`TruncatingTransport`).
    package func endpoints(infos: [String: JSONValue]) -> [String: EngineEndpoint] {
        handles.mapValues { h in
            let info = infos[h.config.name] ?? .null
            let truncates =
                h.transport.reachesTokenizer && h.config.task != "chat" && TruncatingTransport.truncates(h.dialect)
            return EngineEndpoint(
                name: h.config.name, dialect: h.dialect, modelID: h.model.id, modelRevision: h.model.revision,
                transport: truncates
                    ? TruncatingTransport(base: h.transport, dialect: h.dialect, modelID: h.model.id) : h.transport,
                info: info, maxInputTokens: h.maxInputTokens(info: info))
        }
    }

    /// Total requests sent to all engines.
    package var requestsSent: Int { handles.values.reduce(0) { $0 + $1.transport.requestsSent } }

    package func checkReachable() async throws {
        for handle in handles.values.sorted(by: { $0.config.name < $1.config.name }) {
            try await handle.transport.checkReachable()
        }
    }

    /// What each engine reports about itself, and for a local engine which launcher ran it.
    package func probe() async -> [String: JSONValue] {
        var infos: [String: JSONValue] = [:]
        for (name, handle) in handles {
            var info = await handle.transport.selfReport(dialect: handle.dialect)
            if handle.recordsLauncher, case .object(var object) = info {
                object["launcher"] = handle.launcher.map(JSONValue.string) ?? .null
                info = .object(object)
            }
            infos[name] = info
        }
        return infos
    }

    /// The `engines` entry of the manifest's run line: settings and what each engine reported.
    package func describe(infos: [String: JSONValue]) -> [RunRecord.EnginePin] {
        handles.values.sorted(by: { $0.config.name < $1.config.name }).map { h in
            RunRecord.EnginePin(
                name: h.config.name, kind: h.config.kind.name.rawValue, dialect: h.dialect.name,
                slots: h.config.local != nil ? h.config.slots : nil, maxInFlight: h.config.maxInFlight,
                replicas: h.config.baseURLs.count, info: infos[h.config.name] ?? .null)
        }
    }

    /// Handles that never reach an engine, for cache-only replays.
    package static func offline(config: RunConfig, models: [ResolvedModel]) -> EngineSet {
        var handles: [String: EngineHandle] = [:]
        for engine in config.engines {
            handles[engine.name] = EngineHandle(
                config: engine, dialect: EngineDialect(name: engine.dialect)!,
                transport: RecordedEngine(name: engine.name), model: models.first { $0.engine == engine.name }!,
                launcher: nil)
        }
        return EngineSet(handles: handles)
    }

    /// Runs `body` with these engines, then shuts them down, whether it returns or throws.
    package func serving<T: Sendable>(_ body: (EngineSet) async throws -> T) async throws -> T {
        let result: Result<T, any Error>
        do {
            result = .success(try await body(self))
        } catch {
            result = .failure(error)
        }
        await shutdown()
        return try result.get()
    }

    package func shutdown() async {
        for handle in handles.values { await handle.transport.shutdown() }
    }
}
