import Foundation
import LabelForgeCore
import Yams

/// A finished run directory read back: its manifest's run and summary lines, resolved config and
/// outputs. Used by `diff` (and later `inspect` and `replay`).
public struct RunArtifacts: Sendable {
    public var directory: String
    public var runLine: JSONValue
    public var summary: JSONValue?
    public var rowLines: [JSONValue]
    public var resolvedConfig: JSONValue

    /// Reads a run directory.
    /// - Throws: `LabelForgeError.fileNotFound` when it has no manifest.
    public static func load(_ directory: String) throws -> RunArtifacts {
        let manifestPath = directory + "/manifest.jsonl"
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw LabelForgeError(.fileNotFound, "\(directory) is not a run directory: it has no manifest.jsonl.")
        }
        var runLine: JSONValue?
        var summary: JSONValue?
        var rows: [JSONValue] = []
        let lines = try String(contentsOfFile: manifestPath, encoding: .utf8).split(separator: "\n")
        for (number, line) in lines.enumerated() {
            guard let value = try? JSONValue.parse(String(line)) else {
                // A torn last line (a run killed mid-write) is skipped; anything else is corruption.
                if number == lines.count - 1 { continue }
                throw LabelForgeError(.invalidJSON, "\(manifestPath):\(number + 1): not a JSON line.")
            }
            switch value["type"]?.stringValue {
            case "run": runLine = value
            case "summary": summary = value
            case "row": rows.append(value)
            default: break
            }
        }
        guard let runLine else {
            throw LabelForgeError(.invalidJSON, "\(manifestPath) has no run line; the run never started.")
        }
        var config: JSONValue = .null
        if let yaml = try? String(contentsOfFile: directory + "/config.resolved.yaml", encoding: .utf8),
            let node = try Yams.compose(yaml: yaml)
        {
            config = try ConfigReader(file: directory + "/config.resolved.yaml", node: node, path: "").json()
        }
        return RunArtifacts(directory: directory, runLine: runLine, summary: summary, rowLines: rows, resolvedConfig: config)
    }

    public var runID: String { runLine["run_id"]?.stringValue ?? (directory as NSString).lastPathComponent }

    /// Stage ids in pipeline order.
    public var stageIDs: [String] {
        runLine["stages"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
    }

    /// A stage's output records by row ID, in file order.
    public func outputs(stage: String) throws -> (order: [String], records: [String: [String: JSONValue]]) {
        let path = directory + "/outputs/\(stage).jsonl"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ([], [:]) }
        var order: [String] = []
        var records: [String: [String: JSONValue]] = [:]
        for line in text.split(separator: "\n") {
            guard let record = try JSONValue.parse(String(line)).objectValue, let id = record["row_id"]?.stringValue else {
                continue
            }
            order.append(id)
            records[id] = record
        }
        return (order, records)
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
