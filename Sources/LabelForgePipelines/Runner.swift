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
    /// Process only the first N rows.
    public var limit: Int?
    /// Skip cache reads (responses are still written).
    public var noCache: Bool
    /// Overrides the config's and the environment's cache location.
    public var cachePath: String?

    public init(configPath: String, runsDir: String = "runs", limit: Int? = nil, noCache: Bool = false, cachePath: String? = nil) {
        self.configPath = configPath
        self.runsDir = runsDir
        self.limit = limit
        self.noCache = noCache
        self.cachePath = cachePath
    }
}

/// Runs a pipeline: streams rows through row-wise stages with bounded concurrency, serving
/// requests from the content-addressed cache where it can, and writes the run directory.
public final class Runner: Sendable {
    public let options: RunOptions
    private let logger: Logger
    private let progress: @Sendable (RunProgress) -> Void

    public init(options: RunOptions, logger: Logger, progress: @escaping @Sendable (RunProgress) -> Void = { _ in }) {
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    /// Runs the pipeline to the end, or until `max_failure_ratio` aborts it.
    /// - Throws: `LabelForgeError` for bad config, data or prompts (before any request), and when
    ///   the engine cannot be reached (after recording the failure in the manifest).
    public func run() async throws -> RunReport {
        let config = try RunConfig.load(file: options.configPath)
        let pack = try PromptPack.load(directory: config.promptPack)
        let stages = config.stages.map(makeStage)
        for stage in stages where !pack.templateNames.contains(stage.config.template) {
            let hint = closest(to: stage.config.template, in: pack.templateNames).map { " Did you mean '\($0)'?" } ?? ""
            throw LabelForgeError(
                .invalidConfig,
                "\(config.file): stage '\(stage.config.id)' uses template '\(stage.config.template)', which prompt pack "
                    + "\(config.promptPack) does not have.\(hint)")
        }
        let dataset = try DatasetScan.scan(config: config, pack: pack, stages: stages, limit: options.limit)
        let models = try config.engines.map { try ResolvedModel.resolve($0) }
        let cache = try SQLiteCache(path: options.cachePath ?? config.cachePath ?? SQLiteCache.defaultPath(), logger: logger)

        var resolved = config.resolvedJSON
        if case .object(var object) = resolved {
            object["limit"] = options.limit.map { .int(Int64($0)) } ?? .null
            resolved = .object(object)
        }
        let configHash = ContentHash.prefixed(ContentHash.hex(resolved))
        let planHash = ContentHash.prefixed(
            ContentHash.hex([
                "config": resolved, "dataset": .string(dataset.fingerprint), "prompt_pack": .string(pack.contentHash),
                "models": .array(models.map(\.pin)),
            ]))
        let directory = try RunDirectory.create(runsDir: options.runsDir, planHash: planHash)
        try ResolvedYAML.string(resolved).write(toFile: directory.resolvedConfigPath, atomically: true, encoding: .utf8)
        let manifest = try JSONLWriter(path: directory.manifestPath)
        var runLine: [String: JSONValue] = [
            "type": "run", "run_id": .string(directory.runID), "plan_hash": .string(planHash),
            "config_hash": .string(configHash), "labelforge_version": .string(LabelForgeVersion.current),
            "git_revision": GitRevision.current().map(JSONValue.string) ?? .null,
            "dataset": [
                "path": .string(config.dataset.path), "format": .string(config.dataset.format.name),
                "fingerprint": .string(dataset.fingerprint), "rows": .int(Int64(dataset.rows)),
            ],
            "prompt_pack": ["name": .string(pack.name), "version": .string(pack.version), "hash": .string(pack.contentHash)],
            "models": .array(models.map(\.pin)), "determinism": .string(config.determinism),
            "run_seed": .int(Int64(config.seed)), "environment": EnvironmentInfo.capture().json,
            "stages": .array(
                stages.map { ["id": .string($0.config.id), "type": .string($0.config.type), "version": .int(Int64($0.version)), "engine": .string($0.config.engine)] }),
            "created_at": .string(Timestamp.now()), "no_cache": .bool(options.noCache),
            "limit": options.limit.map { .int(Int64($0)) } ?? .null,
        ]

        return try await EngineSet.withEngines(config: config, models: models, logPath: directory.engineLogPath, logger: logger) { engines in
            do {
                try await engines.checkReachable()
            } catch let error as LabelForgeError {
                runLine["engines"] = engines.describe(infos: [:])
                try manifest.append(.object(runLine))
                try manifest.append(["type": "summary", "status": "failed", "error": ["class": .string(error.code.rawValue), "message": .string(error.message)], "finished_at": .string(Timestamp.now())])
                try manifest.sync()
                throw LabelForgeError(error.code, error.message + " The failure is recorded in \(directory.manifestPath).")
            }
            let infos = await engines.probe()
            runLine["engines"] = engines.describe(infos: infos)
            try manifest.append(.object(runLine))
            try manifest.flush()
            let execution = RunExecution(
                config: config, pack: pack, stages: stages, engines: engines, engineInfos: infos, cache: cache,
                directory: directory, manifest: manifest, totalRows: dataset.rows, noCache: options.noCache,
                limit: options.limit, logger: logger, progress: progress)
            return try await execution.run()
        } onStartFailure: { error in
            runLine["engines"] = .array([])
            try? manifest.append(.object(runLine))
            try? manifest.append(["type": "summary", "status": "failed", "error": ["class": .string(error.code.rawValue), "message": .string(error.message)], "finished_at": .string(Timestamp.now())])
            try? manifest.sync()
            return LabelForgeError(error.code, error.message + " The failure is recorded in \(directory.manifestPath).")
        }
    }
}

/// The model an engine serves, with its pinned revision.
struct ResolvedModel: Sendable {
    var engine: String
    var id: String
    var revision: String
    /// The GGUF file for `local` engines.
    var path: String?

