import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import LabelForgeVectors

/// `classify` with `method: embedding`: the label whose text is nearest the row's text, by cosine
/// similarity of their vectors from an engine with `task: embed` (zero-shot, as sentence-transformers
/// users do it). No prompt pack and no chat model are needed.
///
/// A label's text is `label_prefix` plus its description, or its name where it has none; the row's
/// text is `prefix` plus its `field`. Every text is its own cached embeddings request (a label's
/// vector is computed once and served from the cache to every other row; each row lists the keys it
/// used). `confidence` is the softmax of the similarities divided by `temperature`; `scores` holds
/// each label's similarity. Ties go to the label listed first.
public struct EmbeddingClassifyStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: ClassifyOptions
    public let version = 1
    public let outputFields = ["label", "confidence", "scores"]

    public init(config: RunConfig.Stage, options: ClassifyOptions) {
        self.config = config
        self.options = options
    }

    public var optionReferences: [String] { options.field.map { [$0] } ?? [] }
    public var truncation: Truncation? { options.truncate }
    public var engineUses: [EngineUse] { [EngineUse(engine: config.engine, task: .embed, batchSize: 32)] }
    public var goldPairs: [(output: String, gold: String)] { config.goldField.map { [("label", $0)] } ?? [] }

    /// The texts each label is known by, in label order.
    var labelTexts: [String] { options.labels.map { options.labelPrefix + ($0.description ?? $0.name) } }

    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let field = options.field ?? ""
        guard let value = row.value(at: field), !value.isNull else {
            return .failed(
                StageFailure(errorClass: "missing_field", message: "the row has no text in '\(field)' to classify"))
        }
        let engine = try context.endpoint(.embed)
        let limit = context.truncationLimit(.embed)
        let requests = ([options.prefix + value.textForm] + labelTexts).map {
            PreparedRequest(.embedding(text: $0, modelID: engine.modelID, truncate: limit), on: engine)
        }
        do {
            let answers = try await context.sendAll(requests, on: engine).map { try $0.singleVector() }
            context.countTokens(in: answers[0].promptTokens)
            let similarities = answers.dropFirst().map { VectorSearch.cosine(answers[0].vector, $0.vector) }
            return StageResult(output: output(similarities: similarities), truncated: answers[0].truncated ? 1 : 0)
        } catch {
            return .failed(StageFailure(error))
        }
    }

    /// `label`, `confidence` and `scores` from the row's similarity to each label.
    func output(similarities: [Double]) -> [String: JSONValue] {
        // The first of equal maxima: `max(by:)` keeps the element it holds unless another is greater.
        let best = similarities.indices.max { similarities[$0] < similarities[$1] }!
        let top = similarities[best]
        let weights = similarities.map { exp(($0 - top) / options.temperature) }
        let confidence = weights[best] / weights.reduce(0, +)
        return [
            "label": .string(options.labels[best].name), "confidence": .double(Answers.rounded(confidence)),
            "scores": .object(
                Dictionary(
                    uniqueKeysWithValues: zip(
                        options.labels.map(\.name), similarities.map { .double(Answers.rounded($0)) }))),
        ]
    }

}
