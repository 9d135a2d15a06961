import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel

/// `normalize`: rescales a numeric field over the whole row set, or within groups of rows
/// (`group_by`): `zscore` (population standard deviation, as scipy's `zscore`), `minmax` (to
/// [0, 1]) or `percentile` (the average rank, to [0, 1]). A dataset-wide stage: every row must be
/// seen before any is scaled. Outputs `value` (rescaled), `raw` and `group`; a row without a number
/// at `field` fails with `missing_field`. Constant groups give 0 (z-score, min-max) or 0.5.
struct NormalizeStage: BarrierStage {
    let config: RunConfig.Stage
    let options: NormalizeOptions
    let version = 1
    let outputFields = ["value", "raw", "group"]
    let outputTypes: [String: ColumnType] = ["value": .float64, "raw": .float64, "group": .string]

    var optionReferences: [String] { [options.field] + (options.groupBy.map { [$0] } ?? []) }

    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) async throws {
        func input(_ row: PipelineRow) -> (value: Double, group: String)? {
            guard failure(row) == nil else { return nil }
            let context = context(row)
            guard let value = context.value(at: options.field)?.doubleValue else { return nil }
            return (value, options.groupBy.map { context.value(at: $0)?.textForm ?? "" } ?? "")
        }
        // Pass 1: the values by group, in row order.
        var groups: [String: [Double]] = [:]
        let reading = try rows()
        while let row = try reading.next() {
            if let (value, group) = input(row) { groups[group, default: []].append(value) }
        }
        let scaled = groups.mapValues { options.method.apply($0) }
        // Pass 2: each row's rescaled value, taken in the same order.
        var taken: [String: Int] = [:]
        let deciding = try rows()
        while let row = try deciding.next() {
            if let reason = failure(row) {
                try emit(row, .fail(reason), [])
            } else if let (value, group) = input(row) {
                let index = taken[group, default: 0]
                taken[group] = index + 1
                try emit(
                    row,
                    .keep([
                        "value": .double(Answers.rounded(scaled[group]![index])), "raw": .double(value),
                        "group": options.groupBy == nil ? .null : .string(group),
                    ]), [])
            } else {
                try emit(
                    row,
                    .fail(
                        StageFailure(
                            errorClass: "missing_field",
                            message: "the row has no number at '\(options.field)' to normalize")), [])
            }
        }
    }
}

/// `normalize`'s options: the numeric field, the method, and an optional field to group by.
public struct NormalizeOptions: ParsedStageOptions {
    public var field: String
    public var method = Normalization.zscore
    public var groupBy: String? = nil

    package static let keys = ["field", "method", "group_by"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> NormalizeOptions {
        NormalizeOptions(
            field: try node.require("field").string(),
            method: Normalization(
                rawValue: try node.child("method")?.oneOf(Normalization.allCases.map(\.rawValue)) ?? "zscore")!,
            groupBy: try node.child("group_by")?.string())
    }

    public var resolvedJSON: [String: JSONValue] {
        ["field": .string(field), "method": .string(method.rawValue), "group_by": .optional(groupBy)]
    }
}
