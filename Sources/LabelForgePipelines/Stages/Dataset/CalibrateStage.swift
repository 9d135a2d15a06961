import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel

/// `calibrate`: turns a `classify` stage's confidence into the probability that its label is right,
/// fitted on rows with a gold label. A dataset-wide stage: the map is fitted on one part of the gold
/// rows (`split`, chosen by a hash of the row ID, so the same rows every run) and measured on the
/// rest, then applied to every row.
///
/// `method: temperature` divides the classifier's per-label scores by one fitted temperature before
/// the softmax (where the upstream gives a score per label, as `method: embedding` does), or else its
/// confidence's logit; the chosen label never changes. `method: isotonic` fits a non-decreasing map
/// from confidence to accuracy. Outputs `label` (the upstream's), `confidence` (calibrated),
/// `raw_confidence` and `split` (`fit` or `eval`); `outputs/<id>.calibration.json` holds the fitted
/// map and the expected calibration error before and after on the `eval` rows.
struct CalibrateStage: BarrierStage {
    let config: RunConfig.Stage
    let options: CalibrateOptions
    let version = 1
    let outputFields = ["label", "confidence", "raw_confidence", "split"]
    let outputTypes: [String: ColumnType] = [
        "label": .string, "confidence": .float64, "raw_confidence": .float64, "split": .string,
    ]

    var optionReferences: [String] {
        ["\(options.stage).label", "\(options.stage).confidence"] + (config.goldField.map { [$0] } ?? [])
    }

    /// One row's classification, as the upstream stage gave it.
    struct Input {
        var label: String
        var confidence: Double
        /// Each label's score, by label name, when the upstream gave one per label and its label is
        /// the best.
        var scores: [Double]?
        var names: [String] = []
        var gold: String?
        var fits: Bool

        /// Whether the label is the gold one (compared as the run's summary compares them).
        var correct: Bool { label.lowercased() == gold?.lowercased() }
    }

    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) async throws {
        // Pass 1: the gold rows, to fit on and to measure.
        var gold: [Input] = []
        let reading = try rows()
        while let row = try reading.next() {
            if failure(row) == nil, let input = input(context(row)), input.gold != nil { gold.append(input) }
        }
        let map = CalibrationMap.fit(gold.filter(\.fits), method: options.method)
        let held = gold.filter { !$0.fits }
        let report = map.report(held: held, fitted: gold.count - held.count)
        try services.writeOutput("\(config.id).calibration.json", Array((CanonicalJSON.string(report) + "\n").utf8))
        // Pass 2: every row, calibrated.
        let deciding = try rows()
        while let row = try deciding.next() {
            if let reason = failure(row) {
                try emit(row, .fail(reason), [])
            } else if let input = input(context(row)) {
                try emit(
                    row,
                    .keep([
                        "label": .string(input.label), "confidence": .double(Answers.rounded(map.apply(input))),
                        "raw_confidence": .double(input.confidence), "split": .string(input.fits ? "fit" : "eval"),
                    ]), [])
            } else {
                try emit(
                    row,
                    .fail(
                        StageFailure(
                            errorClass: "missing_field",
                            message: "the row has no label and confidence from '\(options.stage)' to calibrate")), [])
            }
        }
    }

    func input(_ row: RowContext) -> Input? {
        guard let label = row.value(at: "\(options.stage).label")?.stringValue,
            let confidence = row.value(at: "\(options.stage).confidence")?.doubleValue
        else { return nil }
        var scores: [Double]?
        var names: [String] = []
        // A cascade's scores are its embedding's: they speak for the rows the embedding answered only.
        let route = row.value(at: "\(options.stage).route")?.stringValue
        if route == nil || route == "embedding", let object = row.value(at: "\(options.stage).scores")?.objectValue {
            names = object.keys.sorted()
            let values = names.compactMap { object[$0]?.doubleValue }
            // The label must be the scores' best: a cascade's LLM answer is not.
            if values.count == names.count, let best = values.indices.max(by: { values[$0] < values[$1] }),
                names[best] == label
            {
                scores = values
            }
        }
        let gold = config.goldField.flatMap { row.value(at: $0) }.flatMap { $0.isNull ? nil : $0.textForm }
        return Input(
            label: label, confidence: confidence, scores: scores, names: scores == nil ? [] : names, gold: gold,
            fits: Self.share(of: row.rowID, stage: config.id) < options.split)
    }

    /// A row's place in [0, 1), from a hash of the stage and row IDs: the same rows fit every run.
    static func share(of rowID: String, stage: String) -> Double {
        let hex = ContentHash.hex(Data("calibrate\u{0}\(stage)\u{0}\(rowID)".utf8))
        return Double(UInt64(hex.prefix(13), radix: 16)!) / Double(UInt64(1) << 52)
    }

    func reportLines(outputs: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: outputs + "/\(config.id).calibration.json"),
            let report = try? JSONValue.parse(data)
        else { return [] }
        func number(_ key: String) -> String { report[key]?.doubleValue.map { String(format: "%.3f", $0) } ?? "n/a" }
        return [
            "## Calibration: \(config.id) (of \(options.stage))", "",
            "- method: \(report["method"]?.textForm ?? "") (\(report["form"]?.textForm ?? "")); fitted on "
                + "\(report["fit_rows"]?.textForm ?? "0") gold rows, measured on \(report["eval_rows"]?.textForm ?? "0")",
            "- expected calibration error on the held-out rows: \(number("ece_before")) before, "
                + "\(number("ece_after")) after",
        ]
    }
}

