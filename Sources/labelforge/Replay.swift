import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-execute a past run from its manifest and prove its outputs reproduce.",
        discussion: """
            By default every response comes from the cache and no engine is started (zero engine calls); the \
            replay fails, listing missing entries, if the cache lacks any. --recompute calls the engine again with \
            the same seeds and reports, per stage, which rows came out different: this measures an engine's \
            determinism. Refuses when the dataset, prompt pack or model pins on disk differ from the manifest's. \
            Exit codes: 0 every row reproduced byte-identical, 1 some rows differ, 64 the run cannot be replayed \
            as recorded, 69 the engine is unavailable, 130 interrupted.
            """
    )

    @Option(name: .long, help: "The manifest of the run to replay (runs/<id>/manifest.jsonl).")
    var manifest: String

    @Flag(name: .long, help: "Ignore cached responses; call the engine again with the same seeds.")
    var recompute = false

    @Flag(name: .long, help: "Call the engine for responses the cache lacks.")
    var allowEngine = false

    @Option(name: .long, help: "Where the replay's run directory is created.")
    var runsDir: String = "runs"

    @OptionGroup var cacheOptions: CacheOptions

    var cachePath: String? { cacheOptions.cachePath }

    @Option(name: .long, help: "How many differing rows per stage to show with both values.")
    var limit: Int = 10

    @OptionGroup var logOptions: LogOptions

    var verbose: Bool { logOptions.verbose }

    func run() async throws {
        let directory = (manifest as NSString).deletingLastPathComponent
        let options = RunOptions(
            configPath: "", runsDir: runsDir, cachePath: cachePath,
            replay: ReplayOptions(
                runDirectory: directory.isEmpty ? "." : directory, recompute: recompute, allowEngine: allowEngine))
        let bar = ProgressLine()
        let runner = Runner(options: options, logger: Terminal.logger(verbose: verbose)) { bar.update($0) }
        let report: RunReport
        let diff: RunDiff
        do {
            report = try await Terminal.interruptible { try await runner.run() }
            bar.finish()
            diff = try RunDiff.compare(
                RunArtifacts.load(options.replay!.runDirectory), RunArtifacts.load(report.runDirectory.path),
                sampleLimit: limit)
        } catch {
            bar.finish()
            throw Terminal.exit(for: error)
        }
        print("replay:  \(report.runDirectory.path) (of \(diff.a)\(recompute ? ", recomputed" : ", from cache"))")
        print("engine requests sent: \(report.engineRequests)")
        for stage in diff.stages {
            let total = stage.changed + stage.unchanged + stage.onlyA
            print("\(stage.id): reproduced \(stage.unchanged)/\(total) rows byte-identical")
            for sample in stage.samples {
                print("  \(sample.rowID): \(RunDiff.values(sample.a)) → \(RunDiff.values(sample.b))")
            }
        }
        if diff.outputsDiffer { throw ExitCode(1) }
    }
}
