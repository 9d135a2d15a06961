import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a run would send: per stage, the requests the cache answers and the new ones.",
        discussion: """
            Runs the pipeline against the cache alone: no engine is started and nothing is sent. Request keys are \
            computed exactly as the run computes them; a row whose upstream output is not cached yet is counted as \
            waiting (at least one new request). Planning stops before the first dataset-wide stage.
            """
    )

    @Option(name: .long, help: "The pipeline config (YAML), or an ablation config (labelforge ablate).")
    var config: String

    @Option(name: .long, help: "Plan only the first N rows.")
    var limit: Int?

    @OptionGroup var cacheOptions: CacheOptions

    var cachePath: String? { cacheOptions.cachePath }

    @Option(name: .long, help: "Where earlier runs are (their throughput gives the time estimate).")
    var runsDir: String = "runs"

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        do {
            // An ablation config (a `matrix` over a base config): every variant's plan.
            if let text = try? String(contentsOfFile: config, encoding: .utf8),
                text.split(separator: "\n").contains(where: { $0.hasPrefix("matrix:") })
            {
                let plan = try await AblationPlan.make(
                    configPath: config, limit: limit, cachePath: cachePath, runsDir: runsDir,
                    logger: Terminal.logger(verbose: false))
                print(json ? CanonicalJSON.string(plan.json) : plan.rendered, terminator: json ? "\n" : "")
                return
            }
            let runner = Runner(
                options: RunOptions(configPath: config, runsDir: runsDir, limit: limit, cachePath: cachePath),
                logger: Terminal.logger(verbose: false))
            let report = try await runner.plan()
            print(json ? CanonicalJSON.string(report.json) : report.rendered, terminator: json ? "\n" : "")
        } catch {
            throw Terminal.exit(for: error)
        }
    }
}
