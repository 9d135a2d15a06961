import Foundation
import LabelForgeCore
import Synchronization

/// What a barrier decided for one row.
package enum BarrierVerdict: Sendable {
    /// The row continues, with these output fields.
    case keep([String: JSONValue])
    /// The row stops here; the fields go to `outputs/<stage>.rejected.jsonl` with the reason.
    case drop([String: JSONValue], reason: String)
    /// The row continues, failed for this stage (e.g. `upstream_failed`, or a request of its own that
    /// failed).
    case fail(StageFailure)
}

/// A dataset-wide stage: consumes its upstream's whole row set and decides per row.
///
/// Rows stream from disk, as often as the algorithm needs to read them; the barrier holds in memory
/// only what its algorithm needs. Its result is committed atomically in the run directory. A request
/// that fails fails only the rows it concerns: the stage decides every other row.
package protocol BarrierStage: PipelineStage {
    /// Reads the rows (`rows()` opens a fresh pass in input order) and calls `emit` once per row,
    /// in that order, with the cache keys of the engine requests made for that row.
    /// - Parameters:
    ///   - context: the row as this stage sees it (its upstream outputs included).
    ///   - failure: why the row cannot be judged (an upstream stage it reads failed), if so.
    ///   - services: what the run offers a barrier besides its rows (engine requests, files).
    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) async throws

    /// Lines the stage adds to `report.md`, from the files it wrote into `outputs`; none by default.
    func reportLines(outputs: String) -> [String]
}

extension BarrierStage {
    package func reportLines(outputs: String) -> [String] { [] }

    package var rowSet: RowSet { .barrier }

    package var execution: StageExecution { StageExecution(body: .datasetWide(self)) }
}

/// One engine request's answer inside a dataset-wide stage: the value, or why the request failed.
package struct BarrierAnswer<Value: Sendable>: Sendable {
    /// The request's cache key (`sha256:…`).
    package var key: String
    package var result: Result<Value, StageFailure>

    package var value: Value? { try? result.get() }
    package var failure: StageFailure? {
        if case .failure(let failure) = result { return failure }
        return nil
    }
}

/// What the run offers a dataset-wide stage besides its rows.
package struct BarrierServices: Sendable {
    /// The run's seed, for stages that sample.
    package var runSeed: UInt64
    /// Vectors for texts from the stage's engine: one cached single-text request each, sent in
    /// batches; one answer per text, in the order of the texts. `phase` names the work on the
    /// progress line (e.g. "embedding queries").
    package var embed: @Sendable (_ texts: [String], _ phase: String) async throws -> [BarrierAnswer<[Float]>]
    /// Scores of documents for a query from the stage's reranker: one cached request per pair,
    /// a query's pairs sent together; in the order of the documents.
    package var rerank: @Sendable (_ query: String, _ documents: [String]) async throws -> [BarrierAnswer<Double>]
    /// Writes a file of the stage's own into `outputs/`, atomically (e.g. a training file).
    package var writeOutput: @Sendable (_ name: String, _ bytes: [UInt8]) throws -> Void
    /// Reports the stage's own work on the progress line: `done` of `total` units of `phase`
    /// ("queries searched", "candidate pairs verified").
    package var progress: @Sendable (_ phase: String, _ done: Int, _ total: Int) -> Void = { _, _, _ in }
}
