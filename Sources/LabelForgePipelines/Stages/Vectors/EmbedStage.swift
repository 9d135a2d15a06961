import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `embed`: one vector per row for a field's text (with an optional instruction prefix such as
/// `query: `), from an engine that serves `/v1/embeddings`.
///
/// Each text is its own single-input request, so its cache key does not depend on the batch it
/// travels in; `RequestBatcher` sends up to `batch_size` of them at a time. Vectors go to
/// `outputs/<stage>.npy` (float32, one row per output row, in output order); the stage's JSON output
/// is the vector's `index` in that file, its `dimension` and its L2 `norm`.
public struct EmbedStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: EmbedOptions
    public let version = 1
    public let outputFields = ["index", "dimension", "norm"]
    public let outputTypes: [String: ColumnType] = ["dimension": .int64, "norm": .float64]

    public var optionReferences: [String] { [options.field] }
    public var truncation: Truncation? { options.truncate }
    public var engineUses: [EngineUse] {
        [EngineUse(engine: config.engine, task: .embed, batchSize: options.batchSize)]
    }
    public var writesVectors: Bool { true }

    /// The text the engine embeds for a row; `nil` when the field is missing or null.
    func text(of row: RowContext) -> String? {
        guard let value = row.value(at: options.field), !value.isNull else { return nil }
        return options.prefix + value.textForm
    }

    /// One row's vector: a single-text embeddings request through the executor (and the stage's
    /// batcher on a miss).
    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        guard let text = text(of: row) else {
            return .failed(
                StageFailure(errorClass: "missing_field", message: "the row has no text in '\(options.field)' to embed")
            )
        }
        let engine = try context.endpoint(.embed)
        let request = PreparedRequest(
            .embedding(text: text, modelID: engine.modelID, truncate: context.truncationLimit(.embed)), on: engine)
        do {
            let (vector, promptTokens, truncated) = try await context.send(request, on: engine).singleVector()
            context.countTokens(in: promptTokens)
            return StageResult(output: Self.fields(of: vector), vector: vector, truncated: truncated ? 1 : 0)
        } catch {
            return .failed(StageFailure(error))
        }
    }

    /// The output fields for a vector (its `index` is assigned when the vector is written).
    static func fields(of vector: [Float]) -> [String: JSONValue] {
        let norm = vector.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return ["dimension": .int(Int64(vector.count)), "norm": .double((norm * 1e6).rounded() / 1e6)]
    }
}

/// `embed`'s options: the field (or `stage.field` output) to embed, a prefix put before each text
/// (e.g. `query: `, `passage: `), how many texts go in one request, and how texts longer than the
/// model's window are cut.
public struct EmbedOptions: ParsedStageOptions {
    public var field: String
    public var prefix = ""
    public var batchSize = 32
    public var truncate = Truncation.model

    package static let keys = ["field", "prefix", "batch_size", Truncation.key]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> EmbedOptions {
        let batchNode = try node.child("batch_size")
        let batchSize = try batchNode?.int() ?? 32
        if batchSize < 1 { throw batchNode!.error("batch_size must be at least 1.") }
        return EmbedOptions(
            field: try node.require("field").string(), prefix: try node.child("prefix")?.string() ?? "",
            batchSize: batchSize,
            truncate: try Truncation.parse(try node.child(Truncation.key), absent: context.absentTruncation))
    }

    public var resolvedJSON: [String: JSONValue] {
        // `batch_size` changes how requests travel, never a vector: it is not part of the plan's
        // identity beyond the resolved config, and cached vectors serve any batch size.
        var json: [String: JSONValue] = [
            "field": .string(field), "prefix": .string(prefix), "batch_size": .int(Int64(batchSize)),
        ]
        if let truncate = truncate.json { json[Truncation.key] = truncate }
        return json
    }
}
