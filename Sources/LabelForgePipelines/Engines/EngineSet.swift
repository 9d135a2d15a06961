import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import Logging

/// The engines of a run: starts `local` ones, connects to the rest, and stops everything on exit.
struct EngineSet: Sendable {
    var handles: [String: EngineHandle]

    func handle(_ name: String) -> EngineHandle { handles[name]! }

    /// Every engine as the request executor reaches it, by name. An embedding or rerank engine's
    /// requests fit their texts to the model's window on their way (`TruncatingTransport`).
    func endpoints(infos: [String: JSONValue]) -> [String: EngineEndpoint] {
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
    var requestsSent: Int { handles.values.reduce(0) { $0 + $1.transport.requestsSent } }

    func checkReachable() async throws {
        for handle in handles.values.sorted(by: { $0.config.name < $1.config.name }) {
            try await handle.transport.checkReachable()
        }
    }

    /// What each engine reports about itself, and for a local engine which launcher ran it.
    func probe() async -> [String: JSONValue] {
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
    func describe(infos: [String: JSONValue]) -> [RunRecord.EnginePin] {
        handles.values.sorted(by: { $0.config.name < $1.config.name }).map { h in
            RunRecord.EnginePin(
                name: h.config.name, kind: h.config.kind.rawValue, dialect: h.dialect.name,
                slots: h.config.kind == .local ? h.config.slots : nil, maxInFlight: h.config.maxInFlight,
                replicas: h.config.baseURLs.count, info: infos[h.config.name] ?? .null)
        }
    }

    /// Handles that never reach an engine, for cache-only replays.
    static func offline(config: RunConfig, models: [ResolvedModel], logger: Logger) -> EngineSet {
        var handles: [String: EngineHandle] = [:]
        for engine in config.engines {
            handles[engine.name] = EngineHandle(
                config: engine, dialect: EngineDialect(name: engine.dialect)!,
                transport: RecordedEngine(name: engine.name), model: models.first { $0.engine == engine.name }!,
                launcher: nil)
        }
        return EngineSet(handles: handles)
    }

    /// How a client reaches `engine` at `baseURLs`: its API key (from the environment variable the
    /// config names), timeout, retries and concurrency.
    static func endpointOptions(_ engine: RunConfig.Engine, baseURLs: [String]) -> EndpointOptions {
        let apiKey = engine.apiKeyEnv.flatMap { ProcessInfo.processInfo.environment[$0] }
        return EndpointOptions(
            baseURLs: baseURLs, apiKey: apiKey, requestTimeout: .milliseconds(Int64(engine.timeoutSeconds * 1000)),
            maxRetries: engine.maxRetries, maxInFlight: engine.maxInFlight,
            maxInFlightPerReplica: engine.maxInFlightPerReplica)
    }

    func shutdown() async {
        for handle in handles.values { await handle.transport.shutdown() }
    }

    /// Runs `body` with every engine a stage sends requests to up (a local one as its own server);
    /// engines no stage uses are neither started nor contacted. Errors while starting a local engine
    /// go through `onStartFailure`, which records them and returns the error to throw.
    static func withEngines<T: Sendable>(
        config: RunConfig, models: [ResolvedModel], logPath: String, logger: Logger,
        _ body: (EngineSet) async throws -> T,
        onStartFailure: (LabelForgeError) -> LabelForgeError
    ) async throws -> T {
        var started = false
        // Only engines a stage sends requests to are started: a config may list more.
        let used = Set(
            config.stages.filter { ($0.options.engineTask ?? StageRegistry.type(named: $0.type)?.engineTask) != nil }
                .map(\.engine) + config.stages.flatMap { $0.options.extraEngines.map(\.name) })
        do {
            return try await start(
                remaining: config.engines.filter { used.contains($0.name) }[...], config: config, models: models,
                logPath: logPath, logger: logger,
                handles: [:]
            ) { set in
                started = true
                return try await body(set)
            }
        } catch let error as LabelForgeError where !started {
            throw onStartFailure(error)
        }
    }

    private static func start<T: Sendable>(
        remaining: ArraySlice<RunConfig.Engine>, config: RunConfig, models: [ResolvedModel], logPath: String,
        logger: Logger, handles: [String: EngineHandle], _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        guard let engine = remaining.first else {
            let set = EngineSet(handles: handles)
            do {
                let value = try await body(set)
                for handle in handles.values { await handle.transport.shutdown() }
                return value
            } catch {
                for handle in handles.values { await handle.transport.shutdown() }
                throw error
            }
        }
        let model = models.first { $0.engine == engine.name }!
        let dialect = EngineDialect(name: engine.dialect)!
        func endpoint(_ urls: [String]) -> EndpointOptions { Self.endpointOptions(engine, baseURLs: urls) }
        if engine.kind == .local {
            var options = LocalEngineOptions(
                modelPath: model.path!, task: LocalEngineTask(rawValue: engine.task) ?? .chat, slots: engine.slots,
                contextPerSlot: engine.contextPerSlot, threads: engine.threads ?? 0,
                poll: engine.poll, logPath: logPath)
            // An embedding model's input must fit one physical batch (512 tokens by default).
            if let limit = model.maxInputTokens, limit > 512 { options.batchTokens = limit }
            return try await LocalEngine.withRunning(options, logger: logger) { running in
                var handles = handles
                handles[engine.name] = EngineHandle(
                    config: engine, dialect: dialect,
                    transport: OpenAIClient(options: endpoint([running.baseURL]), logger: logger),
                    model: model, launcher: running.launcher)
                return try await start(
                    remaining: remaining.dropFirst(), config: config, models: models, logPath: logPath, logger: logger,
                    handles: handles, body)
            }
        }
        var handles = handles
        if let ray = engine.ray {
            guard
                let driver = ProjectPaths.projectFile("scripts/ray_driver.py").flatMap({
                    FileManager.default.contents(atPath: $0)
                })
            else {
                throw LabelForgeError(
                    .fileNotFound,
                    "scripts/ray_driver.py is missing: engine '\(engine.name)' ships it to the Ray cluster. Run from a "
                        + "checkout, or reinstall with `make install`.")
            }
            let exchange: RayJobExchange
            if let output = ray.outputDirectory {
                exchange = .directory(output)
            } else {
                // The config refuses a Ray engine with neither output_dir nor a bucket cache.
                exchange = .bucket(
                    CacheBucketJobs(
                        objects: try S3Objects(
                            location: config.cacheS3!, environment: ProcessInfo.processInfo.environment)
                    ))
            }
            let options = RayJobOptions(
                address: ray.address,
                processor: engine.rayProcessor(seed: config.seed, strict: config.determinism == .strict),
                python: ray.python,
                exchange: exchange, batchSize: ray.batchSize, concurrency: ray.concurrency,
                maxRequestsPerJob: engine.maxInFlight, preserveOrder: config.determinism == .strict,
                jobTimeout: .milliseconds(Int64(engine.timeoutSeconds * 1000)),
                authToken: try RayJobOptions.authToken(environment: ProcessInfo.processInfo.environment))
            handles[engine.name] = EngineHandle(
                config: engine, dialect: dialect,
                transport: RayJobTransport(options: options, driver: driver, logger: logger),
                model: model, launcher: nil, recordsLauncher: false)
            return try await start(
                remaining: remaining.dropFirst(), config: config, models: models, logPath: logPath, logger: logger,
                handles: handles, body)
        }
        handles[engine.name] = EngineHandle(
            config: engine, dialect: dialect,
            transport: OpenAIClient(options: endpoint(engine.baseURLs), logger: logger), model: model, launcher: nil)
        return try await start(
            remaining: remaining.dropFirst(), config: config, models: models, logPath: logPath, logger: logger,
            handles: handles, body)
    }
}

/// A Ray engine's job files in the run's cache bucket, under `<cache prefix>/ray-jobs/` (beside the
/// cache's `<2 hex>/<key>.json` objects, which its listing never mistakes them for).
struct CacheBucketJobs: RayJobBucket {
    let objects: S3Objects
    var endpoint: String { objects.location.endpoint }
    var region: String { objects.location.region }
    func url(_ name: String) -> String { objects.url("ray-jobs/" + name) }
    func put(_ name: String, _ data: Data) async throws { try await objects.put("ray-jobs/" + name, data) }
    func get(_ name: String) async throws -> Data? { try await objects.get("ray-jobs/" + name) }
    func delete(_ name: String) async { await objects.delete("ray-jobs/" + name) }
}

extension RunConfig.Engine {
    /// How a `ray` engine's jobs answer: over HTTP to `base_url`, or with vLLM inside the job. For
    /// vLLM, the determinism settings `labelforge engine vllm` gives `vllm serve` (with the run's
    /// seed) come first and the config's `engine_kwargs` override them.
    func rayProcessor(seed: UInt64, strict: Bool) -> RayProcessor {
        guard let ray, ray.processor == "vllm" else { return .http(url: baseURLs.first ?? "") }
        var kwargs = Dictionary(
            uniqueKeysWithValues: VLLMLaunch.engineArguments(
                seed: Int(seed), revision: model.revision, strict: strict
            ).map { ($0.name, $0.value) })
        kwargs.merge(ray.engineKwargs?.objectValue ?? [:]) { _, configured in configured }
        return .vllm(
            modelSource: model.id, engineKwargs: .object(kwargs),
            environment: Dictionary(uniqueKeysWithValues: VLLMLaunch.determinismEnvironment(strict: strict)))
    }
}
