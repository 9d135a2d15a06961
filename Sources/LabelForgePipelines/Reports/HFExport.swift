import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel

/// A run as a Hugging Face dataset folder (`labelforge export runs/<id> --format hf`):
/// `data/<split>-00000-of-0000n.parquet`, … and a `README.md` dataset card whose YAML header lists the
/// data files and features (`datasets.load_dataset(folder)` reads both) and whose body holds the
/// run's provenance: config, prompt pack, model pins, seed, determinism, cache hit rate, accuracy
/// with intervals, failed rows, and how to replay it. `huggingface-cli upload <repo> <folder>`
/// publishes it as it is.
///
/// Each row of `dataset.jsonl` is one row: the input's columns as they are, `row_id`, and one
/// column per stage output, named `<stage>.<field>` (null where the stage failed or dropped the row),
/// typed as the stage declares it. Image fields are the `datasets` Image feature (the bytes and the
/// file name, from the file or, for images stored in the dataset, from the dataset read again); an
/// embed stage's vectors are `<stage>.vector`, fixed-size lists of float32.
public struct HFExport: Sendable {
    public var run: RunArtifacts
    public var split = "train"
    /// Rows per Parquet file; `nil`: as many files as keep each under about 512 MiB of rows (as
    /// JSON), the Hub's advice.
    public var rowsPerFile: Int?

    public init(run: RunArtifacts, split: String = "train", rowsPerFile: Int? = nil) {
        self.run = run
        self.split = split
        self.rowsPerFile = rowsPerFile
    }

