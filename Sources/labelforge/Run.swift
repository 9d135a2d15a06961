import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines
import Logging

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pipeline of stages over a dataset.",
        discussion: """
            Every request carries a seed derived from the row and is cached under the hash of the full request, \
            so running the same config again sends no requests. The run directory holds config.resolved.yaml, \
            manifest.jsonl, outputs/<stage>.jsonl, dataset.jsonl and report.md.
            """
    )

    @Option(name: .long, help: "The pipeline config (YAML). Not needed with --resume.")
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Continue the interrupted run in this directory (runs/<id>).", valueName: "run-dir"))
    var resume: String?

    @Flag(
        name: .long,
        help: "With --resume: run again the rows that failed (after their retries ran out), even in a finished run.")
    var retryFailed = false

    @Option(name: .long, help: "Where run directories are created.")
    var runsDir: String = "runs"

    @Option(name: .long, help: "Process only the first N rows of the dataset.")
    var limit: Int?

    @Flag(name: .long, help: "Do not read cached responses (new responses are still written to the cache).")
    var noCache = false

    @Option(
        name: .long,
        help: "Stop before spending more than this many US dollars at the engines' pricing (replaces budget.usd).")
    var budgetUSD: Double?

    @Option(name: .long, help: "Stop before spending more than this many tokens (replaces budget.tokens).")
    var budgetTokens: Int?

    @OptionGroup var cacheOptions: CacheOptions

    var cachePath: String? { cacheOptions.cachePath }

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Run only shard i of N (0-based; rows split by row-ID hash) and stop before the first dataset-wide stage; "
                + "`auto` reads JOB_COMPLETION_INDEX/JOB_COMPLETIONS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT. "
                + "Combine the shards with `labelforge merge`.",
            valueName: "i/N|auto"))
    var shard: String?

    @OptionGroup var logOptions: LogOptions
    var verbose: Bool { logOptions.verbose }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
        if let budgetUSD, budgetUSD <= 0 { throw ValidationError("--budget-usd must be more than 0.") }
        if let budgetTokens, budgetTokens < 1 { throw ValidationError("--budget-tokens must be at least 1.") }
        if config == nil && resume == nil { throw ValidationError("Give --config <file>, or --resume <run-dir>.") }
        if resume != nil && limit != nil { throw ValidationError("--limit cannot change a resumed run's plan.") }
        if retryFailed && resume == nil { throw ValidationError("--retry-failed needs --resume <run-dir>.") }
        if shard != nil && resume != nil {
            throw ValidationError("--shard cannot change a resumed run's rows: the run directory records its shard.")
        }
    }

    func run() async throws {
        let logger = Terminal.logger(verbose: verbose)
        let shardSpec: ShardSpec?
        do {
            shardSpec = try shard.map { try ShardSpec.parse($0, environment: ProcessInfo.processInfo.environment) }
        } catch {
            throw Terminal.exit(for: error)
        }
        var options = RunOptions(
            configPath: config ?? "", runsDir: runsDir, limit: limit, noCache: noCache, cachePath: cachePath,
            resume: resume,
            retryFailed: retryFailed, shard: shardSpec)
        options.budgetUSD = budgetUSD
        options.budgetTokens = budgetTokens
        try await Terminal.runAndSummarize(options, logger: logger)
    }
}
