import Foundation
import LabelForgeCore
import LabelForgeKernel
import Logging

extension RunSetup {
    /// A new run of a config: installs the local engine and models it needs on first use, plans it
    /// (a first pass over the dataset), and creates its directory.
    static func new(configPath: String, options: RunOptions, logger: Logger) throws -> RunSetup {
        let (runsDir, shard, noCache) = (options.runsDir, options.shard, options.noCache)
        // The config is read once: the runtime it needs is installed before it is planned.
        let config = try RunConfig.load(file: configPath)
        try Runner.installRuntimeIfMissing(config: config)
        let plan = try RunPlan.prepare(config: config, limit: options.limit)
        if let warning = plan.dataset.repeatedIDWarning { logger.warning("\(warning)") }
        for unfinished in ManifestRecovery.unfinishedRuns(runsDir: runsDir, planHash: plan.planHash, shard: shard) {
            logger.warning(
                "an unfinished run of this plan exists in \(unfinished); resume it with `labelforge run --resume \(unfinished)`"
            )
        }
        let directory = try RunDirectory.create(
            runsDir: runsDir, planHash: plan.planHash, resolvedConfig: ResolvedYAML.string(plan.resolved))
        return RunSetup(
            plan: plan, directory: directory, createdDirectory: true, runLine: RunLine(noCache: noCache, shard: shard),
            noCache: noCache, shard: shard)
    }
}
