import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeKernel
import LabelForgeLLM
import Logging

/// Runs a pipeline: streams rows through row-wise stages with bounded concurrency, serving
/// requests from the content-addressed cache where it can, and writes the run directory.
public final class Runner: Sendable {
    public let options: RunOptions
    let logger: Logger
    private let progress: @Sendable (RunProgress) -> Void

    public init(options: RunOptions, logger: Logger, progress: @escaping @Sendable (RunProgress) -> Void = { _ in }) {
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    /// Runs the pipeline to the end, or until `max_failure_ratio` aborts it.
    /// - Throws: `LabelForgeError` for bad config, data or prompts (before any request); when
    ///   the engine cannot be reached (after recording the failure in the manifest); and with code
    ///   `interrupted` when cancelled (after flushing the manifest).
    public func run() async throws -> RunReport { try await run(sharedEngines: nil) }

    /// On first use, installs the local engine and the default models a config's local engines
    /// need (`RuntimeSetup`); `plan` never does, it only reads.
    static func installRuntimeIfMissing(configPath: String) throws {
        try installRuntimeIfMissing(config: try RunConfig.load(file: configPath))
    }

    /// On first use, installs the local engine and the default models `config`'s local engines need.
    static func installRuntimeIfMissing(config: RunConfig) throws {
        let models = config.engines.filter { $0.local != nil && $0.model.path == nil }.map(
            ResolvedModel.defaultFile)
        if !models.isEmpty { try RuntimeSetup.installIfMissing(models: models) }
    }

    /// Runs with `sharedEngines` when given (an ablation's engines, started once for all its
    /// variants), else with engines of its own.
    func run(sharedEngines: EngineSet?) async throws -> RunReport {
        var setup = try RunStart(options).setup(options: options, logger: logger)
        if let sharedEngines, case .live = setup.engines { setup.engines = .shared(sharedEngines) }
        let session = RunSession(
            cachePath: options.cachePath, logger: logger, engines: LiveEngines(logger: logger),
            htmlReport: { try HTMLReport.run(directory: $0) }, progress: progress)
        return try await session.run(setup)
    }

    /// Request keys a run's manifest lists that the cache does not hold.
    /// Looked up 10,000 keys at a time, so memory stays flat however long the manifest is.
    static func missingEntries(of run: RunArtifacts, in cache: any CacheStore) async throws -> [String] {
        var scan = MissingKeys(cache: cache)
        let manifest = try run.manifest()
        while let record = try manifest.read() {
            switch record {
            case .row(let row): try await scan.add(row.requestKeys)
            // A dataset-wide stage's requests that no row lists (a corpus file's passages).
            case .barrier(let barrier): try await scan.add(barrier.requestKeys)
            default: continue
            }
        }
        return try await scan.finish()
    }
}

/// Request keys (`sha256:…`) a cache lacks, looked up 10,000 at a time so memory stays flat
/// however many keys go through; each missing key is listed once, in the order first seen.
struct MissingKeys {
    let cache: any CacheStore
    private var missing: [String] = []
    private var seen: Set<String> = []
    private var chunk: [String] = []

    init(cache: any CacheStore) { self.cache = cache }

    mutating func add(_ keys: [String]) async throws {
        chunk += keys
        if chunk.count >= 10_000 { try await check() }
    }

    /// The missing keys, once every key has been added.
    mutating func finish() async throws -> [String] {
        if !chunk.isEmpty { try await check() }
        return missing
    }

    private mutating func check() async throws {
        let present = try await cache.existing(chunk.map { CacheKey(hex: ContentHash.unprefixed($0)) })
        for key in chunk where !present.contains(CacheKey(hex: ContentHash.unprefixed(key))) {
            if seen.insert(key).inserted { missing.append(key) }
        }
        chunk.removeAll(keepingCapacity: true)
    }
}
