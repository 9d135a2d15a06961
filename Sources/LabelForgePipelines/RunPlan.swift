import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// Everything a run is determined by, resolved before any request: config with defaults,
/// prompt pack, stages, dataset fingerprint and model pins, and the hashes over them.
struct RunPlan: Sendable {
    var config: RunConfig
    var pack: PromptPack
    var stages: [any PipelineStage]
    var graph: StageGraph
    var dataset: DatasetScan
    var models: [ResolvedModel]
    var resolved: JSONValue
    var configHash: String
    var planHash: String

    /// Loads and checks a config; `limit` overrides `run.limit`.
    /// - Parameter resolved: the config is a run's `config.resolved.yaml` (`RunConfig.load`).
    static func prepare(configPath: String, limit: Int?, resolved: Bool = false) throws -> RunPlan {
        var config = try RunConfig.load(file: configPath, resolved: resolved)
        if let limit { config.limit = limit }
        let pack = try config.promptPack.map { try PromptPack.load(directory: $0) } ?? .none
        let stages = config.stages.map(makeStage)
        for stage in stages {
            let templates = stage.templates
            if config.promptPack == nil, let template = templates.first {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(stage.config.location.isEmpty ? config.file : stage.config.location): stage "
                        + "'\(stage.config.id)' renders template '\(template)', and the config names no prompt pack. "
                        + "Add prompts: {pack: <directory with pack.yaml and \(template).mustache>}.")
            }
            for template in templates where !pack.templateNames.contains(template) {
                let hint = closest(to: template, in: pack.templateNames).map { " Did you mean '\($0)'?" } ?? ""
                throw LabelForgeError(
                    .invalidConfig,
                    "\(stage.config.location.isEmpty ? config.file : stage.config.location): stage "
                        + "'\(stage.config.id)' uses template '\(template)', which prompt pack \(pack.directory) does "
                        + "not have (no \(template).mustache there).\(hint)")
            }
        }
        try checkEngineTasks(stages: stages, config: config)
        let graph = try StageGraph.build(stages: stages, pack: pack)
        let dataset = try DatasetScan.scan(config: config, pack: pack, graph: graph, limit: config.limit)
        let models = try config.engines.map { try ResolvedModel.resolve($0) }
        let resolved = config.resolvedJSON
        let planHash = ContentHash.prefixed(
            ContentHash.hex([
                "config": resolved, "dataset": .string(dataset.fingerprint), "prompt_pack": .string(pack.contentHash),
                "models": .array(models.map(\.pin)),
            ]))
        return RunPlan(
            config: config, pack: pack, stages: stages, graph: graph, dataset: dataset, models: models,
            resolved: resolved,
            configHash: ContentHash.prefixed(ContentHash.hex(resolved)), planHash: planHash)
    }

    /// Every stage's engine serves what the stage asks for: `embed` stages need an engine with
    /// `task: embed`, stages that chat one with `task: chat`.
    static func checkEngineTasks(stages: [any PipelineStage], config: RunConfig) throws {
        for stage in stages {
            for (name, task) in stage.config.options.extraEngines {
                guard let engine = config.engines.first(where: { $0.name == name }) else {
                    throw LabelForgeError(
                        .invalidConfig,
                        "\(stage.config.location): stage '\(stage.config.id)' names engine '\(name)', which engines do not "
                            + "list (engines: \(config.engines.map(\.name).joined(separator: ", "))).")
                }
                guard engine.task == task else {
                    throw LabelForgeError(
                        .invalidConfig,
                        "\(stage.config.location): stage '\(stage.config.id)' needs engine '\(name)' to have task: \(task), "
                            + "but it has task: \(engine.task).")
                }
            }
            guard
                let needed = stage.config.options.engineTask
                    ?? StageRegistry.type(named: stage.config.type)?.engineTask,
                let engine = config.engines.first(where: { $0.name == stage.config.engine }),
                engine.task != needed
            else { continue }
            let example =
                needed == "embed"
                ? " e.g. {name: embedder, kind: local, task: embed, model: {id: all-minilm-l6-v2}}." : ""
            throw LabelForgeError(
                .invalidConfig,
                "\(stage.config.location): stage '\(stage.config.id)' (\(stage.config.type)) needs an engine with "
                    + "task: \(needed), but engine '\(engine.name)' has task: \(engine.task). Add one to engines,\(example)"
            )
        }
    }

    /// The plan a run directory was made with (its `config.resolved.yaml`), checked against the
    /// pins its manifest recorded, for `--resume` and `replay`.
    /// - Parameters:
    ///   - refusal: the start of the error when they differ, e.g. "Cannot resume".
    ///   - advice: appended to that error.
    static func reload(runDirectory dir: String, recorded run: RunRecord?, refusal: String, advice: String = "")
        throws -> RunPlan
    {
        let plan = try prepare(configPath: dir + "/config.resolved.yaml", limit: nil, resolved: true)
        if let run {
            let reasons = plan.differences(from: run)
            guard reasons.isEmpty else {
                throw LabelForgeError(
                    .invalidConfig, "\(refusal) \(dir): " + reasons.joined(separator: "; ") + "." + advice)
            }
        }
        return plan
    }

    /// The first line of the manifest, without the engines (added once they answer).
    func runRecord(directory: RunDirectory, noCache: Bool) -> RunRecord {
        RunRecord(
            runID: directory.runID, planHash: planHash, configHash: configHash,
            labelforgeVersion: LabelForgeVersion.current, gitRevision: GitRevision.current(),
            dataset: RunRecord.DatasetPin(
                path: config.dataset.path, format: config.dataset.format.name, fingerprint: dataset.fingerprint,
                rows: dataset.rows),
            promptPack: RunRecord.PromptPackPin(name: pack.name, version: pack.version, hash: pack.contentHash),
            models: models.map(\.recordedPin), determinism: config.determinism, runSeed: config.seed,
            environment: EnvironmentInfo.capture().json,
            stages: stages.map {
                RunRecord.StagePin(
                    id: $0.config.id, type: $0.config.type, version: $0.version, engine: $0.config.engine)
            },
            createdAt: Timestamp.now(), noCache: noCache, limit: config.limit, engines: [], replayOf: nil)
    }

    /// Why this plan differs from the one a manifest recorded, one clause per pin; empty when equal.
    func differences(from run: RunRecord) -> [String] {
        var reasons: [String] = []
        if run.dataset.fingerprint != dataset.fingerprint {
            reasons.append(
                "dataset \(config.dataset.path) changed (fingerprint \(run.dataset.fingerprint) → \(dataset.fingerprint))"
            )
        }
        if run.promptPack.hash != pack.contentHash {
            reasons.append(
                "prompt pack \(pack.directory) changed (hash \(run.promptPack.hash) → \(pack.contentHash))")
        }
        for model in models {
            let old = run.models.first { $0.engine == model.engine }
            if old?.revision != model.revision || old?.id != model.id {
                reasons.append(
                    "model of engine '\(model.engine)' changed (\(old?.id ?? "?")@\(old?.revision ?? "?") → \(model.id)@\(model.revision))"
                )
            }
        }
        if reasons.isEmpty && run.configHash != configHash {
            reasons.append("the resolved config changed (config hash \(run.configHash) → \(configHash))")
        }
        return reasons
    }
}

