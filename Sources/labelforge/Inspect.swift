import ArgumentParser
import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Explain a run: pins, engine, environment, per-stage counts, latency, errors and accuracy; or one row's lineage."
    )

    @Argument(help: "The run directory (runs/<id>).")
    var run: String

    @Option(name: .long, help: "Show one row's inputs, rendered prompts, seeds, raw responses and outputs.")
    var row: String?

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @OptionGroup var cacheOptions: CacheOptions

    var cachePath: String? { cacheOptions.cachePath }

    func run() async throws {
        do {
            let artifacts = try RunArtifacts.load(self.run)
            if let row {
                // The run's own cache (SQLite, S3 or tiered), as its resolved config names it.
                let cache = try await RunCache.open(
                    configPath: artifacts.directory + "/config.resolved.yaml", overridePath: cachePath,
                    logger: Terminal.logger(verbose: false))
                let lineage = try await RunInspection.row(row, run: artifacts, cache: cache)
                print(
                    json ? CanonicalJSON.string(lineage) : RunInspection.render(row: lineage),
                    terminator: json ? "\n" : "")
            } else {
                let summary = try RunInspection.summary(artifacts)
                print(
                    json ? CanonicalJSON.string(summary) : RunInspection.render(summary: summary),
                    terminator: json ? "\n" : "")
            }
        } catch let error as LabelForgeError {
            throw Terminal.exit(for: error)
        }
    }
}
