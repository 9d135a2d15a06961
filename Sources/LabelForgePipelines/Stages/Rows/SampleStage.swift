import LabelForgeCore
import LabelForgeKernel

/// `sample`: a seeded random subset of the rows. Each row is kept with probability `fraction`, by a
/// draw derived from the run's seed, the stage id and the row id (`Seed.derive`): the same rows
/// are kept on every run with that seed, whatever order rows finish in and whatever else is in the
/// dataset, and a different `run.seed` draws another subset. Rows not drawn go to
/// `outputs/<stage>.rejected.jsonl`. Outputs `kept` and `draw` (in [0, 1): kept when below
/// `fraction`).
///
/// It is the worked example of docs/adding_a_stage.md: a stage that sends no request, added by this
/// file and one registry entry.
public struct SampleStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: SampleOptions
    public let version = 1
    public let outputFields = ["kept", "draw"]
    public let outputTypes: [String: ColumnType] = ["kept": .bool, "draw": .float64]
    public var rowSet: RowSet { .filters }

    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        // The draw is decided at the precision it is recorded with, so the output always agrees.
        let exact = Double(context.seed(config.id, row: row.rowID, sample: 0)) / 4_294_967_296
        let draw = (exact * 1e6).rounded(.down) / 1e6
        let kept = draw < options.fraction
        return StageResult(
            output: ["kept": .bool(kept), "draw": .double(draw)],
            rejection: kept ? nil : "not drawn (draw \(draw) ≥ fraction \(options.fraction))")
    }
}

/// `sample`'s options: the share of rows kept, in (0, 1].
public struct SampleOptions: ParsedStageOptions {
    public var fraction: Double

    package static let keys = ["fraction"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> SampleOptions {
        let fractionNode = try node.require("fraction")
        let fraction = try fractionNode.double()
        guard fraction > 0, fraction <= 1 else {
            throw fractionNode.error(
                "fraction must be above 0 and at most 1 (the share of rows kept), not \(fraction).")
        }
        return SampleOptions(fraction: fraction)
    }

    public var resolvedJSON: [String: JSONValue] { ["fraction": .double(fraction)] }
}
