import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

extension ReviewExport.Format: ExpressibleByArgument {}
extension ReviewExport.Images: ExpressibleByArgument {}
extension ReviewExport.Order: ExpressibleByArgument {}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a stage's labels for human review (Label Studio, Argilla, JSONL), or a run as a dataset.",
        discussion: """
            label-studio writes tasks.json (import it into a project) and label_config.xml (the project's labeling \
            interface), with the model's answers as predictions; argilla writes records.jsonl and settings.json, with \
            the answers as suggestions; jsonl writes rows.jsonl. Failed rows are left out. Import human answers back \
            with `labelforge import-review`. hf writes the whole run as a Hugging Face dataset folder: \
            data/<split>-00000-of-0000n.parquet, … (--split, default train; --rows-per-file) and a README.md dataset card with the run's provenance; \
            `datasets.load_dataset(folder)` reads it and `huggingface-cli upload` publishes it.
            """
    )

    @Argument(help: "The run directory (runs/<id>).")
    var run: String

    @Option(name: .long, help: "label-studio, argilla, jsonl, or hf (the run as a Hugging Face dataset folder).")
    var format: ReviewExport.Format

    @Option(name: .long, help: "The stage to export (default: the first one with labels to review).")
    var stage: String?

    @Option(name: .long, help: "Where to write the files (default: <run>/export/<format>).")
    var output: String?

    @Option(name: .long, help: "Only rows whose output differs in this other run (the rows to look at first).")
    var onlyDisagreements: String?

    @Flag(
        name: .long,
        help:
            "Only rows a cascade's chat model labeled differently from its embedding classifier (route disagreements).")
    var onlyRouteDisagreements = false

    @Option(name: .long, help: "A random sample of this many rows (reproducible with --seed).")
    var sample: Int?

    @Option(name: .long, help: "input (as the run wrote them) or confidence (least confident first).")
    var order: ReviewExport.Order = .input

    @Option(
        name: .long,
        help: "Export only the first N rows (after --order): the N least confident with --order confidence.")
    var limit: Int?

    @Option(name: .long, help: "The sample's seed.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Images as their file path or as data URLs: path or data-url.")
    var images: ReviewExport.Images = .path

    @Option(name: .long, help: "With --format hf: the split the rows are (names data/<split>-00000-of-0000n.parquet).")
    var split = "train"

    @Option(
        name: .long,
        help: "With --format hf: rows per Parquet file (default: files of about 512 MiB of rows as JSON).")
    var rowsPerFile: Int?

    func validate() throws {
        guard split.range(of: #"^[A-Za-z0-9_]+$"#, options: .regularExpression) != nil else {
            throw ValidationError("--split must be letters, digits and underscores (a Hugging Face split name).")
        }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1.") }
        if let rowsPerFile, rowsPerFile < 1 { throw ValidationError("--rows-per-file must be at least 1.") }
    }

    func run() async throws {
        do {
            let artifacts = try RunArtifacts.load(run)
            if format == .hf {
                let directory = output ?? artifacts.directory + "/export/hf"
                let written = try HFExport(run: artifacts, split: split, rowsPerFile: rowsPerFile).write(to: directory)
                for warning in written.warnings { Terminal.warn(warning) }
                print("exported run \(artifacts.runID) as a Hugging Face dataset folder")
                for path in written.files { print("  \(path)") }
                return
            }
            let export = try ReviewExport(run: artifacts, stage: stage)
            let rows = try export.rows(
                disagreeingWith: try onlyDisagreements.map(RunArtifacts.load), acrossRoutes: onlyRouteDisagreements,
                sample: sample, seed: seed, order: order, limit: limit)
            let directory = output ?? artifacts.directory + "/export/" + format.rawValue
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var written: [String] = []
            func write(_ name: String, _ text: String) throws {
                try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
                written.append(directory + "/" + name)
            }
            switch format {
            case .labelStudio:
                try write("tasks.json", CanonicalJSON.string(export.labelStudioTasks(rows, images: images)) + "\n")
                try write("label_config.xml", export.labelStudioConfig(rows))
            case .argilla:
                try write("settings.json", CanonicalJSON.string(export.argillaSettings(rows)) + "\n")
                try write(
                    "records.jsonl",
                    export.argillaRecords(rows, images: images).map { CanonicalJSON.string($0) + "\n" }.joined())
            case .jsonl, .hf:
                try write("rows.jsonl", export.jsonlRecords(rows).map { CanonicalJSON.string($0) + "\n" }.joined())
            }
            print("exported \(rows.count) rows of stage \(export.stage)")
            for path in written { print("  \(path)") }
        } catch {
            throw Terminal.exit(for: error)
        }
    }
}

struct ImportReview: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-review",
        abstract: "Turn a Label Studio export of human answers into a dataset with gold fields.",
        discussion: """
            Each task becomes a row: its data fields plus gold_<question> per answered question (a question named \
            stage.attribute becomes gold_stage_attribute). Point a stage's gold_field at them to score the next run.
            """
    )

    @Argument(help: "A Label Studio JSON export (Export → JSON).")
    var file: String

    @Option(name: .long, help: "The dataset file to write (JSONL).")
    var output: String

    @Option(name: .long, help: "Prefix of the gold fields.")
    var prefix: String = "gold_"

    func run() async throws {
        do {
            let (rows, skipped) = try ReviewImport.rows(labelStudioExport: file, prefix: prefix)
            try rows.map { CanonicalJSON.string($0) + "\n" }.joined().write(
                toFile: output, atomically: true, encoding: .utf8)
            print(
                "wrote \(rows.count) rows to \(output)"
                    + (skipped > 0 ? " (\(skipped) tasks without an answer left out)" : ""))
        } catch {
            throw Terminal.exit(for: error)
        }
    }
}
