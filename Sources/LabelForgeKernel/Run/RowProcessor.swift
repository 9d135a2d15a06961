import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import Logging

/// Runs rows through row-wise stages, in order: each stage decides each row (`RowWiseStage.process`)
/// with a `StageContext` of its own per row; filters drop rows and fan-outs multiply them between
/// stages.
///
/// What is the same for every stage lives here once: a row an upstream stage it reads failed is
/// failed without being sent (`upstream_failed`), a fan-out's child rows, the latency, and a failure
/// an interrupted run recorded, which stays a failure.
package struct RowProcessor: Sendable {
    /// A row-wise stage as the processor runs it, resolved once per run rather than once per row:
    /// its traits, the upstream stages it reads and what the run gives it.
    package final class StagePlan: Sendable {
        package let id: String
        package let stage: any RowWiseStage
        package let rowSet: RowSet
        package let reads: [String]
        package let services: StageServices
        /// Whether the stage sends requests: only then is its latency measured (a filter's is 0) and
        /// an interrupted call left for `--resume`.
        package let sendsRequests: Bool

        package init(
            id: String, stage: any RowWiseStage, rowSet: RowSet, reads: [String], services: StageServices,
            sendsRequests: Bool
        ) {
            self.id = id
            self.stage = stage
            self.rowSet = rowSet
            self.reads = reads
            self.services = services
            self.sendsRequests = sendsRequests
        }
    }

    package var graph: StageGraph
    /// What each stage gets from the run (engines, limits, executor), by stage id.
    package var services: [String: StageServices]
    /// Row lines an interrupted run recorded, by `ManifestRecovery.key`: a failure recorded there
    /// stays a failure, so the manifest, the outputs and downstream stages agree.
    package var previous: [String: RowRecord] = [:]
    /// The clock latencies are measured on.
    package var environment: RunEnvironment = .live

    /// The plans of a segment's row-wise stages, in order.
    package func plans(for stages: [any PipelineStage]) -> [StagePlan] {
        stages.compactMap { stage in
            let id = stage.config.id
            guard let rowWise = stage.execution.rowWise, let services = services[id] else { return nil }
            return StagePlan(
                id: id, stage: rowWise, rowSet: stage.rowSet, reads: graph.reads(of: id), services: services,
                sendsRequests: !stage.engineUses.isEmpty)
        }
    }

    /// Passes one row through `stages`, in order; every stage sees every row the stage before it emitted.
    package func process(_ row: PipelineRow, through stages: [StagePlan]) async throws -> SegmentResult {
        var current = [row]
        var emissions: [StageEmission] = []
        for stage in stages {
            var next: [PipelineRow] = []
            for row in current {
                try Task.checkCancellation()
                for (emission, out) in try await apply(stage, to: row) {
                    emissions.append(emission)
                    if let out { next.append(out) }
                }
            }
            current = next
        }
        return SegmentResult(emissions: emissions, rows: current, sourceIndex: row.order[0])
    }

    /// Why `row` cannot go to `stage`: an upstream stage it reads failed for this row.
    package func upstreamFailure(of stage: String, in row: PipelineRow) -> StageFailure? {
        Self.upstreamFailure(reading: graph.reads(of: stage), in: row)
    }

    private static func upstreamFailure(reading reads: [String], in row: PipelineRow) -> StageFailure? {
        row.firstFailed(among: reads).map {
            StageFailure(errorClass: "upstream_failed", message: "upstream stage '\($0)' failed for this row")
        }
    }

    /// One stage on one row: the emissions, each with the row that continues (nil when dropped).
    private func apply(_ plan: StagePlan, to row: PipelineRow) async throws -> [(StageEmission, PipelineRow?)] {
        let id = plan.id
        let fansOut = plan.rowSet.samples > 1
        func emit(_ outcome: StageOutcome, for row: PipelineRow, rejection: String?) -> (StageEmission, PipelineRow?) {
            var outcome = outcome
            // A failure an interrupted run recorded stays a failure, here and downstream.
            if !previous.isEmpty, let recorded = previous[ManifestRecovery.key(row: row.rowID, stage: id)]?.error {
                outcome.output = nil
                outcome.failure = recorded
            }
            let emission = StageEmission(
                rowID: row.rowID, outcome: outcome, rejection: rejection, parent: fansOut ? row.parent : nil,
                sampleIndex: fansOut ? row.sampleIndex : nil, fields: row.loaded.recorded)
            guard rejection == nil else { return (emission, nil) }
            var row = row
            row.outputs[id] = emission.record
            return (emission, row)
        }

        let rows = fansOut ? (0..<plan.rowSet.samples).map { child(of: row, stage: id, sample: $0) } : [row]
        if let failure = Self.upstreamFailure(reading: plan.reads, in: row) {
            var outcome = StageOutcome(stageID: id)
            outcome.failure = failure
            // A filter drops the row it cannot judge; other stages pass it on, failed.
            let rejection = plan.rowSet == .filters ? "upstream_failed: " + failure.message : nil
            return rows.map { emit(outcome, for: $0, rejection: rejection) }
        }
        let context = row.context(reading: plan.reads)
        var results: [(StageEmission, PipelineRow?)] = []
        for (sample, out) in rows.enumerated() {
            let stageContext = StageContext(plan.services)
            let start = environment.clock()
            let result = try await plan.stage.process(context, sample: sample, in: stageContext)
            var outcome = stageContext.outcome(result)
            if plan.sendsRequests {
                outcome.latencyMs = environment.milliseconds(since: start)
                // An interrupted request is not a result: the row stays unfinished, to be resumed.
                if Task.isCancelled || outcome.failure?.errorClass == "cancelled" { throw CancellationError() }
            }
            results.append(emit(outcome, for: out, rejection: result.rejection))
        }
        return results
    }

    private func child(of row: PipelineRow, stage: String, sample: Int) -> PipelineRow {
        var child = row
        child.rowID = PipelineRow.childID(parent: row.rowID, stage: stage, sample: sample)
        child.order = row.order + [sample]
        child.parent = row.rowID
        child.sampleIndex = sample
        return child
    }
}
