import Foundation
import LabelForgeCore
import LabelForgeKernel

/// A run as a Hugging Face dataset folder (`labelforge export runs/<id> --format hf`):
/// `data/<split>-00000-of-00001.parquet` and a `README.md` dataset card whose YAML header lists the
/// data files and features (`datasets.load_dataset(folder)` reads both) and whose body holds the
/// run's provenance: config, prompt pack, model pins, seed, determinism, cache hit rate, accuracy
/// with intervals, failed rows, and how to replay it. `huggingface-cli upload <repo> <folder>`
/// publishes it as it is.
///
/// Each row of `dataset.jsonl` is one row: the input's columns as they are, `row_id`, and one
/// column per stage output, named `<stage>.<field>` (null where the stage failed or dropped the row).
public struct HFExport: Sendable {
    public var run: RunArtifacts
    public var split = "train"

    public init(run: RunArtifacts, split: String = "train") {
        self.run = run
        self.split = split
    }

    /// The Parquet file's name in the folder.
    public var dataFile: String { "data/\(split)-00000-of-00001.parquet" }

    /// One exported row from one line of `dataset.jsonl`.
    static func record(_ line: JSONValue) -> JSONValue {
        var record = line["input"]?.objectValue ?? [:]
        record["row_id"] = line["row_id"] ?? .null
        for (stage, output) in line["outputs"]?.objectValue ?? [:] {
            for (field, value) in output.objectValue ?? [:] where field != "row_id" {
                record["\(stage).\(field)"] = value
            }
        }
        return .object(record)
    }

