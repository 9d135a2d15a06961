import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `rerank` with `method: judge`, for engines without `/v1/rerank`: the stage's template asks a chat
/// model whether each document is relevant to the query (`{{query}}`, `{{document}}`), constrained to
/// `yes` or `no`; a document's score is P(yes) from the constrained distribution of the answer
/// (as `classify`'s confidence), 1 or 0 when the engine returns no logprobs. Requests carry no seed
/// (decoding is greedy), so each (query, document) prompt is one cache entry whatever row asks.
public struct RelevanceJudgeStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: RerankOptions
    public let version = 1
    public let outputFields = ["scores", "order"]
    public let outputTypes: [String: ColumnType] = ["scores": .list(.float64), "order": .list(.int64)]
    public var templateVariables: [String: JSONValue] { [:] }
    public var constraint: OutputConstraint? { .choice(["yes", "no"]) }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var seeded: Bool { false }
    public var callVariableNames: Set<String> { ["query", "document"] }
    public var optionReferences: [String] { [options.query, options.documents] }

    public func calls(for row: RowContext) -> [StageCall] {
        guard let (query, documents) = options.inputs(of: row) else { return [] }
        return documents.map {
            StageCall(seedSuffix: "", variables: ["query": .string(query), "document": .string($0)])
        }
    }

    public func inputFailure(in row: RowContext) -> StageFailure? {
        options.inputs(of: row) == nil
            ? StageFailure(
                errorClass: "missing_field",
                message: "the row has no '\(options.query)' or '\(options.documents)' to rerank")
            : imageFailure(in: row)
    }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        let answer = dialect.choiceText(fromContent: response.content)
        guard answer == "yes" || answer == "no" else {
            return .failure(
                StageFailure(
                    errorClass: "schema_violation",
                    message: "the engine answered \(Answers.quoted(response.content)), not yes or no"))
        }
        let confidence =
            dialect.emitsBareChoices
            ? Answers.confidence(of: answer, among: ["yes", "no"], logprobs: response.logprobs) : nil
        let probability = confidence ?? 1
        return .success(["score": .double(answer == "yes" ? probability : 1 - probability)])
    }

    public func usesLogprobs(in dialect: EngineDialect) -> Bool { dialect.emitsBareChoices }

    public func merge(_ calls: [[String: JSONValue]]) -> [String: JSONValue] {
        Answers.rerankFields(scores: calls.map { $0["score"]?.doubleValue ?? 0 })
    }
}
