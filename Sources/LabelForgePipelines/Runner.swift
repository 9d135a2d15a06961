import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeLLM
import Logging

/// What `labelforge run` was asked to do beyond the config.
public struct RunOptions: Sendable {
    public var configPath: String
    public var runsDir: String
    /// Process only the first N rows (overrides `run.limit`).
    public var limit: Int?
    /// Skip cache reads (responses are still written).
    public var noCache: Bool
    /// Overrides the config's and the environment's cache location.
    public var cachePath: String?
    /// Continue the interrupted run in this directory instead of starting a new one.
    public var resume: String?
    /// With `resume`: also run again the rows that failed (the run may have completed).
    public var retryFailed: Bool
    /// Re-execute a past run from its manifest instead of a config.
    public var replay: ReplayOptions?
    /// Run only this shard's rows, and stop before the first dataset-wide stage.
    public var shard: ShardSpec?
    /// Merge shard runs instead of running a config (`labelforge merge`).
    public var merge: MergeOptions?

    public init(
        configPath: String, runsDir: String = "runs", limit: Int? = nil, noCache: Bool = false,
        cachePath: String? = nil,
        resume: String? = nil, retryFailed: Bool = false, replay: ReplayOptions? = nil, shard: ShardSpec? = nil,
        merge: MergeOptions? = nil
    ) {
        self.shard = shard
        self.merge = merge
        self.retryFailed = retryFailed
        self.configPath = configPath
        self.runsDir = runsDir
        self.limit = limit
        self.noCache = noCache
        self.cachePath = cachePath
        self.resume = resume
        self.replay = replay
    }
}

/// How `labelforge replay` re-executes a run.
public struct ReplayOptions: Sendable {
    /// The run directory to replay (holding manifest.jsonl and config.resolved.yaml).
    public var runDirectory: String
    /// Ignore cached responses and call the engine again with the same seeds.
    public var recompute: Bool
    /// Call the engine for requests the cache lacks (otherwise replay uses the cache only).
    public var allowEngine: Bool

    public init(runDirectory: String, recompute: Bool = false, allowEngine: Bool = false) {
        self.runDirectory = runDirectory
        self.recompute = recompute
        self.allowEngine = allowEngine
    }

