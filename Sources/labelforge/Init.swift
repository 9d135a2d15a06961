import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a starter project (config, prompt pack, 20 labeled reviews) that runs at once.",
        discussion: """
            Then: cd <dir> && labelforge run --config config.yaml. Refuses to overwrite files that exist, naming them.
            """
    )

    @Argument(help: "The project directory (created if missing).")
    var directory: String = "."

    func run() async throws {
        let fileManager = FileManager.default
        let existing = StarterProject.files.map { directory + "/" + $0.path }.filter {
            fileManager.fileExists(atPath: $0)
        }
        guard existing.isEmpty else {
            Terminal.printError(
                "\(existing.joined(separator: ", ")) already exist\(existing.count == 1 ? "s" : ""); "
                    + "choose an empty directory (nothing was written).")
            throw ExitCode(64)
        }
        for (path, contents) in StarterProject.files {
            let full = directory + "/" + path
            try fileManager.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(toFile: full, atomically: true, encoding: .utf8)
        }
        print("wrote a starter project to \(directory): config.yaml, prompts/, data/reviews.jsonl (20 rows)")
        print("run it:  cd \(directory) && labelforge run --config config.yaml")
    }
}
