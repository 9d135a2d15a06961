import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import Logging

/// The engines of a run as they really are: a `local` engine started as its own llama.cpp server
/// (and stopped after the run), an `openai` engine reached over HTTP, a `ray` engine through Ray
/// jobs. The kernel's other providers are `RecordedEngines` and `InMemoryEngines`.
struct LiveEngines: EngineProvider {
    let logger: Logger
    /// Where API keys, cache credentials and the Ray token are read.
    var environment: RunEnvironment = .live

    func withEngines<T: Sendable>(
        for plan: RunPlan, logPath: String, ledger: (any BatchLedger)?, _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        try await start(plan.usedEngines[...], plan: plan, logPath: logPath, ledger: ledger, handles: [:], body)
    }

    /// Starts or connects the first of `remaining`, then the rest, then runs `body`; each engine is
    /// taken down after it.
    private func start<T: Sendable>(
        _ remaining: ArraySlice<RunConfig.Engine>, plan: RunPlan, logPath: String, ledger: (any BatchLedger)?,
        handles: [String: EngineHandle], _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        guard let engine = remaining.first else { return try await EngineSet(handles: handles).serving(body) }
        func next(_ handle: EngineHandle) async throws -> T {
            var handles = handles
            handles[engine.name] = handle
            return try await start(
                remaining.dropFirst(), plan: plan, logPath: logPath, ledger: ledger, handles: handles, body)
        }
        let model = plan.model(of: engine)
        let dialect = EngineDialect(name: engine.dialect)!
        switch engine.kind {
        case .local(let local):
            var options = LocalEngineOptions(
                modelPath: model.path!, task: LocalEngineTask(rawValue: engine.task) ?? .chat, slots: engine.slots,
                contextPerSlot: engine.contextPerSlot, threads: local.threads, poll: local.poll, logPath: logPath)
            // An embedding model's input must fit one physical batch (512 tokens by default).
            if let limit = model.maxInputTokens, limit > 512 { options.batchTokens = limit }
            return try await LocalEngine.withRunning(options, logger: logger) { running in
                try await next(
                    EngineHandle(
                        config: engine, dialect: dialect,
                        transport: OpenAIClient(
                            options: endpointOptions(engine, baseURLs: [running.baseURL]), logger: logger),
                        model: model, launcher: running.launcher))
            }
        case .ray(let ray):
            return try await next(
                EngineHandle(
                    config: engine, dialect: dialect, transport: try rayTransport(engine, ray, config: plan.config),
                    model: model, launcher: nil, recordsLauncher: false))
        case .batch(let batch):
            let provider = try batchProvider(
                engine, batch, config: plan.config, runDirectory: (logPath as NSString).deletingLastPathComponent)
            let transport = BatchTransport(
                engine: engine.name, provider: provider,
                options: BatchTransport.Options(
                    maxRetries: engine.maxRetries, pollInterval: .milliseconds(Int64(batch.pollSeconds * 1000)),
                    gatherWindow: .milliseconds(Int64(batch.gatherSeconds * 1000))),
                ledger: ledger, logger: logger)
            return try await next(
                EngineHandle(config: engine, dialect: dialect, transport: transport, model: model, launcher: nil))
        case .openAI:
            return try await next(
                EngineHandle(
                    config: engine, dialect: dialect,
                    transport: OpenAIClient(
                        options: endpointOptions(engine, baseURLs: engine.baseURLs), logger: logger),
                    model: model, launcher: nil))
        }
    }

    /// How a client reaches `engine` at `baseURLs`: its API key (from the environment variable the
    /// config names), timeout, retries and concurrency.
    func endpointOptions(_ engine: RunConfig.Engine, baseURLs: [String]) -> EndpointOptions {
        let apiKey = engine.apiKeyEnv.flatMap { environment.variables[$0] }
        return EndpointOptions(
            baseURLs: baseURLs, apiKey: apiKey, requestTimeout: .milliseconds(Int64(engine.timeoutSeconds * 1000)),
            maxRetries: engine.maxRetries, maxInFlight: engine.maxInFlight,
            maxInFlightPerReplica: engine.maxInFlightPerReplica)
    }

