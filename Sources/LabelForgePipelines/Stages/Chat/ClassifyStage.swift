import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `classify`: exactly one label from a fixed set, with a confidence when the engine gives logprobs.
///
/// The constraint is the tightest each dialect supports: a GBNF grammar with one alternative per
/// label on llama.cpp, `structured_outputs.choice` on vLLM, a regex on SGLang, a JSON schema
/// elsewhere. `confidence` is the probability of the chosen label under the constrained
/// distribution: at each generated position, the chosen token's probability renormalized over the
/// reported alternatives that can still lead to an allowed label, multiplied along the label.
/// It is `null` when the engine returns no logprobs or the dialect wraps labels in JSON.
public struct ClassifyStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: ClassifyOptions
    public let templateVariables: [String: JSONValue]
    public let constraint: OutputConstraint?
    public var promptExamples: PromptExamples? { options.promptExamples }

    /// Computes once what every request of the stage shares.
    public init(config: RunConfig.Stage, options: ClassifyOptions) {
        self.config = config
        self.options = options
        templateVariables = Self.templateVariables(options)
        constraint = .choice(options.labels.map(\.name))
    }
    public let version = 1
    public let outputFields = ["label", "confidence"]
    public let outputTypes: [String: ColumnType] = ["label": .string, "confidence": .float64]

    static func templateVariables(_ options: ClassifyOptions) -> [String: JSONValue] {
        [
            "labels": .array(
                options.labels.map { ["name": .string($0.name), "description": .string($0.description ?? "")] }),
            "label_names": .string(options.labels.map(\.name).joined(separator: ", ")),
        ]
    }

    public var goldPairs: [(output: String, gold: String)] {
        config.goldField.map { [("label", $0)] } ?? []
    }

    /// The confidence comes from logprobs only where labels are emitted as bare tokens.
    public func usesLogprobs(in dialect: EngineDialect) -> Bool { dialect.emitsBareChoices }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        let label = dialect.choiceText(fromContent: response.content)
        guard options.labels.contains(where: { $0.name == label }) else {
            return .failure(
                StageFailure(
                    errorClass: "schema_violation",
                    message: "the engine answered \(Answers.quoted(response.content)), which is not one of the labels "
                        + options.labels.map(\.name).joined(separator: ", ")))
        }
        let confidence =
            dialect.emitsBareChoices
            ? Answers.confidence(of: label, among: options.labels.map(\.name), logprobs: response.logprobs) : nil
        return .success(["label": .string(label), "confidence": confidence.map(JSONValue.double) ?? .null])
    }

}

/// `classify`'s options: the labels to choose from, and how: `method: llm` (the default) asks a
/// chat model through the stage's template; `method: embedding` picks the label whose text is
/// nearest the row's `field` (`EmbeddingClassifyStage`), with `prefix` before the row's text,
/// `label_prefix` before each label's, the softmax `temperature` of its confidence, and `truncate`.
public struct ClassifyOptions: ParsedStageOptions {
    public var labels: [RunConfig.Label]
    public var method = "llm"
    /// `method: embedding`: the row field (or `stage.field` output) whose text is classified.
    public var field: String? = nil
    public var prefix = ""
    public var labelPrefix = ""
    public var temperature = 0.05
    public var truncate = Truncation.model
    /// `method: embedding` with labeled examples: few-shot, by class prototypes or nearest neighbours.
    public var examples: ExamplePool? = nil
    /// `method: llm`: worked examples chosen per row for the prompt.
    public var promptExamples: PromptExamples? = nil
    /// `method: embedding` with a chat model for the rows it is unsure of (`CascadeClassifyStage`).
    public var fallback: Fallback? = nil

    /// Where rows whose embedding confidence is below `below` go: a chat engine, through `template`
    /// (default: the stage's own).
    public struct Fallback: Sendable {
        public var below: Double
        public var engine: String
        public var template: String?

        static func parse(_ node: ConfigReader) throws -> Fallback {
            try node.checkKeys(["below", "engine", "template"])
            let belowNode = try node.require("below")
            let below = try belowNode.double()
            guard below > 0 && below <= 1 else {
                throw belowNode.error("below is a confidence threshold in (0, 1]: rows under it go to the fallback.")
            }
            guard let engine = try node.child("engine")?.string() else {
                throw node.error("a fallback needs 'engine': the chat engine that labels the rows below the threshold.")
            }
            return Fallback(below: below, engine: engine, template: try node.child("template")?.string())
        }

        var json: JSONValue {
            ["below": .double(below), "engine": .string(engine), "template": template.map(JSONValue.string) ?? .null]
        }
    }

    /// The keys only `method: embedding` takes.
    static let embeddingKeys = EmbeddingMatch.keys + ["examples", "fallback"]
    package static let keys = ["labels", "method"] + embeddingKeys

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> ClassifyOptions {
        var labels: [RunConfig.Label] = []
        for item in try node.require("labels").items() {
            if case .scalar = item.node {
                labels.append(RunConfig.Label(name: try item.string(), description: nil))
            } else {
                try item.checkKeys(["name", "description"])
                labels.append(
                    RunConfig.Label(
                        name: try item.require("name").string(), description: try item.child("description")?.string()))
            }
        }
        guard labels.count >= 2 else { throw node.error("a classify stage needs at least two labels.") }
        if let repeated = labels.indices.first(where: { i in labels[..<i].contains { $0.name == labels[i].name } }) {
            throw node.error("label '\(labels[repeated].name)' is listed twice; each label once.")
        }
        var options = ClassifyOptions(labels: labels)
        options.method = try node.child("method")?.oneOf(["llm", "embedding"]) ?? "llm"
        guard options.method == "embedding" else {
            options.promptExamples = try node.child("examples").map {
                try PromptExamples.parse($0, resolved: context.resolved)
            }
            try EmbeddingMatch.refuse(in: node, keys: embeddingKeys.filter { $0 != "examples" })
            return options
        }
        let match = try EmbeddingMatch.parse(node, context, type: "classify")
        let field = match.field
        options.field = field
        options.prefix = match.prefix
        options.labelPrefix = match.labelPrefix
        options.temperature = match.temperature
        options.truncate = match.truncate
        options.examples = try node.child("examples").map {
            try ExamplePool.parse($0, labels: labels.map(\.name), field: field, resolved: context.resolved)
        }
        options.fallback = try node.child("fallback").map(Fallback.parse)
        return options
    }

    /// An embedding classifier sends embeddings requests.
    public var engineTask: String? { method == "embedding" ? "embed" : nil }

    /// A fallback's chat engine.
    public var extraEngines: [(name: String, task: String)] {
        (fallback.map { [($0.engine, "chat")] } ?? []) + (promptExamples?.engine.map { [($0, "embed")] } ?? [])
    }

    public var resolvedJSON: [String: JSONValue] {
        var json: [String: JSONValue] = [
            "labels": .array(labels.map { ["name": .string($0.name), "description": .optional($0.description)] })
        ]
        if let promptExamples { json["examples"] = promptExamples.resolvedJSON }
        // Only for the embedding method, so an LLM classifier's resolved config (and plan hash) stays as it was.
        if method == "embedding" {
            json["method"] = .string(method)
            let match = EmbeddingMatch(
                field: field ?? "", prefix: prefix, labelPrefix: labelPrefix, temperature: temperature,
                truncate: truncate)
            json.merge(match.resolvedJSON) { _, new in new }
            if let examples { json["examples"] = examples.resolvedJSON }
            if let fallback { json["fallback"] = fallback.json }
        }
        return json
    }
}
