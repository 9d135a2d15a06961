import LabelForgeCore

/// The type of a field in the Parquet views (`outputs: {format: parquet}`) and a Hugging Face
/// export, as `scripts/parquet_io.py write --schema` reads it. What is not declared is typed from
/// its values, after a check that they share one type (a column whose values do not is written as
/// JSON text).
public indirect enum ColumnType: Sendable, Equatable {
    case string, int64, float64, bool
    /// Whatever type the values have, known to be one type: typed from them without the check.
    case uniform
    case list(ColumnType)
    /// An object whose members are named by the data (scores per label), each of this type.
    case members(ColumnType)
    /// An object: the members named (a `nil` type: typed from the values, checked), the others as
    /// `others` (`nil`: typed from the values, checked). A named member no row has is still a column.
    case object([String: ColumnType?], others: ColumnType? = nil)

    /// The declaration as the writer reads it.
    public var json: JSONValue {
        switch self {
        case .string: "string"
        case .int64: "int64"
        case .float64: "float64"
        case .bool: "bool"
        case .uniform: "uniform"
        case .list(let inner): ["list": inner.json]
        case .members(let inner): ["members": inner.json]
        case .object(let named, let others):
            .object(
                ["struct": .object(named.mapValues { $0?.json ?? .null })].merging(
                    others.map { ["others": $0.json] } ?? [:]
                ) { first, _ in first })
        }
    }

    /// The `error` of a failed row's output line.
    public static let error = ColumnType.object(["class": .string, "message": .string])

    /// A stage's output lines (`outputs/<stage>.jsonl`): `row_id`, `error`, the lineage of a
    /// fanned-out row, a vector's `index` in the stage's `.npy`, and the outputs the stage declares.
    public static func outputLine(of stage: any PipelineStage) -> ColumnType {
        var named: [String: ColumnType?] = ["row_id": .string, "error": error]
        if stage.rowSet.samples > 1 {
            named["parent_row_id"] = .string
            named["sample_index"] = .int64
        }
        if stage.writesVectors { named["index"] = .int64 }
        for (field, type) in stage.outputTypes { named[field] = type }
        return .object(named)
    }
}

extension ColumnType {
    /// `dataset.jsonl`'s lines: `row_id`, the `input` (typed from its values: without the check where
    /// the dataset's format gives each column one type, CSV, image folders and Parquet apart from
    /// image fields), each stage's declared outputs, and `parent_row_id` where a stage fans rows out.
    package static func datasetLine(stages: [any PipelineStage], dataset: RunConfig.Dataset) -> ColumnType {
        var outputs: [String: ColumnType?] = [:]
        for stage in stages { outputs[stage.config.id] = .object(stage.outputTypes) }
        var named: [String: ColumnType?] = [
            "row_id": .string, "input": input(of: dataset), "outputs": .object(outputs),
        ]
        if stages.contains(where: { $0.rowSet.samples > 1 }) { named["parent_row_id"] = .string }
        return .object(named)
    }

    /// A dataset's input fields, by its format.
    package static func input(of dataset: RunConfig.Dataset) -> ColumnType? {
        switch dataset.format {
        case .csv, .imagefolder: .uniform
        case .parquet:
            .object(Dictionary(uniqueKeysWithValues: dataset.imageFields.map { ($0, nil) }), others: .uniform)
        default: nil
        }
    }
}

extension ColumnType {
    /// An object of these declared members.
    static func object(_ named: [String: ColumnType]) -> ColumnType {
        .object(named.mapValues { Optional($0) })
    }
}
