import Foundation
import LabelForgeCore

#if canImport(Glibc)
    import Glibc
#endif

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
            // In byte order, as the Hub and Python sort them (`train-10` before `train-2` unpadded).
            if !names.isEmpty {
                return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { folder + "/" + $0 }
            }
        }
        // The splits the folder has: shard names' prefixes, and `data/<split>/` folders of shards.
        var found: Set<String> = []
        for directory in [path, path + "/data"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                if name.hasSuffix(".parquet") {
                    found.insert(String(name.prefix { $0 != "-" && $0 != "." }))
                } else if directory.hasSuffix("/data"),
                    ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + name)) ?? []).contains(
                        where: { $0.hasSuffix(".parquet") })
                {
                    found.insert(name)
                }
            }
        }
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

/// A child process's complaints, in a temporary file rather than a pipe: a pipe that fills while
/// the parent reads the child's other output would stall both.
package final class ChildErrors {
    package let path = NSTemporaryDirectory() + "/labelforge-child-\(UUID().uuidString).err"
    package let handle: FileHandle

    package init() throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw LabelForgeError(.fileNotFound, "cannot create \(path).")
        }
        self.handle = handle
    }

    /// The last line the child wrote, or how it ended.
    package func reason(of process: Process) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        if let last = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last {
            return String(last)
        }
        return process.terminationReason == .uncaughtSignal
            ? "stopped by signal \(process.terminationStatus)" : "exit \(process.terminationStatus)"
    }

    deinit {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The reader's child process: its rows on a pipe, its complaints in a file.
final class ParquetChild {
    let process = Process()
    let errors: ChildErrors
    let lines: LineReader
    let name: String

    /// - Throws: `LabelForgeError.invalidDataset` when the reader cannot start.
    init(_ source: ParquetSource, name: String) throws {
        self.name = name
        errors = try ChildErrors()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: source.command[0])
        // The columns travel as one JSON list, so a name may hold any character.
        let columns = source.columns.map { ["--columns=" + CanonicalJSON.string(.array($0.map(JSONValue.string)))] }
        process.arguments = Array(source.command.dropFirst()) + ["read"] + (columns ?? []) + ["--"] + source.files
        process.standardOutput = output
        process.standardError = errors.handle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw LabelForgeError(
                .invalidDataset,
                "\(name): cannot start the Parquet reader (\(source.command.joined(separator: " "))): \(error). "
                    + "Run `make setup`, which installs it.")
        }
        let descriptor = dup(output.fileHandleForReading.fileDescriptor)
        try? output.fileHandleForReading.close()
        do {
            lines = try LineReader(fileDescriptor: descriptor, name: name)
        } catch {
            close(descriptor)
            process.terminate()
            process.waitUntilExit()
            throw error
        }
    }

    /// After the last row: the reader's own failure, if it failed.
    func finish() throws {
        process.waitUntilExit()
        guard process.terminationStatus != 0 || process.terminationReason == .uncaughtSignal else { return }
        let reason = errors.reason(of: process)
        // The reader names the file itself; a failure it did not foresee gets the dataset's name.
        throw LabelForgeError(
            .invalidDataset, reason.contains(".parquet") ? reason : "\(name): the Parquet reader failed: \(reason)")
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
