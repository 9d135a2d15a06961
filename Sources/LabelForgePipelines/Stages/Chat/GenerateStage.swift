import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import Yams

/// `generate`: free text from a template, `n` samples per row.
///
/// With `n > 1` every row fans out into `n` rows, each with its own seed (the sample index is part
/// of the seed, so sample 0 keeps the seed of `n: 1`), its own request and cache entry, and a row
/// ID derived from the parent's ID, the stage id and the sample index.
public struct GenerateStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: GenerateOptions
    public let version = 1
    public let outputFields = ["text", "finish_reason"]
    public let outputTypes: [String: ColumnType] = ["text": .string, "finish_reason": .string]
    public var templateVariables: [String: JSONValue] { [:] }
    public var constraint: OutputConstraint? { nil }
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var samples: Int { options.samples }

    /// An empty answer is retried with the next retry seed; anything else is kept as generated.
    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        Answers.freeText(response)
    }

}

/// `generate`'s options: samples per row (`n`); more than one fans the row out.
public struct GenerateOptions: ParsedStageOptions {
    public var samples = 1

    package static let keys = ["n"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> GenerateOptions {
        let samplesNode = try node.child("n")
        let samples = try samplesNode?.int() ?? 1
        if samples < 1 { throw samplesNode!.error("n must be at least 1.") }
        return GenerateOptions(samples: samples)
    }

    public var resolvedJSON: [String: JSONValue] { ["n": .int(Int64(samples))] }
}
