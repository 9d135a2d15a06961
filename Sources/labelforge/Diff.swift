import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

struct Diff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changed between two runs: config, pins and outputs, with agreement statistics.",
        discussion: "Exit codes, like diff(1): 0 no output differs, 1 some outputs differ, 2 an error."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, markdown, json, html
    }

    @Argument(help: "The first run directory (runs/<id>).")
    var a: String

    @Argument(help: "The second run directory.")
    var b: String

    @Option(name: .long, help: "Output format: text, markdown, json, or html (one self-contained page).")
    var format: Format = .text

    @Option(name: .long, help: "How many changed rows per stage to show with both values.")
    var limit: Int = 10

    func run() async throws {
        let diff: RunDiff
        do {
            diff = try RunDiff.compare(RunArtifacts.load(a), RunArtifacts.load(b), sampleLimit: limit)
        } catch {
            Terminal.printError((error as? LabelForgeError)?.message ?? String(describing: error))
            throw ExitCode(2)
        }
        switch format {
        case .json: print(CanonicalJSON.string(diff.json))
        case .markdown: print(diff.rendered(markdown: true), terminator: "")
        case .text: print(diff.rendered(markdown: false), terminator: "")
        case .html: print(HTMLReport.diff(diff), terminator: "")
        }
        if diff.outputsDiffer { throw ExitCode(1) }
    }
}
