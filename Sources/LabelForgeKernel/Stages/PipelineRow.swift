import Foundation
import LabelForgeCore
import LabelForgeIO

/// A row as it moves through the stage graph: its input record, the outputs of the stages it has
/// passed, its lineage and its place in the total order.
package struct PipelineRow: Sendable {
    package var rowID: String
    /// Input index, then one sample index per fan-out: rows are written in this order.
    package var order: [Int]
    /// The record as the dataset has it (images by reference), to reload images after a barrier.
    package var source: DatasetRecord
    package var loaded: LoadedRecord
    /// Each passed stage's output line without `row_id`; a failed stage's holds `error`.
    package var outputs: [String: [String: JSONValue]] = [:]
    /// The row this one was fanned out from, and which sample it is.
    package var parent: String? = nil
    package var sampleIndex: Int? = nil

    /// The first of `stages` this row failed, if any.
    package func firstFailed(among stages: [String]) -> String? {
        stages.first { outputs[$0]?["error"] != nil }
    }

    /// The row as `stage` sees it: its fields, images, and the outputs of the stages in `reads`.
    package func context(reading reads: [String]) -> RowContext {
        var upstream: [String: [String: JSONValue]] = [:]
        for stage in reads { if let output = outputs[stage] { upstream[stage] = output } }
        return RowContext(
            rowID: rowID, index: order[0], fields: loaded.recorded, images: loaded.images,
            imageFailures: loaded.failures,
            upstream: upstream)
    }

    /// The ID of sample `sample` of `stage` fanned out from `parent`: the first 32 hex digits of
    /// the hash of `{parent, stage, sample}`, so it depends on nothing but those.
    package static func childID(parent: String, stage: String, sample: Int) -> String {
        String(
            ContentHash.hex(["parent": .string(parent), "stage": .string(stage), "sample": .int(Int64(sample))]).prefix(
                32))
    }

    /// The line a row file keeps for this row.
    package var json: JSONValue {
        [
            "row_id": .string(rowID), "order": .array(order.map { .int(Int64($0)) }),
            "parent": parent.map(JSONValue.string) ?? .null,
            "sample_index": sampleIndex.map { .int(Int64($0)) } ?? .null,
            "source": [
                "fields": .object(source.fields), "index": .int(Int64(source.index)), "line": .int(Int64(source.line)),
                "location": .string(source.location),
            ],
            "outputs": .object(outputs.mapValues(JSONValue.object)),
        ]
    }
}