/// A fitted map from an upstream confidence to a calibrated one.
enum CalibrationMap {
    case softmax(temperature: Double)
    case binary(temperature: Double)
    case isotonic(Calibration.Isotonic)
    /// Too few gold rows to fit: confidences pass through.
    case identity

    static func fit(_ rows: [CalibrateStage.Input], method: CalibrateOptions.Method) -> CalibrationMap {
        guard rows.count >= 2 else { return .identity }
        let correct = rows.map(\.correct)
        switch method {
        case .isotonic:
            return .isotonic(
                Calibration.Isotonic(inputs: rows.map(\.confidence), targets: correct.map { $0 ? 1 : 0 }))
        case .temperature:
            // Per-label scores, where every fitting row has them and its gold label is one of them.
            let labelled = rows.compactMap { row -> ([Double], Int)? in
                guard let scores = row.scores, let gold = row.gold?.lowercased(),
                    let index = row.names.firstIndex(where: { $0.lowercased() == gold })
                else { return nil }
                return (scores, index)
            }
            if labelled.count == rows.count {
                return .softmax(
                    temperature: Calibration.fitTemperature(logits: labelled.map(\.0), gold: labelled.map(\.1)))
            }
            return .binary(
                temperature: Calibration.fitBinaryTemperature(confidences: rows.map(\.confidence), correct: correct))
        }
    }

    func apply(_ row: CalibrateStage.Input) -> Double {
        switch self {
        case .softmax(let temperature):
            guard let scores = row.scores else { return row.confidence }
            return Calibration.softmax(scores, temperature: temperature).max() ?? row.confidence
        case .binary(let temperature): return Calibration.scaled(row.confidence, temperature: temperature)
        case .isotonic(let map): return map(row.confidence)
        case .identity: return row.confidence
        }
    }

    /// What `calibration.json` records: the map, and the ECE before and after on the held-out rows.
    func report(held: [CalibrateStage.Input], fitted: Int) -> JSONValue {
        let correct = held.map(\.correct)
        let before = Statistics.expectedCalibrationError(confidences: held.map(\.confidence), correct: correct)
        let after = Statistics.expectedCalibrationError(confidences: held.map(apply), correct: correct)
        var json: [String: JSONValue] = [
            "fit_rows": .int(Int64(fitted)), "eval_rows": .int(Int64(held.count)),
            "ece_before": held.isEmpty ? .null : .double(Answers.rounded(before)),
            "ece_after": held.isEmpty ? .null : .double(Answers.rounded(after)),
        ]
        switch self {
        case .softmax(let temperature):
            json["method"] = "temperature"
            json["form"] = "softmax over the per-label scores"
            json["temperature"] = .double(Answers.rounded(temperature))
        case .binary(let temperature):
            json["method"] = "temperature"
            json["form"] = "logit of the confidence"
            json["temperature"] = .double(Answers.rounded(temperature))
        case .isotonic(let map):
            json["method"] = "isotonic"
            json["form"] = "non-decreasing map, linear between points"
            json["x"] = .array(map.x.map { .double(Answers.rounded($0)) })
            json["y"] = .array(map.y.map { .double(Answers.rounded($0)) })
        case .identity:
            json["method"] = "none"
            json["form"] = "fewer than two gold rows to fit on: confidences unchanged"
        }
        return .object(json)
    }
}

/// `calibrate`'s options: the classify stage whose confidence it calibrates, how, and the share of
/// gold rows the map is fitted on.
public struct CalibrateOptions: ParsedStageOptions {
    public enum Method: String, Sendable, CaseIterable {
        case temperature, isotonic
    }

    public var stage: String
    public var method = Method.temperature
    public var split = 0.5

    package static let keys = ["stage", "method", "split"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> CalibrateOptions {
        guard try node.child("gold_field") != nil else {
            throw node.error("a calibrate stage needs 'gold_field': the gold labels it fits and measures on.")
        }
        let splitNode = try node.child("split")
        let split = try splitNode?.double() ?? 0.5
        guard split > 0 && split < 1 else {
            throw splitNode!.error("split is the share of gold rows the map is fitted on: between 0 and 1.")
        }
        return CalibrateOptions(
            stage: try node.require("stage").string(),
            method: Method(
                rawValue: try node.child("method")?.oneOf(Method.allCases.map(\.rawValue)) ?? "temperature")!,
            split: split)
    }

    public var resolvedJSON: [String: JSONValue] {
        ["stage": .string(stage), "method": .string(method.rawValue), "split": .double(split)]
    }
}
