import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// One row as a stage sees it.
public struct RowContext: Sendable {
    public var rowID: String
    public var index: Int
    public var fields: [String: JSONValue]
    /// The row's images that loaded, by field.
    public var images: [String: ImageFile] = [:]
    /// The row's images that did not load, by field; a stage that needs one fails for this row.
    public var imageFailures: [String: ImageError] = [:]
    /// Outputs of the upstream stages this stage reads, by stage id; templates see them as
    /// `{{<stage>.<field>}}`.
    public var upstream: [String: [String: JSONValue]] = [:]

    /// A row field, or `<stage>.<field>` for an upstream output this stage reads.
    /// A path that goes on past an output or a field (`judge.scores.accuracy`) descends into it.
    public func value(at path: String) -> JSONValue? {
        if let dot = path.firstIndex(of: "."), let outputs = upstream[String(path[..<dot])] {
            return Self.descend(outputs, String(path[path.index(after: dot)...]))
        }
        return Self.descend(fields, path)
    }

    /// The value at `path` in `object`: the key itself when present, else the first dotted
    /// component and the rest inside it.
    package static func descend(_ object: [String: JSONValue], _ path: String) -> JSONValue? {
        if let value = object[path] { return value }
        guard let dot = path.firstIndex(of: "."), let inner = object[String(path[..<dot])]?.objectValue else {
            return nil
        }
        return descend(inner, String(path[path.index(after: dot)...]))
    }
}
