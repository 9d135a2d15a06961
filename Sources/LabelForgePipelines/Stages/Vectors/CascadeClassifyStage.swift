import Foundation
import LabelForgeCore
import LabelForgeKernel

/// `classify` with `method: embedding` and a `fallback`: the embedding classifier answers every row
/// it is sure of (`confidence` at least `fallback.below`); the rest go to the chat model, as a
/// `method: llm` classifier with the same labels, sampling, seeds and template would ask it. Each row
/// records which route answered (`route`: `embedding` or `llm`) and keeps the embedding's answer
/// (`embedding_label`, `embedding_confidence`) beside the final one, so disagreements between routes
/// can be reviewed and each route scored (report.html, "Routes").
public struct CascadeClassifyStage: RowWiseStage {
    public let config: RunConfig.Stage
    let first: EmbeddingClassifyStage
    let fallback: ClassifyStage
    let below: Double
    public let version = 1
    public let outputFields = ["label", "confidence", "route", "scores", "embedding_label", "embedding_confidence"]
    public let outputTypes: [String: ColumnType] = [
        "label": .string, "confidence": .float64, "route": .string, "scores": .members(.float64),
        "embedding_label": .string, "embedding_confidence": .float64,
    ]

    public init(config: RunConfig.Stage, options: ClassifyOptions) {
        let settings = options.fallback!
        self.config = config
        first = EmbeddingClassifyStage(config: config, options: options)
        var chat = config
        chat.engine = settings.engine
        chat.template = settings.template ?? config.template
        chat.engineTask = "chat"
        var llm = ClassifyOptions(labels: options.labels)
        llm.method = "llm"
        fallback = ClassifyStage(config: chat, options: llm)
        below = settings.below
    }

    public var optionReferences: [String] { first.optionReferences }
    public var truncation: Truncation? { first.truncation }
    public var engineUses: [EngineUse] { first.engineUses + fallback.engineUses }
    public var templates: [String] { fallback.templates }
    public var goldPairs: [(output: String, gold: String)] { first.goldPairs }

    public func requiredRowFields(graph: StageGraph, pack: PromptPack) -> [String] {
        Array(
            Set(
                first.requiredRowFields(graph: graph, pack: pack) + fallback.requiredRowFields(graph: graph, pack: pack)
            )
        ).sorted()
    }

    public func use(ofField field: String) -> String { fallback.use(ofField: field) }

    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let answer = try await first.process(row, sample: sample, in: context)
        guard var output = answer.output, answer.failure == nil else { return answer }
        let label = output["label"] ?? .null
        let confidence = output["confidence"] ?? .null
        output["embedding_label"] = label
        output["embedding_confidence"] = confidence
        guard (confidence.doubleValue ?? 0) < below else {
            output["route"] = "embedding"
            return StageResult(output: output, truncated: answer.truncated)
        }
        let second = try await fallback.process(row, sample: sample, in: context)
        guard let chat = second.output, second.failure == nil else { return second }
        output["label"] = chat["label"] ?? .null
        output["confidence"] = chat["confidence"] ?? .null
        output["route"] = "llm"
        return StageResult(output: output, truncated: answer.truncated)
    }
}
