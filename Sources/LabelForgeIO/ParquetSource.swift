import Foundation
import LabelForgeCore

/// A Parquet dataset: one file, or one split of a Hugging Face dataset folder
/// (`data/train-00000-of-00004.parquet`, …), read by `scripts/parquet_io.py` (polars, from the
/// Python environment `make setup` builds) in a child process that streams its rows as JSON lines,
/// a piece of a row group at a time. Nested and list columns arrive as JSON values, binary ones as
/// `{"base64": …}`, a `datasets` Image column as `{"base64": …, "path": …}`.
public struct ParquetSource: Sendable {
    /// The Parquet files, in reading order.
    public var files: [String]
    /// Only these columns, when given.
    public var columns: [String]?
    /// What runs the reader: a Python with polars, then the script.
    public var command: [String]

    public init(files: [String], columns: [String]?, command: [String]) {
        self.files = files
        self.columns = columns
        self.command = command
    }

    /// Where a split's shards may be in a dataset folder, as the Hugging Face Hub lays them out, in
    /// the order they are looked for; the first that has any wins.
    static func patterns(split: String) -> [(directory: String, prefix: String?)] {
        [
            ("data", split + "-"), ("", split + "-"), ("data/" + split, nil), (split, nil), ("data", split + "."),
            ("", split + "."),
        ]
    }

    /// The Parquet files of `path`: the file itself, or the shards of `split` in a dataset folder,
    /// sorted by name.
    /// - Throws: `LabelForgeError.invalidDataset` naming the folder and the splits it has, when it
    ///   has none of `split`.
    public static func files(at path: String, split: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        for (directory, prefix) in patterns(split: split) {
            let folder = directory.isEmpty ? path : path + "/" + directory
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
                $0.hasSuffix(".parquet") && (prefix.map($0.hasPrefix) ?? true)
            }
            if !names.isEmpty { return names.sorted().map { folder + "/" + $0 } }
        }
        let found = Set(
            ["", "data"].flatMap { directory in
                ((try? FileManager.default.contentsOfDirectory(
                    atPath: directory.isEmpty ? path : path + "/" + directory))
                    ?? []).filter { $0.hasSuffix(".parquet") }.map { name in
                        String(name.prefix { $0 != "-" && $0 != "." })
                    }
            })
        throw LabelForgeError(
            .invalidDataset,
            "\(path): no Parquet files of split '\(split)' (looked for data/\(split)-*.parquet, \(split)-*.parquet, "
                + "data/\(split)/*.parquet, \(split).parquet). "
                + (found.isEmpty
                    ? "The folder has no Parquet files."
                    : "Its splits: \(found.sorted().joined(separator: ", ")). Set dataset.split."))
    }

    /// `sha256:` of the file's bytes for one file (as for JSONL), else of each shard's name (relative
    /// to `path`) and bytes, in order.
    public func fingerprint(path: String) throws -> String {
        if files == [path] { return ContentHash.prefixed(try ContentHash.hexOfFile(atPath: path)) }
        var hasher = ContentHash.Hasher()
        for file in files {
            hasher.update(String(file.dropFirst(path.count)))
            hasher.update(try ContentHash.hexOfFile(atPath: file))
        }
        return hasher.finalize()
    }
}

/// The reader's child process: its rows on a pipe, its complaints on another.
final class ParquetChild {
    let process = Process()
    let errors = Pipe()
    let lines: LineReader

    /// - Throws: `LabelForgeError.invalidDataset` when the reader cannot start.
    init(_ source: ParquetSource, name: String) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: source.command[0])
        process.arguments =
            Array(source.command.dropFirst()) + ["read"] + source.files
            + (source.columns.map { ["--columns", $0.joined(separator: ",")] } ?? [])
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw LabelForgeError(
                .invalidDataset,
                "\(name): cannot start the Parquet reader (\(source.command.joined(separator: " "))): \(error). "
                    + "Run `make setup`, which installs it.")
        }
        lines = try LineReader(fileDescriptor: dup(output.fileHandleForReading.fileDescriptor), name: name)
        try? output.fileHandleForReading.close()
    }

    /// After the last row: the reader's own failure, if it failed.
    func finish() throws {
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus != 0 else { return }
        throw LabelForgeError(
            .invalidDataset,
            message.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init)
                ?? "the Parquet reader failed (exit \(process.terminationStatus)).")
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
