import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import Yams

/// `filter`: keeps the rows its predicate accepts; no request. Rejected rows go to
/// `outputs/<stage>.rejected.jsonl` with the reason, and are absent downstream.
public struct FilterStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: FilterOptions
    public let version = 1

    public var outputFields: [String] { options.record.isEmpty ? ["kept"] : ["kept", "values"] }
    public let outputTypes: [String: ColumnType] = ["kept": .bool]

    public var optionReferences: [String] { options.keep.fields + options.record }
    public var rowSet: RowSet { .filters }

    /// Keeps or drops the row by its predicate; the output records `kept` either way.
    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let rejection = rejection(of: row)
        return StageResult(output: output(for: row, kept: rejection == nil), rejection: rejection)
    }

    /// `nil` when the row is kept, else why not.
    func rejection(of row: RowContext) -> String? {
        options.keep.rejection { row.value(at: $0) }
    }

    /// The output for a row: `kept`, and the values of `record` (e.g. a judge's scores) if any.
    func output(for row: RowContext, kept: Bool) -> [String: JSONValue] {
        guard !options.record.isEmpty else { return ["kept": .bool(kept)] }
        var values: [String: JSONValue] = [:]
        for path in options.record { values[path] = row.value(at: path) ?? .null }
        return ["kept": .bool(kept), "values": .object(values)]
    }
}

/// `filter`'s options: the predicate rows must satisfy to continue (`keep`), and field paths whose
/// values every output line records (`record`), kept or rejected.
public struct FilterOptions: ParsedStageOptions {
    public var keep: RowPredicate
    public var record: [String] = []

    package static let keys = ["keep", "record"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> FilterOptions {
        FilterOptions(
            keep: try RowPredicate.parse(try node.require("keep")), record: try node.child("record")?.stringList() ?? []
        )
    }

    /// `record` is listed only when given, so filters written before it keep their plan hashes.
    public var resolvedJSON: [String: JSONValue] {
        record.isEmpty ? ["keep": keep.json] : ["keep": keep.json, "record": .array(record.map(JSONValue.string))]
    }
}
