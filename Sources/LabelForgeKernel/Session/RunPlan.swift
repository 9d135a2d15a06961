import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// Everything a run is determined by, resolved before any request: config with defaults,
/// prompt pack, stages, dataset fingerprint and model pins, and the hashes over them.
package struct RunPlan: Sendable {
    package var config: RunConfig
    package var pack: PromptPack
    package var stages: [any PipelineStage]
    package var graph: StageGraph
    package var dataset: DatasetScan
    package var models: [ResolvedModel]
    package var resolved: JSONValue
    package var configHash: String
    package var planHash: String

    /// Checks a loaded config and plans it; `limit` overrides `run.limit`.
    /// - Parameter resolveModel: the model an engine serves, pinned (`ResolvedModel.resolve`: a local
    ///   engine's file read and hashed).
    package static func prepare(
        config: RunConfig, limit: Int?, resolveModel: (RunConfig.Engine) throws -> ResolvedModel
    ) throws -> RunPlan {
        var config = config
        if let limit { config.limit = limit }
        let pack = try config.promptPack.map { try PromptPack.load(directory: $0) } ?? .none
        let stages = config.stages.map(config.makeStage)
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
        let models = try config.engines.map(resolveModel)
        let resolved = config.resolvedJSON
        let planHash = ContentHash.prefixed(
            ContentHash.hex([
                "config": RunConfig.planJSON(resolved), "dataset": .string(dataset.fingerprint),
                "prompt_pack": .string(pack.contentHash),
                "models": .array(models.map(\.pin)),
            ]))
        return RunPlan(
            config: config, pack: pack, stages: stages, graph: graph, dataset: dataset, models: models,
            resolved: resolved,
            configHash: ContentHash.prefixed(ContentHash.hex(resolved)), planHash: planHash)
    }

    /// Every stage's engine serves what the stage asks for: `embed` stages need an engine with
    /// `task: embed`, stages that chat one with `task: chat`.
    package static func checkEngineTasks(stages: [any PipelineStage], config: RunConfig) throws {
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
                let needed = stage.config.engineTask,
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

    /// The first line of the manifest, without the engines (added once they answer).
    package func runRecord(directory: RunDirectory, noCache: Bool, createdAt: String = Timestamp.now()) -> RunRecord {
        RunRecord(
            runID: directory.runID, planHash: planHash, configHash: configHash,
            labelforgeVersion: LabelForgeVersion.current, gitRevision: GitRevision.current(),
            dataset: RunRecord.DatasetPin(
                path: config.dataset.path, format: config.dataset.format.name, fingerprint: dataset.fingerprint,
                rows: dataset.rows),
            promptPack: RunRecord.PromptPackPin(name: pack.name, version: pack.version, hash: pack.contentHash),
            models: models.map(\.recordedPin), determinism: config.determinism.rawValue, runSeed: config.seed,
            environment: EnvironmentInfo.capture().json,
            stages: stages.map {
                RunRecord.StagePin(
                    id: $0.config.id, type: $0.config.type, version: $0.version, engine: $0.config.engine)
            },
            createdAt: createdAt, noCache: noCache, limit: config.limit, engines: [], replayOf: nil)
    }

    /// Why this plan differs from the one a manifest recorded, one clause per pin; empty when equal.
    package func differences(from run: RunRecord) -> [String] {
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