/// A manifest read back for resuming: repairs a torn last line, and returns the (row, stage)
/// records already written.
enum ManifestRecovery {
    struct State {
        var run: RunRecord?
        var rows: [String: RowRecord]
        var completed: Bool
        /// Barriers whose result the run committed.
        var barriers: Set<String> = []
    }

    static func key(row: String, stage: String) -> String { row + "\u{0}" + stage }

    /// Truncates a partly written last line (a process killed mid-write), then reads the manifest.
    /// - Throws: `LabelForgeError.invalidJSON` naming the line when another line is not a record.
    static func repairAndRead(_ path: String) throws -> State {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { return State(rows: [:], completed: false) }
        let size = try handle.seekToEnd()
        if size > 0 {
            // Find the last newline from the end; whatever follows it is a torn line.
            var end = size
            var keep: UInt64 = 0
            while end > 0 {
                let start = end > 65536 ? end - 65536 : 0
                try handle.seek(toOffset: start)
                let chunk = try handle.read(upToCount: Int(end - start)) ?? Data()
                if let index = chunk.lastIndex(of: 0x0A) {
                    keep = start + UInt64(index - chunk.startIndex) + 1
                    break
                }
                end = start
            }
            if keep < size { try handle.truncate(atOffset: keep) }
        }
        try handle.close()
        var state = State(rows: [:], completed: false)
        let reader = try ManifestReader(path: path)
        while let record = try reader.read() {
            switch record {
            case .run(let run): state.run = run
            case .row(let row): state.rows[key(row: row.rowID, stage: row.stage)] = row
            case .barrier(let barrier): state.barriers.insert(barrier.stage)
            case .summary(let summary): state.completed = summary.isFinal
            }
        }
        return state
    }

    /// Rewrites a manifest without its failed row results and its summaries, so that resuming runs
    /// those rows again. Dataset-wide stages see every row at once, so when anything failed, the
    /// results of the barriers and of every stage after the first one are forgotten too (they come
    /// back from the cache). The new manifest replaces the old one atomically.
    /// - Returns: how many failed (row, stage) results were forgotten.
    static func forgetFailures(_ path: String, graph: StageGraph) throws -> Int {
        var failed = 0
        let reader = try ManifestReader(path: path)
        while let record = try reader.read() {
            if case .row(let row) = record, row.error != nil { failed += 1 }
        }
        let afterBarrier = Set(
            graph.segments.dropFirst().flatMap(\.stages).map(\.config.id)
                + graph.segments.compactMap(\.barrier?.config.id))
        let temporary = path + ".retry"
        try? FileManager.default.removeItem(atPath: temporary)
        let writer = try ManifestWriter(path: temporary)
        let again = try ManifestReader(path: path)
        while let record = try again.read() {
            switch record {
            case .summary: continue
            case .barrier where failed > 0: continue
            case .row(let row) where row.error != nil || (failed > 0 && afterBarrier.contains(row.stage)): continue
            default: try writer.append(record)
            }
        }
        try writer.sync()
        guard rename(temporary, path) == 0 else {
            throw LabelForgeError(.io, "Cannot replace \(path) with \(temporary): \(String(cString: strerror(errno))).")
        }
        return failed
    }

    /// Run directories under `runsDir` of the same plan whose manifest never reached a final summary.
    /// Another shard's run is not this one's to resume: only runs of the same shard (or none) count.
    static func unfinishedRuns(runsDir: String, planHash: String, shard: ShardSpec? = nil) -> [String] {
        let prefix = String(ContentHash.unprefixed(planHash).prefix(8))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []
        return names.sorted().filter { name in
            let parts = name.split(separator: "-")
            guard parts.count >= 3, parts[2] == prefix,
                let (first, last) = ManifestReader.ends(of: runsDir + "/" + name + "/manifest.jsonl"),
                case .run(let run) = first, run.planHash == planHash, run.shard == shard
            else { return false }
            if case .summary(let summary) = last, summary.isFinal { return false }
            return true
        }.map { runsDir + "/" + $0 }
    }
}
