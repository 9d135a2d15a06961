import Foundation
import LabelForgeCore
import LabelForgeIO

extension RunConfig.Dataset {
    /// A reader of the dataset's records, from the first.
    public func reader() throws -> DatasetReader {
        try DatasetReader(path: path, format: format, parquet: try parquetSource())
    }

    /// The dataset file's fingerprint (for Parquet, of every file read).
    public func fileFingerprint() throws -> String {
        if let parquet = try parquetSource() { return try parquet.fingerprint(path: path) }
        return try DatasetReader.fingerprint(path: path, format: format)
    }

    /// How a Parquet dataset is read: its files, its columns, and the reader `make setup` installs
    /// (`scripts/parquet_io.py` in the Python environment); `nil` for other formats.
    func parquetSource() throws -> ParquetSource? {
        guard format == .parquet else { return nil }
        guard let (python, script) = ParquetWriter.installed else {
            throw LabelForgeError(
                .invalidDataset,
                "\(pathLocation.isEmpty ? path : pathLocation): reading Parquet needs scripts/parquet_io.py and the "
                    + "Python environment with polars that `make setup` (or `labelforge setup`) installs.")
        }
        return ParquetSource(
            files: try ParquetSource.files(at: path, split: split ?? "train"), columns: columns,
            command: [python, script])
    }
}

extension RunConfig.Dataset {
    /// `split` and `columns` as the resolved config lists them: for Parquet only, so other
    /// datasets' resolved configs (and plan hashes) stay as they were.
    var parquetKeys: [String: JSONValue] {
        guard format == .parquet else { return [:] }
        return [
            "split": .string(split ?? "train"),
            "columns": columns.map { .array($0.map(JSONValue.string)) } ?? .null,
        ]
    }
}

extension RunConfig {
    /// The format of a dataset given without `format`: Parquet for a `.parquet` file, or for a
    /// folder given a `split` or whose `data/` holds Parquet files (a Hugging Face dataset folder);
    /// an image folder for any other folder; CSV for `.csv`; else JSONL.
    static func datasetFormat(of path: String, splitGiven: Bool) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return path.hasSuffix(".parquet") ? "parquet" : path.hasSuffix(".csv") ? "csv" : "jsonl"
        }
        let holdsParquet = ((try? FileManager.default.contentsOfDirectory(atPath: path + "/data")) ?? []).contains {
            $0.hasSuffix(".parquet")
        }
        return splitGiven || holdsParquet ? "parquet" : "imagefolder"
    }
}
