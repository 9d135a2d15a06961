import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import Logging

/// What one stage did for one row: the manifest's row line, and the output if there is one.
struct StageOutcome: Sendable {
    var stageID: String
    var output: [String: JSONValue]?
    var failure: StageFailure?
    var requestKeys: [String] = []
    /// How many of `requestKeys` were answered from the cache.
    var cacheHits = 0
    var attempts = 0
    /// The replicas that answered this stage's engine requests (`RowRecord.servedBy`).
    var servedBy: [String] = []
    var latencyMs = 0
    var tokensIn = 0
    var tokensOut = 0
    /// An `embed` stage's vector; it goes to `outputs/<stage>.npy`, not into the JSON output.
    var vector: [Float]? = nil
    /// Texts (or rerank pairs) longer than the model's window, cut to it.
    var truncated = 0

    /// The manifest's `cache`: `hit` when every request came from the cache, `miss` when one did
    /// not, `none` when the row failed before any request.
    var cacheStatus: String {
        requestKeys.isEmpty ? "none" : cacheHits == requestKeys.count ? "hit" : "miss"
    }

    /// The output line's fields without `row_id`: the output, or `error`.
    var record: [String: JSONValue] {
        failure.map { ["error": $0.json] } ?? output ?? [:]
    }
}

/// What one stage did for one row, ready to be written: the manifest line's facts, the output
/// line's fields, and whether the row was dropped.
struct StageEmission: Sendable {
    var rowID: String
    var outcome: StageOutcome
    /// Why a filter or barrier dropped the row; the line then goes to `<stage>.rejected.jsonl`.
    var rejection: String? = nil
    /// For rows fanned out by this stage: the parent row and the sample index.
    var parent: String? = nil
    var sampleIndex: Int? = nil
    /// The row's input fields, for scoring against gold labels.
    var fields: [String: JSONValue]
    /// Whether the stage's counts take this row's requests; a dataset-wide stage counts its requests
    /// once each, however many rows list them.
    var countsRequests = true

    /// The output line without `row_id`: the outcome's fields, then the lineage of a fanned-out row.
    var record: [String: JSONValue] {
        var record = outcome.record
        if let parent {
            record["parent_row_id"] = .string(parent)
            record["sample_index"] = sampleIndex.map { .int(Int64($0)) } ?? .null
        }
        return record
    }
}

/// One source row after a segment's stages: what each stage did, and the rows that come out.
struct SegmentResult: Sendable {
    var emissions: [StageEmission]
    var rows: [PipelineRow]
    /// The input row (its index in the dataset) these came from.
    var sourceIndex: Int
    /// Whether any stage failed for this row or a row fanned out of it.
    var failed: Bool { emissions.contains { $0.outcome.failure != nil } }
}