    /// Whether `name` (in `data/`) is one of this split's files as an export names them.
    func isDataFile(_ name: String) -> Bool {
        name.hasPrefix(split + "-")
            && name.dropFirst(split.count + 1).range(of: #"^\d{5}-of-\d{5}\.parquet$"#, options: .regularExpression)
                != nil
    }

    /// One exported row from one line of `dataset.jsonl`.
    static func record(_ line: JSONValue) -> [String: JSONValue] {
        var record = line["input"]?.objectValue ?? [:]
        record["row_id"] = line["row_id"] ?? .null
        for (stage, output) in line["outputs"]?.objectValue ?? [:] {
            for (field, value) in output.objectValue ?? [:] where field != "row_id" {
                record["\(stage).\(field)"] = value
            }
        }
        return record
    }

    /// What an export wrote, and what it could not do as asked.
    public struct Written: Sendable {
        /// The data file and the card.
        public var files: [String]
        /// What the export left out or typed otherwise, for a `warning:` line each.
        public var warnings: [String] = []
    }

    /// What `writeRows` found while writing the rows.
    private struct Rows {
        var count = 0
        /// The embed stages whose vectors are joined.
        var embeds: [String] = []
        /// The input's columns.
        var inputColumns: Set<String> = []
        /// Images that could not be read, exported as null.
        var missingImages = 0
        var firstMissing: String? = nil
    }

    /// Writes the folder: the rows as Parquet, then the card.
    /// - Returns: the files written, and warnings.
    /// - Throws: `LabelForgeError` when the run has no rows file, or the Parquet writer
    ///   (`scripts/parquet_io.py`) is missing or fails.
    public func write(to directory: String) throws -> Written {
        let source = run.directory + "/dataset.jsonl"
        guard FileManager.default.fileExists(atPath: source) else {
            throw LabelForgeError(
                .fileNotFound,
                "\(run.directory) has no dataset.jsonl: a shard run, or one stopped before its last stage. Merge the "
                    + "shards (labelforge merge) or finish the run, then export it.")
        }
        // Other Parquet files under data/ would be read as part of the split; an earlier export's
        // own files are replaced.
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/data")) ?? []
        let strays = existing.filter { $0.hasSuffix(".parquet") && !isDataFile($0) }
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
        var warnings: [String] = []
        let config: RunConfig?
        do {
            config = try RunConfig.load(file: run.directory + "/config.resolved.yaml", resolved: true)
        } catch {
            config = nil
            warnings.append(
                "the run's config.resolved.yaml cannot be loaded (\(error)): columns typed from their values, images "
                    + "as recorded, no vectors.")
        }
        let stages = config.map { config in config.stages.map(config.makeStage) } ?? []
        let file = staging + "/rows.jsonl"
        let rows = try writeRows(from: source, to: file, stages: stages, config: config, staging: staging)
        if let first = rows.firstMissing {
            warnings.append(
                "\(rows.missingImages) images could not be read and are exported as null (first: \(first)).")
        }
        let vectors = rows.embeds.map { stage in
            ParquetWriter.Vectors(
                npy: run.directory + "/outputs/\(stage).npy", index: Self.vectorIndex(stage), column: "\(stage).vector",
                dropIndex: true)
        }
        let bytes = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? 0
        let files = max(1, (bytes + Self.bytesPerFile - 1) / Self.bytesPerFile)
        try FileManager.default.createDirectory(atPath: staging + "/data", withIntermediateDirectories: true)
        let written = try ParquetWriter.write(
            rows: file, to: staging + "/data/\(split).parquet",
            schema: config.map { Self.schema(stages: stages, dataset: $0.dataset, inputColumns: rows.inputColumns) },
            vectors: vectors, images: config?.dataset.imageFields ?? [],
            rowsPerFile: rowsPerFile ?? max(1, (rows.count + files - 1) / files))
        if let reason = written.undeclared {
            warnings.append("columns typed from their values, not as the stages declare them (\(reason)).")
        }
        let names = written.files.map { ($0 as NSString).lastPathComponent }
        let card = try self.card(features: written.features, rows: rows.count, files: names)
        for name in existing where isDataFile(name) {
            try FileManager.default.removeItem(atPath: directory + "/data/" + name)
        }
        for name in names {
            try FileManager.default.moveItem(atPath: staging + "/data/" + name, toPath: directory + "/data/" + name)
        }
        try card.write(toFile: directory + "/README.md", atomically: true, encoding: .utf8)
        return Written(
            files: names.map { directory + "/data/" + $0 } + [directory + "/README.md"], warnings: warnings)
    }

    /// Writes the rows to export as JSON lines: each line of `dataset.jsonl` as `record(_:)` makes it,
    /// with its images' bytes and its place in each embed stage's `.npy` (found by its row ID, or
    /// its parent's for a row a later stage fanned out).
    private func writeRows(
        from source: String, to file: String, stages: [any PipelineStage], config: RunConfig?, staging: String
    ) throws -> Rows {
        let imageFields = config?.dataset.imageFields ?? []
        let images = try config.map { try ExportImages(source: source, dataset: $0.dataset, staging: staging) }
        var rows = Rows()
        rows.embeds = stages.filter(\.writesVectors).map(\.config.id).filter {
            FileManager.default.fileExists(atPath: run.directory + "/outputs/\($0).npy")
        }
        var vectorRows: [String: [String: JSONValue]] = [:]
        for stage in rows.embeds {
            HTMLReport.forEachLine(run.directory + "/outputs/\(stage).jsonl") { line in
                if let rowID = line["row_id"]?.stringValue, let index = line["index"] {
                    vectorRows[stage, default: [:]][rowID] = index
                }
            }
        }
        guard let output = OutputStream(toFileAtPath: file, append: false) else {
            throw LabelForgeError(.fileNotFound, "cannot write \(file).")
        }
        output.open()
        defer { output.close() }
        HTMLReport.forEachLine(source) { line in
            var record = Self.record(line)
            if let columns = line["input"]?.objectValue?.keys { rows.inputColumns.formUnion(columns) }
            for field in imageFields {
                let value = record[field] ?? .null
                do {
                    record[field] = try images?.image(value) ?? .null
                } catch {
                    record[field] = .null
                    rows.missingImages += 1
                    if rows.firstMissing == nil { rows.firstMissing = "\(error)" }
                }
            }
            for stage in rows.embeds {
                let ids = [line["row_id"]?.stringValue, line["parent_row_id"]?.stringValue].compactMap { $0 }
                record[Self.vectorIndex(stage)] = ids.lazy.compactMap { vectorRows[stage]?[$0] }.first ?? .null
            }
            let text = Array((CanonicalJSON.string(.object(record)) + "\n").utf8)
            output.write(text, maxLength: text.count)
            rows.count += 1
        }
        guard rows.count > 0 else {
            throw LabelForgeError(.invalidDataset, "\(run.directory)/dataset.jsonl has no rows to export.")
        }
        return rows
    }

    /// The column that carries a row's place in an embed stage's `.npy` to the Parquet writer,
    /// which joins the vector and drops it.
    static func vectorIndex(_ stage: String) -> String { "\u{0}index.\(stage)" }

    /// The exported rows' declared types: `row_id`; each stage's outputs as `<stage>.<field>`, typed
    /// as the stage declares them (the others checked); image fields as `{base64, path}`; the input's
    /// other columns as the dataset's format types them. Any other column is checked.
    static func schema(stages: [any PipelineStage], dataset: RunConfig.Dataset, inputColumns: Set<String>)
        -> ColumnType
    {
        var named: [String: ColumnType?] = [:]
        let input = ColumnType.input(of: dataset)
        let inputType: ColumnType? = if case .object(_, let others) = input { others } else { input }
        for column in inputColumns { named[column] = inputType }
        named["row_id"] = .string
        for stage in stages {
            for field in stage.outputFields { named["\(stage.config.id).\(field)"] = .some(nil) }
            for (field, type) in stage.outputTypes { named["\(stage.config.id).\(field)"] = type }
        }
        for field in dataset.imageFields { named[field] = .object(["base64": .string, "path": .string]) }
        return .object(named)
    }

    /// Rows (as JSON) per Parquet file, when `rowsPerFile` is not given: about 512 MiB.
    static let bytesPerFile = 512 << 20

    /// The dataset card: YAML metadata, then the provenance.
    func card(features: JSONValue, rows: Int, files: [String]) throws -> String {
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
        // datasets reads a feature's type from its first key after `name`.
        let yaml = try ResolvedYAML.string(metadata, leading: ["name", "dtype", "list", "struct"])
        return "---\n" + yaml + "---\n\n" + body(rows: rows, files: files)
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
    func body(rows: Int, files: [String]) -> String {
        let record = run.run
        let summary = run.summary
        var lines = [
            "# \(run.resolvedConfig["run"]?["name"]?.stringValue ?? record.runID)", "",
            "Labeled by LabelForge \(record.labelforgeVersion): \(rows) rows, split `\(split)`, "
                + (files.count == 1 ? "in `data/\(files[0])`." : "in \(files.count) files, `data/\(split)-*.parquet`."),
            "",
            "## Columns", "",
            "- The input's own columns, as the run read them; image fields as images (the `datasets` Image feature).",
            "- `row_id`: LabelForge's row ID.",
            "- `<stage>.<field>`: each stage's outputs; null where the stage failed or dropped the row. An embed "
                + "stage's vectors are `<stage>.vector`.", "",
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

/// The bytes of the images an export writes: a path is read from the dataset's folder; an image the
/// dataset held itself (`dataset.jsonl` records it by its `sha256:` hash) is found by reading the
/// dataset again, once, and kept in a staging folder until the rows are written.
struct ExportImages {
    let images: ImageFieldSet
    /// The stored image of each hash, and the name the dataset gave it.
    private var stored: [String: (file: String, name: String?)] = [:]

    /// Finds every hashed image `dataset.jsonl` (`source`) names in the run's dataset.
    /// - Throws: `LabelForgeError` when the dataset cannot be read.
    init(source: String, dataset: RunConfig.Dataset, staging: String) throws {
        images = dataset.images
        guard !dataset.imageFields.isEmpty else { return }
        var needed = Set<String>()
        HTMLReport.forEachLine(source) { line in
            for field in dataset.imageFields {
                if let hash = line["input"]?[field]?.stringValue, hash.hasPrefix("sha256:") { needed.insert(hash) }
            }
        }
        guard !needed.isEmpty else { return }
        guard FileManager.default.fileExists(atPath: dataset.path) else {
            throw LabelForgeError(
                .fileNotFound,
                "\(dataset.path) is gone, and the run's dataset.jsonl records its images by hash: the export "
                    + "needs their bytes. Put the dataset back where the run read it.")
        }
        let reader = try dataset.reader()
        try FileManager.default.createDirectory(atPath: staging + "/images", withIntermediateDirectories: true)
        while stored.count < needed.count, let record = try reader.next() {
            let loaded = images.load(record)
            for field in dataset.imageFields {
                guard let image = loaded.images[field], needed.contains(image.contentHash),
                    stored[image.contentHash] == nil
                else { continue }
                let file = staging + "/images/\(stored.count)"
                try image.bytes.write(to: URL(fileURLWithPath: file))
                stored[image.contentHash] = (file, record.fields[field]?["path"]?.stringValue)
            }
        }
    }

    /// An image field's value as the export writes it, `{base64, path}`; null for none.
    /// - Throws: `LabelForgeError` when the image cannot be found or read.
    func image(_ value: JSONValue) throws -> JSONValue {
        let (bytes, name): (Data, String?)
        if let hash = value.stringValue, hash.hasPrefix("sha256:") {
            guard let found = stored[hash] else {
                throw LabelForgeError(
                    .fileNotFound,
                    "the image \(hash) is not in the run's dataset any more; export the run from its dataset.")
            }
            (bytes, name) = (try Data(contentsOf: URL(fileURLWithPath: found.file)), found.name)
        } else if let path = value.stringValue ?? value["path"]?.stringValue, !path.isEmpty {
            let full = path.hasPrefix("/") ? path : images.baseDirectory + "/" + path
            guard let data = FileManager.default.contents(atPath: full) else {
                throw LabelForgeError(.fileNotFound, "cannot read the image \(full) to export it.")
            }
            (bytes, name) = (data, (path as NSString).lastPathComponent)
        } else {
            return .null
        }
        return ["base64": .string(bytes.base64EncodedString()), "path": name.map(JSONValue.string) ?? .null]
    }
}
