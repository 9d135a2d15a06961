import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the shard runs of one plan (`labelforge run --shard i/N`) into one run.",
        discussion: """
            Checks that the shards come from the same plan and cover every row once, then writes a new run \
            directory: outputs in input order, byte-identical to an unsharded run's, every (row, stage) recorded \
            as its shard recorded it, the summary counted from those records. Answers come from the cache the \
            shards shared (--cache-path or the config's cache); no engine is started. With --continue the stages \
            the shards stopped before (dataset-wide stages and everything after them) run on the merged rows. \
            Exit codes: 0 merged, 1 the continued run was aborted, 64 the shards do not fit together, 130 \
            interrupted.
            """
    )

    @Argument(help: ArgumentHelp("The shards' run directories, in any order.", valueName: "shard-run-dir"))
    var shards: [String]

    @Flag(name: .long, help: "Also run the dataset-wide stages and the stages after them (starts the engines).")
    var `continue` = false

    @Option(name: .long, help: "Where the merged run directory is created.")
    var runsDir: String = "runs"

    @OptionGroup var cacheOptions: CacheOptions

    var cachePath: String? { cacheOptions.cachePath }

    @OptionGroup var logOptions: LogOptions

    var verbose: Bool { logOptions.verbose }

    func validate() throws {
        if shards.isEmpty { throw ValidationError("Give the run directories of the shards to merge.") }
    }

    func run() async throws {
        let options = RunOptions(
            configPath: "", runsDir: runsDir, cachePath: cachePath,
            merge: MergeOptions(shardDirectories: shards, continueRun: self.continue))
        try await Terminal.runAndSummarize(options, logger: Terminal.logger(verbose: verbose))
    }
}
