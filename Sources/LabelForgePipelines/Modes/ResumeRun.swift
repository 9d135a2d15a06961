import Foundation
import LabelForgeCore
import LabelForgeKernel
import Logging

extension RunSetup {
    /// An interrupted run, continued in its own directory: its manifest repaired and read, the rows
    /// it recorded kept; with `retryFailed`, its failed results forgotten so they run again.
    static func resume(directory path: String, retryFailed: Bool, options: RunOptions, logger: Logger) throws
        -> RunSetup
    {
        let dir = path.hasSuffix("/") ? String(path.dropLast()) : path
        guard FileManager.default.fileExists(atPath: dir + "/config.resolved.yaml") else {
            throw LabelForgeError(.fileNotFound, "\(dir) is not a run directory: it has no config.resolved.yaml.")
        }
        let directory = RunDirectory(runID: (dir as NSString).lastPathComponent, path: dir)
        var state = try ManifestRecovery.repairAndRead(directory.manifestPath)
        if state.completed && !retryFailed {
            throw LabelForgeError(
                .invalidConfig,
                "\(dir) already finished; there is nothing to resume. To run its failed rows again, add --retry-failed."
            )
        }
        let plan = try RunPlan.reload(
            runDirectory: dir, recorded: state.run, refusal: "Cannot resume", advice: " Start a new run instead.")
        if retryFailed {
            let retried = try ManifestRecovery.forgetFailures(directory.manifestPath, graph: plan.graph)
            logger.info("retrying \(retried) failed (row, stage) result(s) of \(dir)")
            state = try ManifestRecovery.repairAndRead(directory.manifestPath)
        }
        var setup = RunSetup(
            plan: plan, directory: directory, createdDirectory: false, noCache: options.noCache, shard: options.shard)
        if let run = state.run {
            // The manifest has its run line: the run goes on under it, as the shard it was.
            setup.previous = state
            setup.shard = run.shard ?? options.shard
        } else {
            try Data().write(to: URL(fileURLWithPath: directory.manifestPath))
            setup.runLine = RunLine(noCache: options.noCache, shard: options.shard)
        }
        logger.info("resuming \(dir): \(setup.previous?.rows.count ?? 0) (row, stage) results already recorded")
        return setup
    }
}
