import Foundation
import LabelForgeCore
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
    public var examples: [Example] {
        didSet { byText = Dictionary(grouping: examples.indices) { examples[$0].text } }
    }
    /// Each example text's positions in `examples`, ascending: what a row leaves out.
    private var byText: [String: [Int]] = [:]
    /// Read back from a run's resolved config whose pool has since changed or gone: why no row can be
    /// labeled as the run labeled it (the run's `diff`, report and summary still read).
    public var stale: String? = nil

    /// The positions of the examples whose text is `text` (leave-one-out), ascending.
    func indices(ofText text: String) -> [Int] { byText[text] ?? [] }

    static let keys = ["path", "label_field", "field", "k", "vote", "neighbours", "sha256"]

    /// Reads `examples:` and the file it names.
    /// - Throws: `LabelForgeError.invalidConfig` naming the file and line of an example without text
    ///   or with a label the stage does not have, or the key that is wrong.
    /// - Parameters:
    ///   - attribute: the tag attribute the pool labels and the field each line's label is in (its
    ///     `gold_field`, else its name); then `label_field` is not a key.
    ///   - opened: the file and its lines, when a stage reads one pool for several attributes.
    static func parse(
        _ node: ConfigReader, labels: [String], field: String, resolved: Bool = false,
        attribute: (name: String, labelField: String)? = nil,
        opened: (file: PoolFile, records: [(line: Int, record: [String: JSONValue])])? = nil
    ) throws -> ExamplePool {
        try node.checkKeys(attribute == nil ? keys : keys.filter { $0 != "label_field" })
        let file = try opened?.file ?? PoolFile.open(node, resolved: resolved)
        let labelField = try attribute?.labelField ?? node.child("label_field")?.string() ?? "label"
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
        var pool = ExamplePool(
            path: file.path, labelField: labelField, field: textField, perClass: perClass, vote: vote,
            neighbours: neighbours, sha256: file.sha256, examples: [], stale: file.stale)
        pool.examples = try pool.read(
            opened?.records ?? file.records(field: textField), labels: labels, attribute: attribute?.name)
        return pool
    }

    /// The pool's examples with their labels, at most `perClass` per label.
    private func read(_ records: [(line: Int, record: [String: JSONValue])], labels: [String], attribute: String?)
        throws -> [Example]
    {
        let byName = Dictionary(labels.map { ($0.lowercased(), $0) }) { first, _ in first }
        var examples: [Example] = []
        var taken: [String: Int] = [:]
        for (number, record) in records {
            guard let value = record[labelField], !value.isNull else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(path) line \(number): no label in '\(labelField)' "
                        + (attribute.map {
                            "(attribute '\($0)' reads its label from the pool's field named as its gold_field, else as "
                                + "the attribute)."
                        } ?? "(set examples.label_field to the field that holds it)."))
            }
            guard let label = byName[value.textForm.lowercased()] else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(path) line \(number): label '\(value.textForm)' is not one of "
                        + (attribute.map { "attribute '\($0)''s values" } ?? "the stage's labels")
                        + " (\(labels.joined(separator: ", "))).")
            }
            if let perClass, taken[label, default: 0] >= perClass { continue }
            taken[label, default: 0] += 1
            examples.append(Example(text: record[field]!.textForm, label: label))
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
