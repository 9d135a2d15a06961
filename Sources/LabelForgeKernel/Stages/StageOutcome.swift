import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import Logging

/// What one stage did for one row: the manifest's row line, and the output if there is one.
package struct StageOutcome: Sendable {
    package var stageID: String
    package var output: [String: JSONValue]?
    package var failure: StageFailure?
    package var requestKeys: [String] = []
    /// How many of `requestKeys` were answered from the cache.
    package var cacheHits = 0
    package var attempts = 0
    /// The replicas that answered this stage's engine requests (`RowRecord.servedBy`).
    package var servedBy: [String] = []
    package var latencyMs = 0
    package var tokensIn = 0
    package var tokensOut = 0
    /// An `embed` stage's vector; it goes to `outputs/<stage>.npy`, not into the JSON output.
    package var vector: [Float]? = nil
    /// Texts (or rerank pairs) longer than the model's window, cut to it.
    package var truncated = 0

    /// The manifest's `cache`: `hit` when every request came from the cache, `miss` when one did
    /// not, `none` when the row failed before any request.
    package var cacheStatus: String {
        requestKeys.isEmpty ? "none" : cacheHits == requestKeys.count ? "hit" : "miss"
    }

    /// The output line's fields without `row_id`: the output, or `error`.
    package var record: [String: JSONValue] {
        failure.map { ["error": $0.json] } ?? output ?? [:]
    }
}

/// What one stage did for one row, ready to be written: the manifest line's facts, the output
/// line's fields, and whether the row was dropped.
package struct StageEmission: Sendable {
    package var rowID: String
    package var outcome: StageOutcome
    /// Why a filter or barrier dropped the row; the line then goes to `<stage>.rejected.jsonl`.
    package var rejection: String? = nil
    /// For rows fanned out by this stage: the parent row and the sample index.
    package var parent: String? = nil
    package var sampleIndex: Int? = nil
    /// The row's input fields, for scoring against gold labels.
    package var fields: [String: JSONValue]
    /// Whether the stage's counts take this row's requests; a dataset-wide stage counts its requests
    /// once each, however many rows list them.
    package var countsRequests = true

    /// The output line without `row_id`: the outcome's fields, then the lineage of a fanned-out row.
    package var record: [String: JSONValue] {
        var record = outcome.record
        if let parent {
            record["parent_row_id"] = .string(parent)
            record["sample_index"] = sampleIndex.map { .int(Int64($0)) } ?? .null
        }
        return record
    }
}

/// One source row after a segment's stages: what each stage did, and the rows that come out.
package struct SegmentResult: Sendable {
    package var emissions: [StageEmission]
    package var rows: [PipelineRow]
    /// The input row (its index in the dataset) these came from.
    package var sourceIndex: Int
    /// Whether any stage failed for this row or a row fanned out of it.
    package var failed: Bool { emissions.contains { $0.outcome.failure != nil } }
}
