import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel
import Yams

/// A run directory read back: its manifest's run and summary records and its resolved config.
/// Row records and outputs are streamed on demand (`manifest()`, `outputs(stage:)`), never loaded
/// whole, so `diff`, `inspect` and `replay` stay small on large runs.
public struct RunArtifacts: Sendable {
    public var directory: String
    public var run: RunRecord
    /// The manifest's last record when it is a summary; `nil` for a run still under way or killed.
    public var summary: SummaryRecord?
    public var resolvedConfig: JSONValue

    public var manifestPath: String { directory + "/manifest.jsonl" }

    /// Reads a run directory's first and last manifest records and its resolved config.
    /// - Throws: `LabelForgeError.fileNotFound` when it has no manifest, `invalidJSON` when the
    ///   manifest does not start with a run record.
    public static func load(_ directory: String) throws -> RunArtifacts {
        let directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let manifestPath = directory + "/manifest.jsonl"
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw LabelForgeError(.fileNotFound, "\(directory) is not a run directory: it has no manifest.jsonl.")
        }
        guard let ends = ManifestReader.ends(of: manifestPath), case .run(let run) = ends.first else {
            // Read it strictly to say which line is wrong; an empty manifest means the run never started.
            _ = try ManifestReader(path: manifestPath).read()
            throw LabelForgeError(.invalidJSON, "\(manifestPath) has no run record; the run never started.")
        }
        var summary: SummaryRecord?
        if case .summary(let last) = ends.last { summary = last }
        var config: JSONValue = .null
        if let yaml = try? String(contentsOfFile: directory + "/config.resolved.yaml", encoding: .utf8),
            let node = try Yams.compose(yaml: yaml)
        {
            config = try ConfigReader(file: directory + "/config.resolved.yaml", node: node, path: "").json()
        }
        return RunArtifacts(directory: directory, run: run, summary: summary, resolvedConfig: config)
    }

    public var runID: String { run.runID }

    /// Stage ids in pipeline order.
    public var stageIDs: [String] { run.stages.map(\.id) }

    /// The manifest's records, streamed.
    public func manifest() throws -> ManifestReader {
        try ManifestReader(path: manifestPath)
    }

    /// An `embed` stage's vectors (`outputs/<stage>.npy`), read a row at a time; `nil` when the
    /// stage wrote none.
    public func vectors(stage: String) throws -> NpyReader? {
        let path = directory + "/outputs/\(stage).npy"
        return FileManager.default.fileExists(atPath: path) ? try NpyReader(path: path) : nil
    }

    /// A stage's output file, streamed one record at a time in file order (empty when the stage
    /// wrote none).
    public func outputs(stage: String) throws -> OutputReader {
        try OutputReader(path: directory + "/outputs/\(stage).jsonl")
    }
}

/// Reads an output file (`outputs/<stage>.jsonl`) one record at a time.
public final class OutputReader {
    private let lines: LineReader?
    public let path: String

    /// A missing file reads as empty.
    public init(path: String) throws {
        self.path = path
        lines = FileManager.default.fileExists(atPath: path) ? try LineReader(path: path) : nil
    }

    /// The next record with its row ID and its line as written; `nil` at the end.
    /// - Throws: `LabelForgeError.invalidJSON` naming `path:line` for a line that is not a record.
    public func next() throws -> (rowID: String, record: [String: JSONValue], line: String)? {
        guard let lines else { return nil }
        while let line = lines.next() {
            if line.isEmpty { continue }
            return try parse(line, number: lines.lineNumber)
        }
        return nil
    }

    /// The record of one row, reading on until it is found; lines of other rows are not parsed.
    public func record(of rowID: String) throws -> [String: JSONValue]? {
        guard let lines else { return nil }
        let needle = "\"row_id\":" + CanonicalJSON.string(.string(rowID))
        while let line = lines.next() {
            guard line.contains(needle) else { continue }
            let parsed = try parse(line, number: lines.lineNumber)
            if parsed.rowID == rowID { return parsed.record }
        }
        return nil
    }

    private func parse(_ line: String, number: Int) throws -> (rowID: String, record: [String: JSONValue], line: String)
    {
        guard let record = try? JSONValue.parse(line).objectValue, let id = record["row_id"]?.stringValue else {
            throw LabelForgeError(
                .invalidJSON, "\(path):\(number): not an output record (a JSON object with a row_id).")
        }
        return (id, record, line)
    }
}

extension JSONValue {
    /// Leaf values by key path (`stages[0].sampling.temperature`), each as canonical JSON.
    public func flattened(prefix: String = "") -> [String: String] {
        leaves(prefix: prefix).mapValues(CanonicalJSON.string)
    }

    /// Leaf values by key path. Objects are always opened; arrays only when `intoArrays` (otherwise
    /// a list is one value). An empty object or array is a leaf of its own.
    public func leaves(prefix: String = "", intoArrays: Bool = true) -> [String: JSONValue] {
        func path(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }
        switch self {
        case .object(let members) where !members.isEmpty || prefix.isEmpty:
            var out: [String: JSONValue] = [:]
            for (key, value) in members {
                out.merge(value.leaves(prefix: path(key), intoArrays: intoArrays)) { a, _ in a }
            }
            return out
        case .array(let items) where intoArrays && (!items.isEmpty || prefix.isEmpty):
            var out: [String: JSONValue] = [:]
            for (i, item) in items.enumerated() {
                out.merge(item.leaves(prefix: "\(prefix)[\(i)]", intoArrays: intoArrays)) { a, _ in a }
            }
            return out
        default:
            return [prefix: self]
        }
    }
}
