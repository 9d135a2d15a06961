import LabelForgeCore
import LabelForgeKernel

/// How a stage with `method: embedding` (`classify`, `tag`) compares texts: the row `field` whose
/// text it labels, `prefix` before that text and each example's, `label_prefix` before each label's
/// text, the softmax `temperature` of its confidence, and `truncate`.
public struct EmbeddingMatch: Sendable {
    public var field: String
    public var prefix = ""
    public var labelPrefix = ""
    public var temperature = 0.05
    public var truncate = Truncation.model

    static let keys = ["field", "prefix", "label_prefix", "temperature", Truncation.key]

    static func parse(_ node: ConfigReader, _ context: StageParseContext, type: String) throws -> EmbeddingMatch {
        guard let field = try node.child("field")?.string() else {
            throw node.error(
                "a \(type) stage with method: embedding needs 'field': the row field whose text it labels.")
        }
        var match = EmbeddingMatch(field: field)
        match.prefix = try node.child("prefix")?.string() ?? ""
        match.labelPrefix = try node.child("label_prefix")?.string() ?? ""
        let temperatureNode = try node.child("temperature")
        match.temperature = try temperatureNode?.double() ?? 0.05
        if match.temperature <= 0 { throw temperatureNode!.error("temperature must be above 0.") }
        match.truncate = try Truncation.parse(try node.child(Truncation.key), absent: context.absentTruncation)
        return match
    }

    /// Refuses the keys that apply with `method: embedding` only.
    static func refuse(in node: ConfigReader, keys: [String]) throws {
        for key in keys {
            if let extra = try node.child(key) { throw extra.error("'\(key)' applies with method: embedding only.") }
        }
    }

    /// The keys as `config.resolved.yaml` lists them.
    var resolvedJSON: [String: JSONValue] {
        var json: [String: JSONValue] = [
            "field": .string(field), "prefix": .string(prefix), "label_prefix": .string(labelPrefix),
            "temperature": .double(temperature),
        ]
        if let truncate = truncate.json { json[Truncation.key] = truncate }
        return json
    }
}
