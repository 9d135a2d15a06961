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
    public var outputTypes: [String: ColumnType] {
        Dictionary(options.attributes.map { ($0.name, $0.columnType) }) { first, _ in first }
    }

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

/// `tag`'s options: the attributes to fill in, and how: `method: llm` (the default) asks a chat
/// model for all of them at once; `method: embedding` labels each enum and boolean attribute as an
/// embedding classifier would (`EmbeddingTagStage`).
public struct TagOptions: ParsedStageOptions {
    public var attributes: [RunConfig.Attribute]
    /// `method: llm`: worked examples chosen per row for the prompt.
    public var examples: PromptExamples? = nil
    public var method = "llm"
    /// `method: embedding`: how texts are compared, and each attribute's classifier.
    public var embedding: EmbeddingTagOptions? = nil

    package static let keys = ["attributes", "examples", "method"] + EmbeddingMatch.keys
    static let attributeTypes = ["enum", "boolean", "string", "list"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> TagOptions {
        var attributes: [RunConfig.Attribute] = []
        for item in try node.require("attributes").items() {
            try item.checkKeys(["name", "type", "values", "description", "gold_field"])
            let type = try item.require("type").oneOf(attributeTypes)
            var values: [String] = []
            var valueDescriptions: [String: String] = [:]
            for value in try item.child("values")?.items() ?? [] {
                if case .scalar = value.node {
                    values.append(try value.string())
                    continue
                }
                try value.checkKeys(["name", "description"])
                let name = try value.require("name").string()
                values.append(name)
                valueDescriptions[name] = try value.child("description")?.string()
            }
            if (type == "enum" || type == "list") && values.isEmpty {
                throw item.error("an attribute of type '\(type)' needs 'values'.")
            }
            if let repeated = values.indices.first(where: { values[..<$0].contains(values[$0]) }) {
                throw item.error("value '\(values[repeated])' is listed twice; each value once.")
            }
            var attribute = RunConfig.Attribute(
                name: try item.require("name").string(), type: type, values: values,
                description: try item.child("description")?.string(),
                goldField: try item.child("gold_field")?.string())
            attribute.valueDescriptions = valueDescriptions
            attributes.append(attribute)
        }
        guard !attributes.isEmpty else { throw node.error("a tag stage needs at least one attribute.") }
        let method = try node.child("method")?.oneOf(["llm", "embedding"]) ?? "llm"
        guard method == "embedding" else {
            try EmbeddingMatch.refuse(in: node, keys: EmbeddingMatch.keys)
            if let described = attributes.first(where: { !$0.valueDescriptions.isEmpty }) {
                throw node.error(
                    "attribute '\(described.name)' describes its values, which only method: embedding reads (it "
                        + "compares rows with the descriptions). With method: llm, say what the values mean in the "
                        + "attribute's description or the template.")
            }
            return TagOptions(
                attributes: attributes,
                examples: try node.child("examples").map { try PromptExamples.parse($0, resolved: context.resolved) })
        }
        return TagOptions(
            attributes: attributes, method: method,
            embedding: try EmbeddingTagOptions.parse(node, attributes: attributes, context))
    }

    /// An embedding tagger sends embeddings requests.
    public var engineTask: String? { method == "embedding" ? "embed" : nil }

    /// The examples' embedding engine.
    public var extraEngines: [(name: String, task: String)] { examples?.engine.map { [($0, "embed")] } ?? [] }

    public var resolvedJSON: [String: JSONValue] {
        var json: [String: JSONValue] = [
            "attributes": .array(
                attributes.map {
                    attribute in
                    // A value is its name unless it has a description, so the resolved config (and plan
                    // hash) of a stage without stays as it was.
                    let values = attribute.values.map { value in
                        attribute.valueDescriptions[value].map { ["name": .string(value), "description": .string($0)] }
                            ?? JSONValue.string(value)
                    }
                    return [
                        "name": .string(attribute.name), "type": .string(attribute.type), "values": .array(values),
                        "description": .optional(attribute.description), "gold_field": .optional(attribute.goldField),
                    ]
                })
        ]
        // Only when given, so the resolved config (and plan hash) of a stage without stays as it was.
        if let examples { json["examples"] = examples.resolvedJSON }
        if let embedding {
            json["method"] = .string(method)
            json.merge(embedding.resolvedJSON) { _, new in new }
        }
        return json
    }
}

extension RunConfig.Attribute {
    /// The attribute's type in the Parquet views: a boolean as `bool`, a list as a list of strings,
    /// any other as a string.
    var columnType: ColumnType {
        switch type {
        case "boolean": .bool
        case "list": .list(.string)
        default: .string
        }
    }
}
