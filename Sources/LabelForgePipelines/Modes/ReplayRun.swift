import Foundation
import LabelForgeCore
import LabelForgeKernel

extension RunSetup {
    /// A finished run's plan again, into a new directory: offline from the cache (no engine, and
    /// the cache must hold every answer the run recorded), or with `--allow-engine`/`--recompute`.
    static func replay(_ replay: ReplayOptions, options: RunOptions) throws -> RunSetup {
        let original = try RunArtifacts.load(replay.runDirectory)
        let plan = try RunPlan.reload(
            runDirectory: original.directory, recorded: original.run, refusal: "Cannot replay")
        let directory = try RunDirectory.create(
            runsDir: options.runsDir, planHash: plan.planHash, resolvedConfig: ResolvedYAML.string(plan.resolved))
        let noCache = options.noCache || replay.recompute
        let shard = original.run.shard ?? options.shard
        var setup = RunSetup(
            plan: plan, directory: directory, createdDirectory: true,
            runLine: RunLine(noCache: noCache, shard: shard, replayOf: original.runID), noCache: noCache, shard: shard)
        if replay.offline {
            setup.engines = .recorded(original.run.engines)
            setup.required = RequiredAnswers(
                sample: 5, missing: { try await Runner.missingEntries(of: original, in: $0) },
                message: {
                    "The cache lacks \($0) response(s) of \(original.runID), e.g. \($1). Replay with "
                        + "--allow-engine to fetch them, or point --cache-path at the run's cache."
                })
        }
        return setup
    }
}
