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
    static func prepare(configPath: String, limit: Int?) throws -> RunPlan {
        var config = try RunConfig.load(file: configPath)
        if let limit { config.limit = limit }
        let pack = try PromptPack.load(directory: config.promptPack)
        let stages = config.stages.map(makeStage)
        for stage in stages where stage is any RowStage && !pack.templateNames.contains(stage.config.template) {
            let hint = closest(to: stage.config.template, in: pack.templateNames).map { " Did you mean '\($0)'?" } ?? ""
            throw LabelForgeError(
                .invalidConfig,
                "\(config.file): stage '\(stage.config.id)' uses template '\(stage.config.template)', which prompt pack "
                    + "\(config.promptPack) does not have.\(hint)")
        }
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

    /// The plan a run directory was made with (its `config.resolved.yaml`), checked against the
    /// pins its manifest recorded, for `--resume` and `replay`.
    /// - Parameters:
    ///   - refusal: the start of the error when they differ, e.g. "Cannot resume".
    ///   - advice: appended to that error.
    static func reload(runDirectory dir: String, recorded runLine: JSONValue?, refusal: String, advice: String = "")
        throws -> RunPlan
    {
        let plan = try prepare(configPath: dir + "/config.resolved.yaml", limit: nil)
        if let runLine {
            let reasons = plan.differences(from: runLine)
            guard reasons.isEmpty else {
                throw LabelForgeError(
                    .invalidConfig, "\(refusal) \(dir): " + reasons.joined(separator: "; ") + "." + advice)
            }
        }
        return plan
    }

    /// The first line of the manifest, without the engines (added once they answer).
    func runLine(directory: RunDirectory, noCache: Bool) -> [String: JSONValue] {
        [
            "type": "run", "run_id": .string(directory.runID), "plan_hash": .string(planHash),
            "config_hash": .string(configHash), "labelforge_version": .string(LabelForgeVersion.current),
            "git_revision": GitRevision.current().map(JSONValue.string) ?? .null,
            "dataset": [
                "path": .string(config.dataset.path), "format": .string(config.dataset.format.name),
                "fingerprint": .string(dataset.fingerprint), "rows": .int(Int64(dataset.rows)),
            ],
            "prompt_pack": [
                "name": .string(pack.name), "version": .string(pack.version), "hash": .string(pack.contentHash),
            ],
            "models": .array(models.map(\.pin)), "determinism": .string(config.determinism),
            "run_seed": .int(Int64(config.seed)), "environment": EnvironmentInfo.capture().json,
            "stages": .array(
                stages.map {
                    [
                        "id": .string($0.config.id), "type": .string($0.config.type),
                        "version": .int(Int64($0.version)),
                        "engine": .string($0.config.engine),
                    ]
                }),
            "created_at": .string(Timestamp.now()), "no_cache": .bool(noCache),
            "limit": config.limit.map { .int(Int64($0)) } ?? .null,
        ]
    }

    /// Why this plan differs from the one a manifest recorded, one clause per pin; empty when equal.
    func differences(from run: JSONValue) -> [String] {
        var reasons: [String] = []
        if run["dataset"]?["fingerprint"]?.stringValue != dataset.fingerprint {
            reasons.append(
                "dataset \(config.dataset.path) changed (fingerprint \(run["dataset"]?["fingerprint"]?.textForm ?? "?") → \(dataset.fingerprint))"
            )
        }
        if run["prompt_pack"]?["hash"]?.stringValue != pack.contentHash {
            reasons.append(
                "prompt pack \(config.promptPack) changed (hash \(run["prompt_pack"]?["hash"]?.textForm ?? "?") → \(pack.contentHash))"
            )
        }
        let recorded = run["models"]?.arrayValue ?? []
        for model in models {
            let old = recorded.first { $0["engine"]?.stringValue == model.engine }
            if old?["revision"]?.stringValue != model.revision || old?["id"]?.stringValue != model.id {
                reasons.append(
                    "model of engine '\(model.engine)' changed (\(old?["id"]?.textForm ?? "?")@\(old?["revision"]?.textForm ?? "?") → \(model.id)@\(model.revision))"
                )
            }
        }
        if reasons.isEmpty && run["config_hash"]?.stringValue != configHash {
            reasons.append(
                "the resolved config changed (config hash \(run["config_hash"]?.textForm ?? "?") → \(configHash))")
        }
        return reasons
    }
}

/// A manifest read back for resuming: repairs a torn last line, and returns the (row, stage)
/// lines already recorded.
enum ManifestRecovery {
    struct State {
        var runLine: JSONValue?
        var rows: [String: JSONValue]
        var completed: Bool
        /// Barriers whose result the run committed.
        var barriers: Set<String> = []
    }

    static func key(row: String, stage: String) -> String { row + "\u{0}" + stage }

    /// Truncates a partly written last line (a process killed mid-write), then reads the manifest.
    static func repairAndRead(_ path: String) throws -> State {
        guard var data = FileManager.default.contents(atPath: path) else { return State(rows: [:], completed: false) }
        if let last = data.last, last != 0x0A {
            let keep = data.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            data = data.prefix(keep)
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw LabelForgeError(.io, "Cannot repair \(path): not writable.")
            }
            try handle.truncate(atOffset: UInt64(keep))
            try handle.close()
        }
        return read(data)
    }

    /// Run directories under `runsDir` of the same plan whose manifest never reached a final summary.
    static func unfinishedRuns(runsDir: String, planHash: String) -> [String] {
        let prefix = String(ContentHash.unprefixed(planHash).prefix(8))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []
        return names.sorted().filter { name in
            let parts = name.split(separator: "-")
            guard parts.count >= 3, parts[2] == prefix else { return false }
            guard let (first, last) = ends(of: runsDir + "/" + name + "/manifest.jsonl") else { return false }
            let completed =
                last?["type"] == "summary" && ["completed", "aborted"].contains(last?["status"]?.stringValue ?? "")
            return first?["plan_hash"]?.stringValue == planHash && !completed
        }.map { runsDir + "/" + $0 }
    }

    /// A manifest's first and last lines, parsed (`nil` for a torn or missing one), read without
    /// reading the rows in between; `nil` when the file cannot be opened.
    private static func ends(of path: String) -> (JSONValue?, JSONValue?)? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 1 << 20)
        let first = head.split(separator: 0x0A).first.flatMap { try? JSONValue.parse(Data($0)) }
        guard let size = try? handle.seekToEnd() else { return (first, nil) }
        try? handle.seek(toOffset: size > 1 << 20 ? size - (1 << 20) : 0)
        let tail = handle.readDataToEndOfFile()
        guard tail.last == 0x0A else { return (first, nil) }
        let last = tail.dropLast().split(separator: 0x0A).last.flatMap { try? JSONValue.parse(Data($0)) }
        return (first, last)
    }

    private static func read(_ data: Data) -> State {
        var state = State(rows: [:], completed: false)
        for line in data.split(separator: 0x0A) {
            guard let value = try? JSONValue.parse(Data(line)) else { continue }
            switch value["type"]?.stringValue {
            case "run": state.runLine = value
            case "row":
                if let row = value["row_id"]?.stringValue, let stage = value["stage"]?.stringValue {
                    state.rows[key(row: row, stage: stage)] = value
                }
            case "barrier":
                if let stage = value["stage"]?.stringValue { state.barriers.insert(stage) }
            case "summary":
                state.completed = ["completed", "aborted"].contains(value["status"]?.stringValue ?? "")
            default: break
            }
        }
        return state
    }
}
