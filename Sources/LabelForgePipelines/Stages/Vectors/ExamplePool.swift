import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel

/// Labeled examples for a few-shot classifier (`examples:` of `classify` with `method: embedding`),
/// read from a JSONL file when the config is read: each line's text (`field`) and label
/// (`label_field`, one of the stage's labels). The file's SHA-256 is part of the resolved config, so
/// a changed pool is a changed config, and replay refuses a pool that is not the one the run used.
public struct ExamplePool: Sendable {
    public enum Vote: String, Sendable, CaseIterable {
        /// Each class's examples averaged into one vector; the nearest class wins.
        case prototype
        /// The `neighbours` nearest examples vote, each by `exp(similarity / temperature)`.
        case knn
    }

    public struct Example: Sendable, Equatable {
        public var text: String
        /// The stage's label name (the file's value matched without regard to case).
        public var label: String
    }

    public var path: String
    public var labelField = "label"
    /// The example's text field; by default the stage's own `field`.
    public var field: String
    /// At most this many examples per class, the first in file order; `nil` takes them all.
    public var perClass: Int? = nil
    public var vote = Vote.prototype
    public var neighbours = 10
    public var sha256: String
    /// The examples used, in file order.
    public var examples: [Example]
    /// Read back from a run's resolved config whose pool has since changed or gone: why no row can be
    /// labeled as the run labeled it (the run's `diff`, report and summary still read).
    public var stale: String? = nil

    static let keys = ["path", "label_field", "field", "k", "vote", "neighbours", "sha256"]

    /// Reads `examples:` and the file it names.
    /// - Throws: `LabelForgeError.invalidConfig` naming the file and line of an example without text
    ///   or with a label the stage does not have, or the key that is wrong.
    static func parse(_ node: ConfigReader, labels: [String], field: String, resolved: Bool = false) throws
        -> ExamplePool
    {
        try node.checkKeys(keys)
        let pathNode = try node.require("path")
        let path = try pathNode.filePath()
        let labelField = try node.child("label_field")?.string() ?? "label"
        let textField = try node.child("field")?.string() ?? field
        let perClass = try node.child("k").map { k in
            let value = try k.int()
            guard value >= 1 else { throw k.error("k (examples per class) must be at least 1.") }
            return value
        }
        let vote =
            try node.child("vote").map { Vote(rawValue: try $0.oneOf(Vote.allCases.map(\.rawValue)))! }
            ?? .prototype
        let neighboursNode = try node.child("neighbours")
        let neighbours = try neighboursNode?.int() ?? 10
        if neighbours < 1 { throw neighboursNode!.error("neighbours must be at least 1.") }
        if vote != .knn, let neighboursNode { throw neighboursNode.error("'neighbours' applies with vote: knn only.") }
        let pinned = try node.child("sha256")?.string()
        let sha256 = FileManager.default.fileExists(atPath: path) ? try ContentHash.hexOfFile(atPath: path) : nil
        if let pinned, pinned != sha256 {
            let message =
                sha256 == nil
                ? "the examples file \(path) the run used is gone: restore it (sha256 \(pinned))"
                : "the examples file \(path) changed since the run (sha256 \(pinned), now \(sha256!)): restore it, or "
                    + "run the config again instead of replaying"
            // A run read back (diff, report, ablation summary) needs no pool; its rows fail if run.
            guard resolved else { throw node.error(message + ".") }
            return ExamplePool(
                path: path, labelField: labelField, field: textField, perClass: perClass, vote: vote,
                neighbours: neighbours, sha256: pinned, examples: [], stale: message)
        }
        guard let sha256 else { throw pathNode.error("the examples file \(path) does not exist.") }
        var pool = ExamplePool(
            path: path, labelField: labelField, field: textField, perClass: perClass, vote: vote,
            neighbours: neighbours, sha256: sha256, examples: [])
        pool.examples = try pool.read(labels: labels)
        guard !pool.examples.isEmpty else { throw pathNode.error("the examples file \(path) has no examples.") }
        return pool
    }

    /// The file's examples, at most `perClass` per label.
    private func read(labels: [String]) throws -> [Example] {
        let byName = Dictionary(labels.map { ($0.lowercased(), $0) }) { first, _ in first }
        let reader = try LineReader(path: path)
        var examples: [Example] = []
        var taken: [String: Int] = [:]
        var number = 0
        while let line = reader.next() {
            number += 1
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            func failure(_ problem: String) -> LabelForgeError {
                LabelForgeError(.invalidConfig, "\(path) line \(number): \(problem)")
            }
            guard let record = (try? JSONValue.parse(line))?.objectValue else {
                throw failure(
                    "not a JSON object; each line of an examples file is one {\"\(field)\": …, \"\(labelField)\": …}.")
            }
            guard let text = record[field], !text.isNull, !text.textForm.isEmpty else {
                throw failure("no text in '\(field)' (set examples.field to the field that holds it).")
            }
            guard let value = record[labelField], !value.isNull else {
                throw failure("no label in '\(labelField)' (set examples.label_field to the field that holds it).")
            }
            guard let label = byName[value.textForm.lowercased()] else {
                throw failure(
                    "label '\(value.textForm)' is not one of the stage's labels (\(labels.joined(separator: ", "))).")
            }
            if let perClass, taken[label, default: 0] >= perClass { continue }
            taken[label, default: 0] += 1
            examples.append(Example(text: text.textForm, label: label))
        }
        return examples
    }

    var resolvedJSON: JSONValue {
        var json: [String: JSONValue] = [
            "path": .string(path), "label_field": .string(labelField), "field": .string(field),
            "vote": .string(vote.rawValue), "sha256": .string(sha256),
        ]
        if let perClass { json["k"] = .int(Int64(perClass)) }
        if vote == .knn { json["neighbours"] = .int(Int64(neighbours)) }
        return .object(json)
    }
}