    /// Writes the folder: the rows as Parquet, then the card.
    /// - Returns: the files written.
    /// - Throws: `LabelForgeError` when the run has no rows file, or the Parquet writer
    ///   (`scripts/parquet_io.py`) is missing or fails.
    public func write(to directory: String) throws -> [String] {
        let source = run.directory + "/dataset.jsonl"
        guard FileManager.default.fileExists(atPath: source) else {
            throw LabelForgeError(
                .fileNotFound,
                "\(run.directory) has no dataset.jsonl: a shard run, or one stopped before its last stage. Merge the "
                    + "shards (labelforge merge) or finish the run, then export it.")
        }
        // Other Parquet files under data/ would be read as part of the split.
        let strays = ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/data")) ?? []).filter {
            $0.hasSuffix(".parquet") && directory + "/data/" + $0 != directory + "/" + dataFile
        }
        if let stray = strays.first {
            throw LabelForgeError(
                .invalidConfig,
                "\(directory)/data already holds \(stray), which a dataset card's data/\(split)-* would read too. "
                    + "Export into an empty folder.")
        }
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        // Staged outside the folder, so nothing half-written is ever in it.
        let staging = NSTemporaryDirectory() + "/labelforge-export-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let rows = staging + "/rows.jsonl"
        guard let output = OutputStream(toFileAtPath: rows, append: false) else {
            throw LabelForgeError(.fileNotFound, "cannot write \(rows).")
        }
        output.open()
        var count = 0
        HTMLReport.forEachLine(source) { line in
            let text = Array((CanonicalJSON.string(Self.record(line)) + "\n").utf8)
            output.write(text, maxLength: text.count)
            count += 1
        }
        output.close()
        guard count > 0 else {
            throw LabelForgeError(.invalidDataset, "\(run.directory)/dataset.jsonl has no rows to export.")
        }
        let written = try ParquetWriter.write(rows: rows, to: staging + "/data.parquet")
        let card = try self.card(features: written["features"] ?? [], rows: count)
        try? FileManager.default.removeItem(atPath: directory + "/" + dataFile)
        try FileManager.default.moveItem(atPath: staging + "/data.parquet", toPath: directory + "/" + dataFile)
        try card.write(toFile: directory + "/README.md", atomically: true, encoding: .utf8)
        return [directory + "/" + dataFile, directory + "/README.md"]
    }

    /// The dataset card: YAML metadata, then the provenance.
    func card(features: JSONValue, rows: Int) throws -> String {
        let metadata: JSONValue = [
            "configs": [
                [
                    "config_name": "default",
                    "data_files": [["split": .string(split), "path": .string("data/\(split)-*")]],
                ]
            ],
            "dataset_info": ["features": features],
            "license": "unknown",
            "task_categories": .array(taskCategories.map(JSONValue.string)),
            "size_categories": [.string(Self.sizeCategory(rows))],
            "tags": ["labelforge"],
        ]
        let yaml = try ResolvedYAML.string(metadata)
        return "---\n" + yaml + "---\n\n" + body(rows: rows)
    }

    /// The Hub's task categories for the run's stage types.
    var taskCategories: [String] {
        let byType = [
            "classify": "text-classification", "tag": "text-classification", "rubric_score": "text-classification",
            "generate": "text-generation", "synthesize": "text-generation",
            "synthesize_conversation": "text-generation",
            "caption": "image-to-text", "embed": "feature-extraction", "mine_hard_negatives": "sentence-similarity",
            "rerank": "text-ranking",
        ]
        let categories = run.run.stages.compactMap { byType[$0.type] }
        return categories.enumerated().filter { !categories[..<$0.offset].contains($0.element) }.map(\.element)
    }

    /// The Hub's size bucket for `rows`.
    static func sizeCategory(_ rows: Int) -> String {
        let buckets = [
            (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
            (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
        ]
        return buckets.first { rows < $0.0 }?.1 ?? "100M<n<1B"
    }

    /// The card's body: what the rows are, and where they came from.
    func body(rows: Int) -> String {
        let record = run.run
        let summary = run.summary
        var lines = [
            "# \(run.resolvedConfig["run"]?["name"]?.stringValue ?? record.runID)", "",
            "Labeled by LabelForge \(record.labelforgeVersion): \(rows) rows, split `\(split)`, "
                + "in `\(dataFile)`.", "",
            "## Columns", "",
            "- The input's own columns, as the run read them (images by their content hash).",
            "- `row_id`: LabelForge's row ID.",
            "- `<stage>.<field>`: each stage's outputs; null where the stage failed or dropped the row.", "",
            "## Provenance", "",
            "| | |", "|---|---|",
            "| run | `\(record.runID)` (plan `\(record.planHash)`) |",
            "| dataset | `\((record.dataset.path as NSString).lastPathComponent)` (\(record.dataset.format), \(record.dataset.rows) rows, "
                + "`\(record.dataset.fingerprint)`) |",
            record.promptPack.name == "none"
                ? "| prompt pack | none |"
                : "| prompt pack | \(record.promptPack.name) \(record.promptPack.version) (`\(record.promptPack.hash)`) |",
        ]
        for model in record.models {
            lines.append("| model (\(model.engine)) | `\(model.id)` at `\(model.revision)` |")
        }
        lines += [
            "| run seed | \(record.runSeed) |", "| determinism | \(record.determinism) |",
        ]
        if let counts = summary?.counts {
            let hits = counts.stages.values.reduce(0) { $0 + $1.cacheHits }
            let lookups = counts.stages.values.reduce(0) { $0 + $1.cacheHits + $1.cacheMisses }
            let rate =
                lookups == 0
                ? "none" : String(format: "%.1f%% (%d of %d)", 100 * Double(hits) / Double(lookups), hits, lookups)
            lines += ["| cache hit rate | \(rate) |", "| failed rows | \(counts.rowsFailed) of \(counts.rows) |"]
        }
        if let gold = summary?.gold, !gold.isEmpty {
            lines += [
                "", "## Accuracy against gold (95% bootstrap intervals)", "",
                "| field | gold field | n | accuracy | macro-F1 | kappa | chance |", "|---|---|---|---|---|---|---|",
            ]
            for g in gold {
                lines.append(
                    "| `\(g.stage).\(g.field)` | `\(g.goldField)` | \(g.n) | \(RunReport.percent(g.accuracy, g.intervals?.accuracy)) | "
                        + String(format: "%.3f", g.macroF1) + " | "
                        + (g.kappa.map { String(format: "%.3f", $0) } ?? "–")
                        + " | " + (g.majority.map { String(format: "%.1f%%", 100 * $0) } ?? "–") + " |")
            }
        }
        let config = (try? String(contentsOfFile: run.directory + "/config.resolved.yaml", encoding: .utf8)) ?? ""
        lines += [
            "", "## Replay", "",
            "With the run directory and its cache, every label is reproduced without an engine:", "", "```sh",
            "labelforge replay --manifest runs/\(record.runID)/manifest.jsonl", "```", "",
            "## Config", "", "```yaml", config.trimmingCharacters(in: .newlines), "```", "",
        ]
        return lines.joined(separator: "\n")
    }
}
