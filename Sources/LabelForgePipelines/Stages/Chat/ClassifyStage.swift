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

    /// Computes once what every request of the stage shares.
    public init(config: RunConfig.Stage, options: ClassifyOptions) {
        self.config = config
        self.options = options
        templateVariables = Self.templateVariables(options)
        constraint = .choice(options.labels.map(\.name))
    }
    public let version = 1
    public let outputFields = ["label", "confidence"]

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

/// `classify`'s options: the labels to choose from.
public struct ClassifyOptions: ParsedStageOptions {
    public var labels: [RunConfig.Label]

    package static let keys = ["labels"]

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
        return ClassifyOptions(labels: labels)
    }

    public var resolvedJSON: [String: JSONValue] {
        ["labels": .array(labels.map { ["name": .string($0.name), "description": .optional($0.description)] })]
    }
}
