import ArgumentParser
import Foundation
import LabelForgeKernel
import LabelForgePipelines

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a run's HTML report (report.html: charts, confusion matrices, thumbnails) and print its path.",
        discussion:
            "`run` writes it too; this rebuilds it from the run directory's files, e.g. for a run made before it existed."
    )

    @Argument(help: "The run directory (runs/<id>).")
    var run: String

    func run() async throws {
        let directory = run.hasSuffix("/") ? String(run.dropLast()) : run
        do {
            let html = try HTMLReport.run(directory: directory)
            let path = directory + "/report.html"
            try html.write(toFile: path, atomically: true, encoding: .utf8)
            print(path)
        } catch {
            throw Terminal.exit(for: error)
        }
    }
}
