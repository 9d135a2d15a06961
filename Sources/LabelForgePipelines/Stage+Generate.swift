import Foundation
import LabelForgeCore
import LabelForgeLLM

/// `generate`: free text from a template, `n` samples per row.
///
/// With `n > 1` every row fans out into `n` rows, each with its own seed (the sample index is part
/// of the seed, so sample 0 keeps the seed of `n: 1`), its own request and cache entry, and a row
/// ID derived from the parent's ID, the stage id and the sample index.
public struct GenerateStage: RowStage {
    public let config: RunConfig.Stage
    public let options: GenerateOptions
    public let version = 1
    public let outputFields = ["text", "finish_reason"]
    public var templateVariables: [String: JSONValue] { [:] }
    public var constraint: OutputConstraint? { nil }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var samples: Int { options.samples }

    /// An empty answer is retried with the next retry seed; anything else is kept as generated.
    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        let text = response.content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            return .failure(StageFailure(errorClass: "empty_output", message: "the engine generated no text"))
        }
        return .success(["text": .string(text), "finish_reason": response.finishReason.map(JSONValue.string) ?? .null])
    }
}

/// `filter`: keeps the rows its predicate accepts; no request. Rejected rows go to
/// `outputs/<stage>.rejected.jsonl` with the reason, and are absent downstream.
public struct FilterStage: PipelineStage {
    public let config: RunConfig.Stage
    public let options: FilterOptions
    public let version = 1
    public let outputFields = ["kept"]

    public var optionReferences: [String] { options.keep.fields }

    /// `nil` when the row is kept, else why not.
    func rejection(of row: RowContext) -> String? {
        options.keep.rejection { row.value(at: $0) }
    }
}

/// `generate`'s options: samples per row (`n`); more than one fans the row out.
public struct GenerateOptions: ParsedStageOptions {
    public var samples = 1

    static let keys = ["n"]

    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> GenerateOptions {
        let samplesNode = try node.child("n")
        let samples = try samplesNode?.int() ?? 1
        if samples < 1 { throw samplesNode!.error("n must be at least 1.") }
        return GenerateOptions(samples: samples)
    }

    public var resolvedJSON: [String: JSONValue] { ["n": .int(Int64(samples))] }
}

/// `filter`'s options: the predicate rows must satisfy to continue (`keep`).
public struct FilterOptions: ParsedStageOptions {
    public var keep: RowPredicate

    static let keys = ["keep"]

    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> FilterOptions {
        FilterOptions(keep: try RowPredicate.parse(try node.require("keep")))
    }

    public var resolvedJSON: [String: JSONValue] { ["keep": keep.json] }
}
