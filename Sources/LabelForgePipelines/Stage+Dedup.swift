import Foundation
import LabelForgeCore

/// What a barrier decided for one row.
enum BarrierVerdict: Sendable {
    /// The row continues, with these output fields.
    case keep([String: JSONValue])
    /// The row stops here; the fields go to `outputs/<stage>.rejected.jsonl` with the reason.
    case drop([String: JSONValue], reason: String)
    /// The row continues, failed for this stage (e.g. `upstream_failed`).
    case fail(StageFailure)
}

/// A dataset-wide stage: consumes its upstream's whole row set and decides per row.
///
/// Rows stream from disk, as often as the algorithm needs to read them; the barrier holds in memory
/// only what its algorithm needs. Its result is committed atomically in the run directory.
protocol BarrierStage: PipelineStage {
    /// Reads the rows (`rows()` opens a fresh pass in input order) and calls `emit` once per row,
    /// in that order.
    /// - Parameters:
    ///   - context: the row as this stage sees it (its upstream outputs included).
    ///   - failure: why the row cannot be judged (an upstream stage it reads failed), if so.
    ///   - services: what the run offers a barrier besides its rows (engine requests, files).
    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict) throws -> Void
    ) async throws
}

/// What the run offers a dataset-wide stage besides its rows.
struct BarrierServices: Sendable {
    /// The run's seed, for stages that sample.
    var runSeed: UInt64
    /// Vectors for texts from the stage's engine: one cached single-text request each, sent in
    /// batches; in the order of the texts.
    var embed: @Sendable ([String]) async throws -> [[Float]]
    /// Scores of documents for a query from the stage's reranker: one cached request per pair,
    /// a query's pairs sent together; in the order of the documents.
    var rerank: @Sendable (_ query: String, _ documents: [String]) async throws -> [Double]
    /// Writes a file of the stage's own into `outputs/`, atomically (e.g. a training file).
    var writeOutput: @Sendable (_ name: String, _ bytes: [UInt8]) throws -> Void
}

/// `dedup` with `method: exact`: rows whose field is the same text after normalization (Unicode
/// NFKC, case folding, whitespace collapsed) are duplicates; the first in output order is kept.
///
/// Outputs `key` (hash of the normalized text) and `duplicates` (how many rows were removed as its
/// duplicates); removed rows name the kept row as `duplicate_of`. Memory: one entry per distinct text.
struct DedupStage: BarrierStage {
    let config: RunConfig.Stage
    let options: DedupOptions
    let version = 1
    let outputFields = ["key", "duplicates"]

    var optionReferences: [String] { [options.field] }

    /// The text as compared: NFKC, case-folded, runs of whitespace as one space, trimmed.
    static func normalized(_ text: String) -> String {
        text.precomposedStringWithCompatibilityMapping
            .folding(options: [.caseInsensitive], locale: nil)
            .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict) throws -> Void
    ) async throws {
        let field = options.field
        func key(_ row: PipelineRow) -> String? {
            guard failure(row) == nil, let value = context(row).value(at: field), !value.isNull else { return nil }
            return ContentHash.prefixed(ContentHash.hex(Data(Self.normalized(value.textForm).utf8)))
        }
        var groupSizes: [String: Int] = [:]
        let counting = try rows()
        while let row = try counting.next() {
            if let key = key(row) { groupSizes[key, default: 0] += 1 }
        }
        var kept: [String: String] = [:]
        let deciding = try rows()
        while let row = try deciding.next() {
            if let reason = failure(row) {
                try emit(row, .fail(reason))
            } else if let key = key(row) {
                if let first = kept[key] {
                    try emit(
                        row,
                        .drop(["key": .string(key), "duplicate_of": .string(first)], reason: "duplicate of \(first)"))
                } else {
                    kept[key] = row.rowID
                    try emit(
                        row, .keep(["key": .string(key), "duplicates": .int(Int64(groupSizes[key, default: 1] - 1))]))
                }
            } else {
                try emit(
                    row,
                    .fail(
                        StageFailure(
                            errorClass: "missing_field", message: "the row has no value at '\(field)' to compare")))
            }
        }
    }
}

/// `dedup`'s options: the field (or `stage.field` output) compared, and the method (`exact`).
public struct DedupOptions: ParsedStageOptions {
    public var field: String
    public var method = "exact"

    static let keys = ["field", "method"]

    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> DedupOptions {
        DedupOptions(
            field: try node.require("field").string(), method: try node.child("method")?.oneOf(["exact"]) ?? "exact")
    }

    public var resolvedJSON: [String: JSONValue] { ["field": .string(field), "method": .string(method)] }
}
