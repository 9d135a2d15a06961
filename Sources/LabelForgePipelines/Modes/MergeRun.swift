import Foundation
import LabelForgeCore
import LabelForgeKernel
import Logging

extension RunSetup {
    /// Shards of one plan, merged into a new directory: their results written as they recorded them.
    /// Without `--continue` the merge stops at the first dataset-wide stage and starts no engine;
    /// with it, the run goes on from there.
    static func merge(_ merge: MergeOptions, options: RunOptions, logger: Logger) throws -> RunSetup {
        let shards = try ShardMerge.load(merge.shardDirectories)
        let directory = try RunDirectory.create(
            runsDir: options.runsDir, planHash: shards.plan.planHash,
            resolvedConfig: ResolvedYAML.string(shards.plan.resolved))
        logger.info(
            "merging \(shards.directories.count) shards: \(shards.rows.count) (row, stage) results into \(directory.path)"
        )
        var setup = RunSetup(
            plan: shards.plan, directory: directory, createdDirectory: true, previous: shards.state,
            runLine: RunLine(noCache: options.noCache, shard: options.shard, mergedFrom: shards.runs.map(\.runID)),
            noCache: options.noCache, stop: merge.continueRun ? .end : .beforeFirstBarrier, writesPrevious: true,
            shard: options.shard)
        if setup.stop == .beforeFirstBarrier { setup.engines = .recorded(shards.runs[0].engines) }
        setup.required = RequiredAnswers(
            sample: 3, missing: { try await shards.missingAnswers(in: $0) },
            message: {
                "The cache lacks \($0) answer(s) the shards got, e.g. \($1). Merge with the cache the "
                    + "shards shared: --cache-path, or the config's S3 cache."
            })
        return setup
    }
}
