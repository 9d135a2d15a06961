import Foundation
import LabelForgeCore
import LabelForgeKernel

/// Every stage type, by the name configs give as `type`. Adding a stage type is one entry here
/// plus its options and stage (docs/architecture.md).
enum StageRegistry {
    static let types: [StageType] = [
        StageType("caption", options: CaptionOptions.self, sampling: SamplingDefaults(maxTokens: 96)) {
            CaptionStage(config: $0, options: $1)
        },
        StageType("classify", options: ClassifyOptions.self, sampling: SamplingDefaults(maxTokens: 16, topLogprobs: 20))
        {
            switch ($1.method, $1.fallback) {
            case ("embedding", nil): EmbeddingClassifyStage(config: $0, options: $1) as any PipelineStage
            case ("embedding", _): CascadeClassifyStage(config: $0, options: $1)
            default: ClassifyStage(config: $0, options: $1)
            }
        },
        StageType("tag", options: TagOptions.self) {
            if let embedding = $1.embedding {
                EmbeddingTagStage(config: $0, options: $1, embedding: embedding) as any PipelineStage
            } else {
                TagStage(config: $0, options: $1)
            }
        },
        StageType("rubric_score", options: RubricOptions.self, sampling: SamplingDefaults(topLogprobs: 10)) {
            $1.mode == "pairwise"
                ? PairwiseRubricStage(config: $0, options: $1) as any PipelineStage
                : RubricScoreStage(config: $0, options: $1)
        },
        StageType(
            "generate", options: GenerateOptions.self,
            sampling: SamplingDefaults(temperature: 0.7, maxTokens: 256, takesStop: true)
        ) { GenerateStage(config: $0, options: $1) },
        StageType(
            "synthesize", options: SynthesizeOptions.self,
            sampling: SamplingDefaults(temperature: 0.8, maxTokens: 256, takesStop: true)
        ) { SynthesizeStage(config: $0, options: $1) },
        StageType(
            "synthesize_conversation", options: ConversationOptions.self,
            sampling: SamplingDefaults(temperature: 0.7, maxTokens: 160, takesStop: true)
        ) { ConversationStage(config: $0, options: $1) },
        StageType("filter", options: FilterOptions.self, engineTask: nil) { FilterStage(config: $0, options: $1) },
        StageType("dedup", options: DedupOptions.self, engineTask: nil) { DedupStage(config: $0, options: $1) },
        StageType("sample", options: SampleOptions.self, engineTask: nil) { SampleStage(config: $0, options: $1) },
        StageType("normalize", options: NormalizeOptions.self, engineTask: nil) {
            NormalizeStage(config: $0, options: $1)
        },
        StageType("calibrate", options: CalibrateOptions.self, engineTask: nil) {
            CalibrateStage(config: $0, options: $1)
        },
        StageType("embed", options: EmbedOptions.self, engineTask: "embed") { EmbedStage(config: $0, options: $1) },
        // Sampling matters to `method: judge` only: a yes or no, with logprobs for P(yes).
        StageType(
            "rerank", options: RerankOptions.self, sampling: SamplingDefaults(maxTokens: 4, topLogprobs: 20),
            engineTask: "rerank"
        ) {
            $1.method == "judge"
                ? RelevanceJudgeStage(config: $0, options: $1) as any PipelineStage
                : RerankStage(config: $0, options: $1)
        },
        StageType("mine_hard_negatives", options: MineOptions.self, engineTask: "embed") {
            MineStage(config: $0, options: $1)
        },
    ]

    static var names: [String] { types.map(\.name) }

    /// `a`, `a and b`, `a, b and c`.
    static func listed(_ names: [String]) -> String {
        names.count <= 2
            ? names.joined(separator: " and ") : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }

    static func type(named name: String) -> StageType? { types.first { $0.name == name } }

    /// Keys every stage has, whatever its type.
    static let commonKeys = [
        "id", "type", "engine", "template", "sampling", "gold_field", "max_validation_retries", "images",
    ]

    /// Keys of the first stage types, which `config.resolved.yaml` lists for every stage (`null` or
    /// `[]` where they do not apply), as it always has: plan hashes depend on it.
    static let listedForEveryStage: [String: JSONValue] = [
        "labels": [], "attributes": [], "criteria": [], "style": .null, "max_words": .null, "mode": .null,
        "candidates": [],
    ]
}

/// Builds the stage object for a configured stage.
public func makeStage(_ config: RunConfig.Stage) -> any PipelineStage {
    StageRegistry.type(named: config.type)!.make(config)
}

extension StageRegistry {
    /// The registry as the kernel reads it: the types, and the `quality_filter` shorthand.
    static let catalog = StageCatalog(types: types, expand: { try QualityFilter.expand($0) })
}