    /// Whether no engine is started: every response must come from the cache.
    var offline: Bool { !recompute && !allowEngine }
}

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
        let config = try RunConfig.load(file: configPath)
        let models = config.engines.filter { $0.kind == "local" && $0.model.path == nil }.map(
            ResolvedModel.defaultFile)
        if !models.isEmpty { try RuntimeSetup.installIfMissing(models: models) }
    }

    /// Runs with `sharedEngines` when given (an ablation's engines, started once for all its
    /// variants), else with engines of its own.
    func run(sharedEngines: EngineSet?) async throws -> RunReport {
        let plan: RunPlan
        let directory: RunDirectory
        var previous: ManifestRecovery.State?
        var recordedRun: RunRecord?
        var original: RunArtifacts?
        var merge: ShardMerge?
        if let resume = options.resume {
            let dir = resume.hasSuffix("/") ? String(resume.dropLast()) : resume
            let resolvedPath = dir + "/config.resolved.yaml"
            guard FileManager.default.fileExists(atPath: resolvedPath) else {
                throw LabelForgeError(.fileNotFound, "\(dir) is not a run directory: it has no config.resolved.yaml.")
            }
            directory = RunDirectory(runID: (dir as NSString).lastPathComponent, path: dir)
            var state = try ManifestRecovery.repairAndRead(directory.manifestPath)
            if state.completed && !options.retryFailed {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(dir) already finished; there is nothing to resume. "
                        + "To run its failed rows again, add --retry-failed.")
            }
            plan = try RunPlan.reload(
                runDirectory: dir, recorded: state.run, refusal: "Cannot resume",
                advice: " Start a new run instead.")
            if options.retryFailed {
                let retried = try ManifestRecovery.forgetFailures(directory.manifestPath, graph: plan.graph)
                logger.info("retrying \(retried) failed (row, stage) result(s) of \(dir)")
                state = try ManifestRecovery.repairAndRead(directory.manifestPath)
            }
            if let run = state.run {
                recordedRun = run
                previous = state
            } else {
                try Data().write(to: URL(fileURLWithPath: directory.manifestPath))
            }
            logger.info("resuming \(dir): \(previous?.rows.count ?? 0) (row, stage) results already recorded")
        } else if let options = options.merge {
            let shards = try ShardMerge.load(options.shardDirectories)
            merge = shards
            plan = shards.plan
            previous = shards.state
            directory = try RunDirectory.create(
                runsDir: self.options.runsDir, planHash: plan.planHash,
                resolvedConfig: ResolvedYAML.string(plan.resolved))
            logger.info(
                "merging \(shards.directories.count) shards: \(shards.rows.count) (row, stage) results into \(directory.path)"
            )
        } else if let replay = options.replay {
            let artifacts = try RunArtifacts.load(replay.runDirectory)
            original = artifacts
            plan = try RunPlan.reload(
                runDirectory: artifacts.directory, recorded: artifacts.run, refusal: "Cannot replay")
            directory = try RunDirectory.create(
                runsDir: options.runsDir, planHash: plan.planHash, resolvedConfig: ResolvedYAML.string(plan.resolved))
        } else {
            try Self.installRuntimeIfMissing(configPath: options.configPath)
            plan = try RunPlan.prepare(configPath: options.configPath, limit: options.limit)
            if let warning = plan.dataset.repeatedIDWarning { logger.warning("\(warning)") }
            for unfinished in ManifestRecovery.unfinishedRuns(
                runsDir: options.runsDir, planHash: plan.planHash, shard: options.shard)
            {
                logger.warning(
                    "an unfinished run of this plan exists in \(unfinished); resume it with `labelforge run --resume \(unfinished)`"
                )
            }
            directory = try RunDirectory.create(
                runsDir: options.runsDir, planHash: plan.planHash, resolvedConfig: ResolvedYAML.string(plan.resolved))
        }
        let config = plan.config
        let cache: any CacheStore
        do {
            cache = try await RunCache.open(config: config, overridePath: options.cachePath, logger: logger)
        } catch {
            // Nothing ran: a new run leaves no directory behind.
            if options.resume == nil { try? FileManager.default.removeItem(atPath: directory.path) }
            throw error
        }
        let noCache = options.noCache || options.replay?.recompute == true
        /// Answers the run needs from the cache and cannot find there: no run directory, and why.
        func refuse(_ missing: [String], sample: Int, _ message: (String) -> String) throws {
            guard !missing.isEmpty else { return }
            try? FileManager.default.removeItem(atPath: directory.path)
            throw LabelForgeError(.cacheMiss, message(missing.prefix(sample).joined(separator: ", ")))
        }
        if let replay = options.replay, replay.offline, let original {
            let missing = try await Self.missingEntries(of: original, in: cache)
            try refuse(missing, sample: 5) {
                "The cache lacks \(missing.count) response(s) of \(original.runID), e.g. \($0). Replay with "
                    + "--allow-engine to fetch them, or point --cache-path at the run's cache."
            }
        }
        if let merge {
            let missing = try await merge.missingAnswers(in: cache)
            try refuse(missing, sample: 3) {
                "The cache lacks \(missing.count) answer(s) the shards got, e.g. \($0). Merge with the cache the "
                    + "shards shared: --cache-path, or the config's S3 cache."
            }
        }
        let manifest = try ManifestWriter(path: directory.manifestPath)
        var runRecord = plan.runRecord(directory: directory, noCache: noCache)
        runRecord.replayOf = original?.runID
        // A resumed or replayed shard keeps its rows.
        runRecord.shard = recordedRun?.shard ?? original?.run.shard ?? options.shard
        runRecord.mergedFrom = merge?.runs.map(\.runID)
        let shard = runRecord.shard
        let writesPrevious = merge != nil
        // A shard stops at the first barrier on its own; so does a merge without --continue.
        let stopsAtFirstBarrier = merge != nil && options.merge?.continueRun != true
        let interrupted = LabelForgeError(
            .interrupted,
            "Interrupted; the manifest is flushed. Resume with: labelforge run --resume \(directory.path)")

        let offlineEngines =
            options.replay?.offline == true ? original?.run.engines : stopsAtFirstBarrier ? merge?.runs[0].engines : nil
        if let recordedEngines = offlineEngines {
            // Zero engine calls: no engine is started, and what the original engines reported is kept.
            var infos: [String: JSONValue] = [:]
            for engine in recordedEngines { infos[engine.name] = engine.info }
            let engines = EngineSet.offline(config: config, models: plan.models, logger: logger)
            runRecord.engines = recordedEngines
            try manifest.append(.run(runRecord))
            try manifest.flush()
            let execution = RunExecution(
                plan: plan, engines: engines, engineInfos: infos, cache: cache, directory: directory,
                manifest: manifest,
                previous: previous, noCache: false, offline: true, logger: logger, progress: progress, shard: shard,
                stopsAtFirstBarrier: stopsAtFirstBarrier, writesPrevious: writesPrevious)
            let result: Result<RunReport, any Error>
            do {
                result = .success(try await execution.run())
            } catch {
                result = .failure(error)
            }
            await engines.shutdown()
            if case .failure(let error) = result, error is CancellationError { throw interrupted }
            return try result.get()
        }

        let body: (EngineSet) async throws -> RunReport = { engines in
            do {
                try await engines.checkReachable()
            } catch let error as LabelForgeError {
                if recordedRun == nil {
                    runRecord.engines = engines.describe(infos: [:])
                    try manifest.append(.run(runRecord))
                }
                try manifest.append(Self.failure(error))
                try manifest.sync()
                throw LabelForgeError(
                    error.code, error.message + " The failure is recorded in \(directory.manifestPath).")
            }
            let infos = await engines.probe()
            if recordedRun == nil {
                runRecord.engines = engines.describe(infos: infos)
                try manifest.append(.run(runRecord))
                try manifest.flush()
            }
            let execution = RunExecution(
                plan: plan, engines: engines, engineInfos: infos, cache: cache, directory: directory,
                manifest: manifest, previous: previous, noCache: noCache, offline: false, logger: self.logger,
                progress: self.progress, shard: shard, writesPrevious: writesPrevious)
            do {
                return try await execution.run()
            } catch let error as LabelForgeError where error.code == .io {
                // A full disk, a file system gone read-only: the manifest holds what finished.
                throw LabelForgeError(
                    .io,
                    error.message + " The run stopped; what finished is recorded. Free space (or fix the cause), "
                        + "then resume with: labelforge run --resume \(directory.path)")
            }
        }
        if let sharedEngines {
            do {
                return try await body(sharedEngines)
            } catch is CancellationError {
                throw interrupted
            }
        }
        do {
            return try await EngineSet.withEngines(
                config: config, models: plan.models, logPath: directory.engineLogPath, logger: logger, body
            ) { error in
                if recordedRun == nil {
                    runRecord.engines = []
                    try? manifest.append(.run(runRecord))
                }
                try? manifest.append(Self.failure(error))
                try? manifest.sync()
                return LabelForgeError(
                    error.code, error.message + " The failure is recorded in \(directory.manifestPath).")
            }
        } catch is CancellationError {
            throw interrupted
        } catch let error as LabelForgeError where error.code == .interrupted {
            throw interrupted
        }
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

    static func failure(_ error: LabelForgeError) -> ManifestRecord {
        .summary(
            SummaryRecord(
                status: "failed", finishedAt: Timestamp.now(),
                error: StageFailure(errorClass: error.code.rawValue, message: error.message)))
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

/// The model an engine serves, with its pinned revision.
struct ResolvedModel: Sendable {
    var engine: String
    var id: String
    var revision: String
    /// The GGUF file for `local` engines.
    var path: String?
    /// The longest input an embedding or rerank model takes, from its GGUF file's metadata
    /// (`GGUFMetadata.maxInputTokens`); `nil` for other engines.
    var maxInputTokens: Int? = nil

    var recordedPin: RunRecord.ModelPin {
        RunRecord.ModelPin(
            engine: engine, id: id, revision: revision, file: path.map { ($0 as NSString).lastPathComponent })
    }

    var pin: JSONValue {
        [
            "engine": .string(engine), "id": .string(id), "revision": .string(revision),
            "file": path.map { .string(($0 as NSString).lastPathComponent) } ?? .null,
        ]
    }

    static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    /// all-MiniLM-L6-v2 as `make setup` converts it for ONNX Runtime (scripts/minilm_to_onnx.py):
    /// the default model of local `embed` engines.
    static let defaultEmbeddingModelFile = "all-MiniLM-L6-v2.onnx"
    /// all-MiniLM-L6-v2 as `make setup` converts it for llama.cpp (scripts/minilm_to_gguf.py): the
    /// default model of local `rerank` engines (llama.cpp's rank mode), and of `embed` engines with
    /// `dialect: llamacpp`.
    static let defaultEmbeddingGGUFFile = "all-MiniLM-L6-v2.f16.gguf"

    /// The file `make setup` installs for a local engine: by its task, and for an embedding engine
    /// the GGUF conversion when its dialect is llama.cpp's (`RunConfig.parseEngine`).
    static func defaultFile(for engine: RunConfig.Engine) -> String {
        switch engine.task {
        case "embed": return engine.dialect == "llamacpp" ? defaultEmbeddingGGUFFile : defaultEmbeddingModelFile
        case "rerank": return defaultEmbeddingGGUFFile
        default: return defaultModelFile
        }
    }

    static func resolve(_ engine: RunConfig.Engine) throws -> ResolvedModel {
        guard engine.kind == "local" else {
            return ResolvedModel(
                engine: engine.name, id: engine.model.id, revision: engine.model.revision ?? "unpinned")
        }
        let defaultFile = defaultFile(for: engine)
        guard let path = engine.model.path ?? ProjectPaths.defaultModel(named: defaultFile) else {
            throw LabelForgeError(
                .fileNotFound,
                "The default model \(defaultFile) is not installed. Run `labelforge setup` (or `make setup` in a "
                    + "checkout), or set engines[].model.path for engine '\(engine.name)' to a GGUF file.")
        }
        let location = engine.model.location.isEmpty ? "" : engine.model.location + ": "
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(
                .fileNotFound, "\(location)engine '\(engine.name)': model file \(path) does not exist.")
        }
        if path.hasSuffix(".onnx") {
            let metadata = try ONNXMetadata.read(path: path)
            let revision = try engine.model.revision ?? ContentHash.prefixed(ContentHash.hexOfFile(atPath: path))
            return ResolvedModel(
                engine: engine.name, id: engine.model.id, revision: revision, path: path,
                maxInputTokens: ONNXMetadata.maxInputTokens(in: metadata))
        }
        let magic = FileHandle(forReadingAtPath: path).flatMap { try? $0.read(upToCount: 4) } ?? Data()
        guard magic == Data("GGUF".utf8) else {
            let seen = String(decoding: magic, as: UTF8.self).unicodeScalars.map {
                $0.isASCII && $0.value >= 0x20 ? String($0) : "?"
            }.joined()
            throw LabelForgeError(
                .invalidConfig,
                "\(location)engine '\(engine.name)': model file \(path) is not a GGUF file (it starts with '\(seen)', not "
                    + "'GGUF'). llama.cpp serves GGUF models: give engines[].model.path a .gguf file, or convert the "
                    + "model with llama.cpp's convert_hf_to_gguf.py.")
        }
        let revision = try engine.model.revision ?? ContentHash.prefixed(ContentHash.hexOfFile(atPath: path))
        let limit = engine.task == "chat" ? nil : GGUFMetadata.maxInputTokens(in: try GGUFMetadata.read(path: path))
        return ResolvedModel(
            engine: engine.name, id: engine.model.id, revision: revision, path: path, maxInputTokens: limit)
    }
}

