import ArgumentParser
import Foundation
import LabelForgeKernel
import LabelForgePipelines

struct Ablate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every variant of a matrix over a base config, with shared engines and cache, and summarize.",
        discussion: """
            The ablation config names a base pipeline config and a matrix of config key paths with the values to try \
            (docs/ablations.md). Each variant is a normal run under <dir>/runs/; the summary (summary.json, \
            summary.md) compares accuracy, agreement, tokens, time and requests across variants.
            """
    )

    @Option(name: .long, help: "The ablation config (YAML).")
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Continue the interrupted ablation in this directory.", valueName: "dir"))
    var resume: String?

    @Option(name: .long, help: "Where ablation directories are created.")
    var ablationsDir: String = "ablations"

    @Option(name: .long, help: "Process only the first N rows in every variant.")
    var limit: Int?

    @OptionGroup var cacheOptions: CacheOptions

    var cachePath: String? { cacheOptions.cachePath }

    @OptionGroup var logOptions: LogOptions

    var verbose: Bool { logOptions.verbose }

    func validate() throws {
        if (config == nil) == (resume == nil) { throw ValidationError("Give --config <file> or --resume <dir>.") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
        if resume != nil && limit != nil { throw ValidationError("--limit cannot change a resumed ablation.") }
    }

    func run() async throws {
        let runner = AblationRunner(logger: Terminal.logger(verbose: verbose), limit: limit, cachePath: cachePath)
        let directory: String
        do {
            if let resume {
                try await Terminal.interruptible { try await runner.resume(directory: resume) }
                directory = resume
            } else {
                directory = try await Terminal.interruptible {
                    try await runner.start(configPath: config!, ablationsDir: ablationsDir)
                }
            }
        } catch {
            throw Terminal.exit(for: error)
        }
        print("ablation: \(directory)")
        print("summary:  \(directory)/summary.md")
        if let text = try? String(contentsOfFile: directory + "/summary.md", encoding: .utf8) { print("\n" + text) }
    }
}