    /// A `batch` engine's provider, with its API key (from the environment variable the config
    /// names, else the provider's usual one) and limits.
    private func batchProvider(
        _ engine: RunConfig.Engine, _ batch: RunConfig.Engine.Batch, config: RunConfig, runDirectory: String
    ) throws -> any BatchProvider {
        let keyVariable = engine.apiKeyEnv ?? (batch.provider == "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY")
        let apiKey = environment.variables[keyVariable].flatMap { $0.isEmpty ? nil : $0 }
        switch batch.provider {
        case "anthropic":
            guard let apiKey else {
                throw LabelForgeError(
                    .invalidConfig,
                    "engine '\(engine.name)' (Anthropic message batches) needs an API key in $\(keyVariable); set it, "
                        + "or name another variable with api_key_env.")
            }
            return AnthropicBatches(
                baseURL: engine.baseURLs[0], apiKey: apiKey, maxRequests: batch.maxRequests, maxBytes: batch.maxBytes)
        case "vllm-file":
            // Through the cache's bucket when there is one and no batch_dir is given (a cluster's jobs
            // read and write there with their own credentials), else a directory.
            let exchange: BatchFileExchange =
                if batch.directory == nil, let bucket = config.cacheS3 {
                    .bucket(
                        CacheBucketJobs(
                            objects: try S3Objects(location: bucket, environment: environment.variables),
                            folder: "vllm-batches/"))
                } else {
                    .directory(batch.directory ?? runDirectory + "/batches")
                }
            return VLLMBatchFiles(
                exchange: exchange, localDirectory: runDirectory + "/batches", command: batch.command,
                model: engine.model.path ?? engine.model.id, maxRequests: batch.maxRequests, maxBytes: batch.maxBytes)
        default:
            return OpenAIBatches(
                baseURL: engine.baseURLs[0], apiKey: apiKey, maxRequests: batch.maxRequests, maxBytes: batch.maxBytes,
                completionWindow: batch.completionWindow)
        }
    }

    /// A `ray` engine's transport: its driver script, where its jobs' files travel, its processor.
    private func rayTransport(_ engine: RunConfig.Engine, _ ray: RunConfig.Engine.Ray, config: RunConfig) throws
        -> RayJobTransport
    {
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
                CacheBucketJobs(objects: try S3Objects(location: config.cacheS3!, environment: environment.variables)))
        }
        let options = RayJobOptions(
            address: ray.address,
            processor: engine.rayProcessor(seed: config.seed, strict: config.determinism == .strict),
            python: ray.python,
            exchange: exchange, batchSize: ray.batchSize, concurrency: ray.concurrency,
            maxRequestsPerJob: engine.maxInFlight, preserveOrder: config.determinism == .strict,
            jobTimeout: .milliseconds(Int64(engine.timeoutSeconds * 1000)),
            authToken: try RayJobOptions.authToken(environment: environment.variables))
        return RayJobTransport(options: options, driver: driver, logger: logger)
    }
}

/// A Ray engine's job files (or a vLLM batch engine's batch files) in the run's cache bucket, under
/// `<cache prefix>/ray-jobs/` (`vllm-batches/`), beside the cache's `<2 hex>/<key>.json` objects,
/// which its listing never mistakes them for.
struct CacheBucketJobs: RayJobBucket {
    let objects: S3Objects
    var folder = "ray-jobs/"
    var endpoint: String { objects.location.endpoint }
    var region: String { objects.location.region }
    func url(_ name: String) -> String { objects.url(folder + name) }
    func put(_ name: String, _ data: Data) async throws { try await objects.put(folder + name, data) }
    func get(_ name: String) async throws -> Data? { try await objects.get(folder + name) }
    func delete(_ name: String) async { await objects.delete(folder + name) }
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
