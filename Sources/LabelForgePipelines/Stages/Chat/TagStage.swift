import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `tag`: named, typed attributes returned as one JSON object.
///
/// The JSON schema is derived from the attribute definitions and sent as `response_format`
/// json_schema; the response is validated against the same schema on the client, because
/// servers are known to ignore schemas silently.
public struct TagStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: TagOptions
    public let templateVariables: [String: JSONValue]
    public let schema: JSONValue
    public let constraint: OutputConstraint?

    public var promptExamples: PromptExamples? { options.examples }

    /// Computes once what every request of the stage shares.
    public init(config: RunConfig.Stage, options: TagOptions) {
        self.config = config
        self.options = options
        templateVariables = Self.templateVariables(options)
        schema = Self.schema(options)
        constraint = .jsonSchema(name: config.id, schema: schema)
    }
    public let version = 1

    public var outputFields: [String] { options.attributes.map(\.name) }

    static func templateVariables(_ options: TagOptions) -> [String: JSONValue] {
        [
            "attributes": .array(
                options.attributes.map { a in
                    var attribute: [String: JSONValue] = [
                        "name": .string(a.name), "type": .string(a.type), "description": .string(a.description ?? ""),
                    ]
                    // Absent rather than empty, so `{{#values}}…{{/values}}` renders only when there are values.
                    if !a.values.isEmpty { attribute["values"] = .string(a.values.joined(separator: ", ")) }
                    return .object(attribute)
                })
        ]
    }

    static func schema(_ options: TagOptions) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for attribute in options.attributes {
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
            "required": .array(options.attributes.map { .string($0.name) }), "additionalProperties": false,
        ]
    }

    /// The longest value a `string` attribute may have, in characters.
    static let maxStringLength = 200

    public var goldPairs: [(output: String, gold: String)] {
        options.attributes.compactMap { a in a.goldField.map { (a.name, $0) } }
    }

    /// A `list` attribute's repeated values are collapsed to their first occurrence before the
    /// answer is validated (a server may not enforce `maxItems`).
    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        validatedJSON(response, schema: schema) { value in
            guard var fields = value.objectValue else { return value }
            for attribute in options.attributes where attribute.type == "list" {
                guard let items = fields[attribute.name]?.arrayValue else { continue }
                var seen: Set<JSONValue> = []
                fields[attribute.name] = .array(items.filter { seen.insert($0).inserted })
            }
            return .object(fields)
        }.map { $0.objectValue ?? [:] }
    }
}

/// `tag`'s options: the attributes to fill in.
public struct TagOptions: ParsedStageOptions {
    public var attributes: [RunConfig.Attribute]
    /// Worked examples chosen per row for the prompt.
    public var examples: PromptExamples? = nil

    package static let keys = ["attributes", "examples"]
    static let attributeTypes = ["enum", "boolean", "string", "list"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> TagOptions {
        var attributes: [RunConfig.Attribute] = []
        for item in try node.require("attributes").items() {
            try item.checkKeys(["name", "type", "values", "description", "gold_field"])
            let type = try item.require("type").oneOf(attributeTypes)
            let values = try item.child("values")?.stringList() ?? []
            if (type == "enum" || type == "list") && values.isEmpty {
                throw item.error("an attribute of type '\(type)' needs 'values'.")
            }
            attributes.append(
                RunConfig.Attribute(
                    name: try item.require("name").string(), type: type, values: values,
                    description: try item.child("description")?.string(),
                    goldField: try item.child("gold_field")?.string()))
        }
        guard !attributes.isEmpty else { throw node.error("a tag stage needs at least one attribute.") }
        return TagOptions(
            attributes: attributes,
            examples: try node.child("examples").map { try PromptExamples.parse($0, resolved: context.resolved) })
    }

    /// The examples' embedding engine.
    public var extraEngines: [(name: String, task: String)] { examples?.engine.map { [($0, "embed")] } ?? [] }

    public var resolvedJSON: [String: JSONValue] {
        var json: [String: JSONValue] = [
            "attributes": .array(
                attributes.map {
                    [
                        "name": .string($0.name), "type": .string($0.type),
                        "values": .array($0.values.map(JSONValue.string)), "description": .optional($0.description),
                        "gold_field": .optional($0.goldField),
                    ]
                })
        ]
        // Only when given, so the resolved config (and plan hash) of a stage without stays as it was.
        if let examples { json["examples"] = examples.resolvedJSON }
        return json
    }
}
