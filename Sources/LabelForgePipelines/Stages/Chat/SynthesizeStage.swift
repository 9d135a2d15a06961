import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `synthesize`: new rows from a seed row and a template (instruction/response pairs,
/// paraphrases, questions about a passage or an image), `n` samples per row.
///
/// Each sample has its own seed, request and cache entry; with `n > 1` the row fans out as
/// `generate` does. Free text by default (`text`, `finish_reason`); with `schema` (JSON Schema of
/// an object) the engine is constrained to it, the answer is validated on the client like `tag`'s,
/// and the object's properties become the output fields. Every output records its `lineage`: the
/// row it was made from, the stage and the sample index.
public struct SynthesizeStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: SynthesizeOptions
    public let constraint: OutputConstraint?
    public let version = 1
    public var outputFields: [String] { (options.schemaProperties ?? ["text", "finish_reason"]) + ["lineage"] }
    public var outputTypes: [String: ColumnType] {
        options.schemaProperties == nil ? ["text": .string, "finish_reason": .string] : [:]
    }
    public var templateVariables: [String: JSONValue] { [:] }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var samples: Int { options.samples }
    public var recordsLineage: Bool { true }

    public init(config: RunConfig.Stage, options: SynthesizeOptions) {
        self.config = config
        self.options = options
        constraint = options.schema.map { .jsonSchema(name: config.id, schema: $0) }
    }

    public func usesLogprobs(in dialect: EngineDialect) -> Bool { false }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        guard let schema = options.schema else { return Answers.freeText(response) }
        return validatedJSON(response, schema: schema).map { value in
            var fields: [String: JSONValue] = [:]
            for name in options.schemaProperties ?? [] { fields[name] = value[name] ?? .null }
            return fields
        }
    }
}

/// `synthesize`'s options: samples per row (`n`) and an optional JSON Schema for the answer.
public struct SynthesizeOptions: ParsedStageOptions {
    public var samples = 1
    public var schema: JSONValue? = nil

    package static let keys = ["n", "schema"]
    /// Names a schema property may not take: they are the output line's own.
    static let reserved = ["row_id", "error", "lineage", "parent_row_id", "sample_index", "reason"]

    /// The schema's property names, in the order the schema lists them.
    var schemaProperties: [String]? {
        schema.map { $0["properties"]?.objectValue?.keys.sorted() ?? [] }
    }

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> SynthesizeOptions {
        let samplesNode = try node.child("n")
        let samples = try samplesNode?.int() ?? 1
        if samples < 1 { throw samplesNode!.error("n must be at least 1.") }
        var options = SynthesizeOptions(samples: samples)
        if let schemaNode = try node.child("schema") {
            let schema = try schemaNode.json()
            guard schema["type"]?.stringValue == "object", let properties = schema["properties"]?.objectValue,
                !properties.isEmpty
            else {
                throw schemaNode.error(
                    "schema must be a JSON Schema of an object with properties (they become the output fields), "
                        + "e.g. {type: object, properties: {question: {type: string}}, required: [question]}.")
            }
            if let clash = properties.keys.sorted().first(where: { reserved.contains($0) }) {
                throw schemaNode.error("schema property '\(clash)' names a field every output line has; rename it.")
            }
            options.schema = schema
        }
        return options
    }

    public var resolvedJSON: [String: JSONValue] { ["n": .int(Int64(samples)), "schema": schema ?? .null] }
}