    var pin: JSONValue {
        [
            "engine": .string(engine), "id": .string(id), "revision": .string(revision),
            "file": path.map { .string(($0 as NSString).lastPathComponent) } ?? .null,
        ]
    }

    static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    static func resolve(_ engine: RunConfig.Engine) throws -> ResolvedModel {
        guard engine.kind == "local" else {
            return ResolvedModel(engine: engine.name, id: engine.model.id, revision: engine.model.revision ?? "unpinned")
        }
        guard let path = engine.model.path ?? ProjectPaths.defaultModel(named: defaultModelFile) else {
            throw LabelForgeError(
                .fileNotFound,
                "The default model \(defaultModelFile) is not installed. Run `make setup`, or set engines[].model.path "
                    + "for engine '\(engine.name)' to a GGUF file.")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(.fileNotFound, "Engine '\(engine.name)': model file \(path) does not exist.")
        }
        let revision = try engine.model.revision ?? ContentHash.prefixed(ContentHash.hexOfFile(atPath: path))
        return ResolvedModel(engine: engine.name, id: engine.model.id, revision: revision, path: path)
    }
}

/// A first pass over the dataset before any request: counts rows, fingerprints the file, and
/// checks that every field a template reads exists in every row.
struct DatasetScan {
    var rows: Int
    var fingerprint: String

    static func scan(config: RunConfig, pack: PromptPack, stages: [any RowStage], limit: Int?) throws -> DatasetScan {
        let path = config.dataset.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(.fileNotFound, "\(config.file): dataset.path '\(path)' does not exist.")
        }
        let reader = try DatasetReader(path: path, format: config.dataset.format)
        let needs = stages.map { stage in
            (stage, pack.fields(of: stage.config.template).subtracting(stage.templateVariables.keys))
        }
        var rows = 0
        while let record = try reader.next() {
            if let limit, rows >= limit { break }
            for (stage, fields) in needs {
                for field in fields.sorted() where record.fields[field] == nil {
                    throw LabelForgeError(
                        .invalidDataset,
                        "\(path):\(record.line): the row has no field '\(field)', which template "
                            + "'\(stage.config.template)' (stage '\(stage.config.id)') uses. Fields present: "
                            + record.fields.keys.sorted().joined(separator: ", ") + ".")
                }
            }
            rows += 1
        }
        return DatasetScan(rows: rows, fingerprint: try DatasetReader.fingerprint(path: path))
    }
}