/// A first pass over the dataset before any request: counts rows, fingerprints the file, and
/// checks that every field a template reads exists in every row.
struct DatasetScan {
    var rows: Int
    var fingerprint: String
    /// Which row IDs may repeat, so the run remembers only those.
    var repeats: RowIDRepeats
    /// Where an `id_field` value first repeats, for a warning.
    var repeatedIDWarning: String? = nil

    static func scan(config: RunConfig, pack: PromptPack, graph: StageGraph, limit: Int?) throws -> DatasetScan {
        let path = config.dataset.path
        let location = config.dataset.pathLocation.isEmpty ? config.file : config.dataset.pathLocation
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(
                .fileNotFound,
                "\(location): dataset.path '\(path)' does not exist. A relative path is relative to the "
                    + "config file's directory.")
        }
        let reader = try DatasetReader(path: config.dataset.path, format: config.dataset.format)
        let needs = graph.order.map { ($0, $0.requiredRowFields(graph: graph, pack: pack)) }
        let images = config.dataset.images
        let fileFingerprint = try DatasetReader.fingerprint(path: path, format: config.dataset.format)
        // The dataset file alone does not pin images it refers to by path: fold in every image's
        // content hash (or why it failed), so a changed image changes the plan.
        var fingerprint = ContentHash.Hasher()
        fingerprint.update(fileFingerprint)
        var rows = 0
        var repeats = RowIDRepeats()
        var repeatedIDs = 0
        var firstRepeat: String?
        while let record = try reader.next() {
            if let limit, rows >= limit { break }
            for (stage, fields) in needs {
                for field in fields where record.fields[field] == nil {
                    throw LabelForgeError(
                        .invalidDataset,
                        "\(record.location): the row has no field '\(field)', which "
                            + stage.use(ofField: field)
                            + "(stage '\(stage.config.id)') uses. Fields present: "
                            + record.fields.keys.sorted().joined(separator: ", ") + "; stages: "
                            + graph.order.map(\.config.id).joined(separator: ", ") + ".")
                }
            }
            let loaded = images.load(record)
            for field in images.fields {
                fingerprint.update(field)
                fingerprint.update(loaded.images[field]?.contentHash ?? loaded.failures[field]?.kind.name ?? "")
            }
            let baseID = RowIDAssigner.baseID(
                for: loaded.identity(idField: config.dataset.idField), idField: config.dataset.idField)
            if repeats.add(baseID), let idField = config.dataset.idField {
                repeatedIDs += 1
                if firstRepeat == nil {
                    firstRepeat = "\(record.location): id_field '\(idField)' repeats '\(baseID)'"
                }
            }
            rows += 1
        }
        guard rows > 0 else {
            throw LabelForgeError(
                .invalidDataset,
                "\(location): dataset \(path) has no rows. Add rows (JSONL: one JSON object per line; CSV: a "
                    + "header line, then one line per row), or point dataset.path at another file.")
        }
        return DatasetScan(
            rows: rows, fingerprint: images.fields.isEmpty ? fileFingerprint : fingerprint.finalize(),
            repeats: repeats.finished(),
            repeatedIDWarning: firstRepeat.map {
                "\($0)" + (repeatedIDs > 1 ? " (and \(repeatedIDs - 1) more rows repeat an id)" : "")
                    + "; a repeated id gets #2, #3, … in input order. Make the ids unique if they should be."
            })
    }
}
