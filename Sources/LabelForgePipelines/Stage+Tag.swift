import LabelForgeCore
import LabelForgeLLM

/// `tag`: named, typed attributes returned as one JSON object.
///
/// The JSON schema is derived from the attribute definitions and sent as `response_format`
/// json_schema; the response is validated against the same schema on the client, because
/// servers are known to ignore schemas silently.
public struct TagStage: RowStage {
    public let config: RunConfig.Stage
    public let version = 1

    public var outputFields: [String] { config.attributes.map(\.name) }

    public var templateVariables: [String: JSONValue] {
        [
            "attributes": .array(
                config.attributes.map { a in
                    var attribute: [String: JSONValue] = [
                        "name": .string(a.name), "type": .string(a.type), "description": .string(a.description ?? ""),
                    ]
                    // Absent rather than empty, so `{{#values}}…{{/values}}` renders only when there are values.
                    if !a.values.isEmpty { attribute["values"] = .string(a.values.joined(separator: ", ")) }
                    return .object(attribute)
                })
        ]
    }

    public var schema: JSONValue {
        var properties: [String: JSONValue] = [:]
        for attribute in config.attributes {
            let values = JSONValue.array(attribute.values.map(JSONValue.string))
            switch attribute.type {
            case "enum": properties[attribute.name] = ["type": "string", "enum": values]
            case "boolean": properties[attribute.name] = ["type": "boolean"]
            case "list":
                // Bounded, so a small model cannot repeat one value until max_tokens. Not
                // `uniqueItems`: vLLM counts it among the features xgrammar lacks and leaves
                // xgrammar for it; repeats are collapsed on the client instead.
                properties[attribute.name] = [
                    "type": "array", "items": ["type": "string", "enum": values],
                    "maxItems": .int(Int64(attribute.values.count)),
                ]
            default:
                // Bounded, so a free-text attribute cannot run on until max_tokens.
                properties[attribute.name] = ["type": "string", "maxLength": .int(Int64(Self.maxStringLength))]
            }
        }
        return [
            "type": "object", "properties": .object(properties),
            "required": .array(config.attributes.map { .string($0.name) }), "additionalProperties": false,
        ]
    }

    public var constraint: OutputConstraint? { .jsonSchema(name: config.id, schema: schema) }

    /// The longest value a `string` attribute may have, in characters.
    static let maxStringLength = 200

    public var goldPairs: [(output: String, gold: String)] {
        config.attributes.compactMap { a in a.goldField.map { (a.name, $0) } }
    }

    /// A `list` attribute's repeated values are collapsed to their first occurrence before the
    /// answer is validated (a server may not enforce `maxItems`).
    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        validatedJSON(response, schema: schema) { value in
            guard var fields = value.objectValue else { return value }
            for attribute in config.attributes where attribute.type == "list" {
                guard let items = fields[attribute.name]?.arrayValue else { continue }
                var seen: Set<JSONValue> = []
                fields[attribute.name] = .array(items.filter { seen.insert($0).inserted })
            }
            return .object(fields)
        }.map { $0.objectValue ?? [:] }
    }
}
