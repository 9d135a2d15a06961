import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel

/// A run's labels for people to review (`labelforge export`): Label Studio tasks with the matching
/// labeling config, Argilla records with their dataset settings, or plain JSONL.
///
/// A row is exported with the input fields `dataset.jsonl` recorded for it and the stage's output as
/// the model's prediction (Label Studio) or suggestion (Argilla), under the name `<stage>` (classify,
/// caption, generate) or `<stage>.<attribute|criterion>` (tag, rubric_score).
public struct ReviewExport: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case labelStudio = "label-studio"
        case argilla
        case jsonl
        /// The whole run as a Hugging Face dataset folder (`HFExport`), not a review task.
        case hf
    }

    /// How images travel: as the path the dataset gives (resolved against its directory), or inline.
    public enum Images: String, Sendable, CaseIterable {
        case path
        case dataURL = "data-url"
    }

    /// One question a reviewer answers about a row: a name, its kind and the allowed values.
    struct Question: Equatable {
        enum Kind: Equatable {
            case single([String])
            case multiple([String])
            case text
            case rating(min: Int, max: Int)
        }

        var name: String
        var kind: Kind
        /// The output field holding the model's answer, and (classify) its confidence.
        var outputPath: String
        var scorePath: String?
    }

    public var run: RunArtifacts
    public var stage: String
    var questions: [Question]
    var imageFields: [String]
    var modelVersion: String
    /// Gold fields the stage is scored against: not shown to reviewers, whose answers they are.
    var goldFields: Set<String>

    /// - Throws: `LabelForgeError.invalidConfig` when the run has no such stage or its type has
    ///   nothing to review (filter, dedup, embed).
    public init(run: RunArtifacts, stage: String?) throws {
        let stages = run.resolvedConfig["stages"]?.arrayValue ?? []
        let reviewable = ["classify", "tag", "caption", "generate", "rubric_score"]
        let found: JSONValue? =
            if let stage { stages.first { $0["id"]?.stringValue == stage } } else {
                stages.first { reviewable.contains($0["type"]?.stringValue ?? "") }
            }
        guard let config = found, let id = config["id"]?.stringValue, let type = config["type"]?.stringValue else {
            throw LabelForgeError(
                .invalidConfig,
                "\(run.directory) has no stage \(stage.map { "'\($0)'" } ?? "to review"); its stages: "
                    + run.stageIDs.joined(separator: ", ") + ".")
        }
        guard reviewable.contains(type) else {
            throw LabelForgeError(
                .invalidConfig,
                "stage '\(id)' is a \(type) stage: there is nothing for a person to label. Export one of the "
                    + reviewable.joined(separator: ", ") + " stages with --stage.")
        }
        self.run = run
        self.stage = id
        questions = Self.questions(stage: id, type: type, config: config)
        imageFields = config["images"]?.arrayValue?.compactMap(\.stringValue) ?? []
        goldFields = Set(
            [config["gold_field"]?.stringValue].compactMap { $0 }
                + (config["attributes"]?.arrayValue ?? []).compactMap { $0["gold_field"]?.stringValue })
        let engine = config["engine"]?.stringValue
        let model = run.run.models.first { $0.engine == engine } ?? run.run.models.first
        modelVersion =
            "\(model?.id ?? "model")@\(ContentHash.unprefixed(model?.revision ?? "").prefix(12))"
            + "+\(run.run.promptPack.name)@\(run.run.promptPack.version)"
    }

    static func questions(stage: String, type: String, config: JSONValue) -> [Question] {
        switch type {
        case "classify":
            let labels = config["labels"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            return [Question(name: stage, kind: .single(labels), outputPath: "label", scorePath: "confidence")]
        case "tag":
            return (config["attributes"]?.arrayValue ?? []).compactMap { attribute in
                guard let name = attribute["name"]?.stringValue else { return nil }
                // A value may be described (`{name, description}`): its name is the choice.
                let values =
                    attribute["values"]?.arrayValue?.compactMap { $0.stringValue ?? $0["name"]?.stringValue } ?? []
                let kind: Question.Kind
                switch attribute["type"]?.stringValue {
                case "enum": kind = .single(values)
                case "list": kind = .multiple(values)
                case "boolean": kind = .single(["true", "false"])
                default: kind = .text
                }
                return Question(name: "\(stage).\(name)", kind: kind, outputPath: name)
            }
        case "rubric_score" where config["mode"]?.stringValue == "pairwise":
            return (config["criteria"]?.arrayValue ?? []).compactMap { criterion in
                criterion["name"]?.stringValue.map {
                    Question(name: "\(stage).\($0)", kind: .single(["a", "b", "tie"]), outputPath: "winner.\($0)")
                }
            }
        case "rubric_score":
            return (config["criteria"]?.arrayValue ?? []).compactMap { criterion in
                guard let name = criterion["name"]?.stringValue else { return nil }
                return Question(
                    name: "\(stage).\(name)",
                    kind: .rating(
                        min: criterion["scale"]?["min"]?.intValue ?? 1, max: criterion["scale"]?["max"]?.intValue ?? 5),
                    outputPath: "scores.\(name)")
            }
        case "caption":
            return [Question(name: stage, kind: .text, outputPath: "caption")]
        default:
            return [Question(name: stage, kind: .text, outputPath: "text")]
        }
    }

    /// One exported row: its ID, input fields and the stage's output.
    public struct Row: Sendable {
        public var rowID: String
        public var input: [String: JSONValue]
        public var output: [String: JSONValue]
    }

    /// The order rows are exported in.
    public enum Order: String, Sendable, CaseIterable {
        /// As the run wrote them (input order).
        case input
        /// Least confident first (`confidence` ascending, a tagger's least per attribute; rows without
        /// one first), so a reviewer's first hour goes where the labels are likeliest wrong. Ties keep
        /// input order.
        case confidence
    }

    /// A row's `confidence`; for a stage that gives one per attribute (`tag` with `method:
    /// embedding`), the least of them.
    static func confidence(of output: [String: JSONValue]) -> Double? {
        guard let value = output["confidence"] else { return nil }
        return value.doubleValue ?? value.objectValue?.values.compactMap(\.doubleValue).min()
    }

    /// `rows(…)` ordered and cut: `order`, then the first `limit` rows.
    public func rows(
        disagreeingWith other: RunArtifacts? = nil, acrossRoutes: Bool = false, sample: Int? = nil, seed: UInt64 = 0,
        order: Order, limit: Int? = nil
    ) throws -> [Row] {
        var rows = try rows(disagreeingWith: other, sample: nil, seed: seed)
        if acrossRoutes {
            guard rows.isEmpty || rows.contains(where: { $0.output["route"] != nil }) else {
                throw LabelForgeError(
                    .invalidConfig,
                    "stage '\(stage)' is not a cascade (its outputs have no 'route'): --only-route-disagreements "
                        + "needs a classify stage with a fallback.")
            }
            rows = rows.filter {
                $0.output["embedding_label"] != nil && $0.output["embedding_label"] != $0.output["label"]
            }
        }
        if let sample { rows = Self.sampled(rows, sample, seed: seed) }
        if order == .confidence {
            // A stable sort: `enumerated` breaks ties by input order.
            rows = rows.enumerated().sorted { a, b in
                let x = Self.confidence(of: a.element.output) ?? -1
                let y = Self.confidence(of: b.element.output) ?? -1
                return x != y ? x < y : a.offset < b.offset
            }.map(\.element)
        }
        return limit.map { Array(rows.prefix($0)) } ?? rows
    }

    /// The rows to export, in output order: rows the stage labeled (not failed ones), restricted to
    /// those whose output differs from `other`'s (when given), then a seeded sample of `sample` rows.
    public func rows(disagreeingWith other: RunArtifacts? = nil, sample: Int? = nil, seed: UInt64 = 0) throws -> [Row] {
        let inputs = try Self.inputs(of: run)
        var otherLines: [String: String]?
        if let other {
            var lines: [String: String] = [:]
            let reader = try other.outputs(stage: stage)
            while let (rowID, _, line) = try reader.next() { lines[rowID] = line }
            otherLines = lines
        }
        var rows: [Row] = []
        let outputs = try run.outputs(stage: stage)
        var parents: [String: String] = [:]
        var lineage: [String: String]?
        while let (rowID, record, line) = try outputs.next() {
            if let parent = record["parent_row_id"]?.stringValue { parents[rowID] = parent }
            guard record["error"] == nil else { continue }
            if let otherLines, otherLines[rowID] == line || otherLines[rowID] == nil { continue }
            // A fanned-out row shows its source row's fields.
            var source = rowID
            if inputs[source] == nil && parents[source] == nil && lineage == nil { lineage = Self.lineage(of: run) }
            while inputs[source] == nil, let parent = parents[source] ?? lineage?[source] { source = parent }
            rows.append(Row(rowID: rowID, input: inputs[source] ?? [:], output: record))
        }
        guard let sample else { return rows }
        return Self.sampled(rows, sample, seed: seed)
    }

    /// A seeded sample that does not depend on the order rows come in: the `sample` smallest hashes
    /// of (seed, row ID), then back in output order.
    static func sampled(_ rows: [Row], _ sample: Int, seed: UInt64) -> [Row] {
        guard sample < rows.count else { return rows }
        let order = Dictionary(uniqueKeysWithValues: rows.enumerated().map { ($1.rowID, $0) })
        return rows.sorted {
            ContentHash.hex(Data("\(seed)\u{0}\($0.rowID)".utf8))
                < ContentHash.hex(Data("\(seed)\u{0}\($1.rowID)".utf8))
        }
        .prefix(sample).sorted { order[$0.rowID]! < order[$1.rowID]! }
    }

    /// Every source row's input fields by row ID: from the run's dataset file, read again with the
    /// run's row IDs (so rows a filter dropped have theirs too), else from `dataset.jsonl`.
    static func inputs(of run: RunArtifacts) throws -> [String: [String: JSONValue]] {
        var inputs: [String: [String: JSONValue]] = [:]
        let joined = try OutputReader(path: run.directory + "/dataset.jsonl")
        while let (rowID, record, _) = try joined.next() { inputs[rowID] = record["input"]?.objectValue ?? [:] }
        guard let config = try? RunConfig.load(file: run.directory + "/config.resolved.yaml", resolved: true),
            FileManager.default.fileExists(atPath: config.dataset.path)
        else { return inputs }
        let images = config.dataset.images
        let idField = config.dataset.idField
        func records() throws -> some IteratorProtocol<LoadedRecord> {
            let reader = try config.dataset.reader()
            var read = 0
            return AnyIterator {
                guard read < run.run.dataset.rows, let record = try? reader.next() else { return nil }
                read += 1
                return images.load(record)
            }
        }
        var repeats = RowIDRepeats()
        var first = try records()
        while let loaded = first.next() {
            repeats.add(RowIDAssigner.baseID(for: loaded.identity(idField: idField), idField: idField))
        }
        var assigner = RowIDAssigner(idField: idField, repeats: repeats.finished())
        var second = try records()
        while let loaded = second.next() {
            let rowID = assigner.assign(loaded.identity(idField: idField))
            if inputs[rowID] == nil { inputs[rowID] = loaded.recorded }
        }
        return inputs
    }

    /// Every fanned-out row's parent, from the manifest (read once, when an output line lacks it).
    static func lineage(of run: RunArtifacts) -> [String: String] {
        var parents: [String: String] = [:]
        try? run.manifest().forEachRow { if let parent = $0.parentRowID { parents[$0.rowID] = parent } }
        return parents
    }

    /// The object a Label Studio result points at (`toName`): the first image, else `text` when
    /// the rows have it, else the first text field.
    func objectName(_ rows: [Row]) -> (name: String, isImage: Bool) {
        if let image = imageFields.first { return (image, true) }
        let fields = Set(rows.flatMap { $0.input.filter { $0.value.stringValue != nil }.keys })
        return (fields.contains("text") ? "text" : fields.sorted().first ?? "text", false)
    }

    /// The values a reviewer sees for a row: its input fields as text, images as paths or data URLs.
    func data(_ row: Row, images: Images) -> [String: JSONValue] {
        var data: [String: JSONValue] = ["row_id": .string(row.rowID)]
        for (key, value) in row.input where !goldFields.contains(key) {
            data[key] = value.stringValue.map(JSONValue.string) ?? .string(value.textForm)
        }
        let datasetDir = ((run.run.dataset.path as NSString).deletingLastPathComponent as NSString)
        for field in imageFields {
            guard let path = row.input[field]?.stringValue, !path.hasPrefix("sha256:") else { continue }
            let resolved = path.hasPrefix("/") ? path : datasetDir.appendingPathComponent(path)
            switch images {
            case .path: data[field] = .string(resolved)
            case .dataURL:
                if let bytes = FileManager.default.contents(atPath: resolved) {
                    let type =
                        ["png": "image/png", "gif": "image/gif", "webp": "image/webp"][
                            (resolved as NSString).pathExtension.lowercased()] ?? "image/jpeg"
                    data[field] = .string("data:\(type);base64," + bytes.base64EncodedString())
                }
            }
        }
        return data
    }

    /// The model's answer to a question for a row, as the question's kind holds it.
    static func answer(_ question: Question, in output: [String: JSONValue]) -> JSONValue? {
        let value = JSONValue.object(output).leaves(intoArrays: false)[question.outputPath]
        guard let value, !value.isNull else { return nil }
        switch question.kind {
        case .single: return .string(value.textForm)
        case .multiple: return .array((value.arrayValue ?? [value]).map { .string($0.textForm) })
        case .text: return .string(value.textForm)
        case .rating: return value.intValue.map { .int(Int64($0)) }
        }
    }

    // MARK: Label Studio

    /// Label Studio tasks (its import JSON): `data`, and `predictions` with `model_version`, `score`
    /// and one result per question.
    public func labelStudioTasks(_ rows: [Row], images: Images = .path) -> JSONValue {
        let object = objectName(rows)
        return .array(
            rows.map { row in
                var results: [JSONValue] = []
                for question in questions {
                    guard let answer = Self.answer(question, in: row.output) else { continue }
                    let (type, value): (String, JSONValue)
                    switch question.kind {
                    case .single: (type, value) = ("choices", ["choices": [answer]])
                    case .multiple: (type, value) = ("choices", ["choices": answer])
                    case .text: (type, value) = ("textarea", ["text": [answer]])
                    case .rating: (type, value) = ("rating", ["rating": answer])
                    }
                    results.append([
                        "from_name": .string(question.name), "to_name": .string(object.name), "type": .string(type),
                        "value": value,
                    ])
                }
                var prediction: [String: JSONValue] = [
                    "model_version": .string(modelVersion), "result": .array(results),
                ]
                if let path = questions.first?.scorePath, let score = row.output[path]?.doubleValue {
                    prediction["score"] = .double(score)
                }
                return ["data": .object(data(row, images: images)), "predictions": [.object(prediction)]]
            })
    }

    /// The labeling config (XML) that matches the tasks: the rows' fields, then one control per question.
    public func labelStudioConfig(_ rows: [Row]) -> String {
        let object = objectName(rows)
        func escaped(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
                .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var lines = ["<View>"]
        lines.append(
            object.isImage
                ? "  <Image name=\"\(escaped(object.name))\" value=\"$\(escaped(object.name))\"/>"
                : "  <Text name=\"\(escaped(object.name))\" value=\"$\(escaped(object.name))\"/>")
        for question in questions {
            let head = "name=\"\(escaped(question.name))\" toName=\"\(escaped(object.name))\""
            switch question.kind {
            case .single(let values), .multiple(let values):
                let choice = question.kind == .single(values) ? "single" : "multiple"
                lines.append("  <Header value=\"\(escaped(question.name))\"/>")
                lines.append("  <Choices \(head) choice=\"\(choice)\">")
                for value in values { lines.append("    <Choice value=\"\(escaped(value))\"/>") }
                lines.append("  </Choices>")
            case .text:
                lines.append("  <Header value=\"\(escaped(question.name))\"/>")
                lines.append("  <TextArea \(head) editable=\"true\" maxSubmissions=\"1\"/>")
            case .rating(_, let max):
                lines.append("  <Header value=\"\(escaped(question.name))\"/>")
                lines.append("  <Rating \(head) maxRating=\"\(max)\"/>")
            }
        }
        lines.append("</View>")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Argilla

    /// Argilla dataset settings: the rows' text fields and one question per stage question.
    public func argillaSettings(_ rows: [Row]) -> JSONValue {
        let fields = Set(rows.flatMap { $0.input.keys }).subtracting(goldFields).sorted()
        return [
            "fields": .array(fields.map { ["name": .string($0), "type": "text", "required": false] }),
            "questions": .array(
                questions.map { question in
                    switch question.kind {
                    case .single(let values):
                        return [
                            "name": .string(question.name), "type": "label_selection",
                            "labels": .array(values.map(JSONValue.string)),
                        ]
                    case .multiple(let values):
                        return [
                            "name": .string(question.name), "type": "multi_label_selection",
                            "labels": .array(values.map(JSONValue.string)),
                        ]
                    case .text:
                        return ["name": .string(question.name), "type": "text"]
                    case .rating(let min, let max):
                        return [
                            "name": .string(question.name), "type": "rating",
                            "values": .array((min...max).map { .int(Int64($0)) }),
                        ]
                    }
                }),
            "metadata": [
                ["name": "row_id", "type": "terms"], ["name": "run_id", "type": "terms"],
                ["name": "stage", "type": "terms"],
            ],
        ]
    }

    /// Argilla records: `id`, `fields`, `suggestions` (value, score, agent) and `metadata`.
    public func argillaRecords(_ rows: [Row], images: Images = .path) -> [JSONValue] {
        rows.map { row in
            var fields = data(row, images: images)
            fields["row_id"] = nil
            let suggestions: [JSONValue] = questions.compactMap { question in
                guard let answer = Self.answer(question, in: row.output) else { return nil }
                var suggestion: [String: JSONValue] = [
                    "question_name": .string(question.name), "value": answer, "agent": .string(modelVersion),
                ]
                if let path = question.scorePath, let score = row.output[path]?.doubleValue {
                    suggestion["score"] = .double(score)
                }
                return .object(suggestion)
            }
            return [
                "id": .string(row.rowID), "fields": .object(fields), "suggestions": .array(suggestions),
                "metadata": ["row_id": .string(row.rowID), "run_id": .string(run.runID), "stage": .string(stage)],
            ]
        }
    }

    // MARK: JSONL

    /// One line per row: its ID, input fields and the stage's output, as LabelForge wrote them.
    public func jsonlRecords(_ rows: [Row]) -> [JSONValue] {
        rows.map {
            [
                "row_id": .string($0.rowID), "input": .object($0.input), "output": .object($0.output),
                "model_version": .string(modelVersion), "stage": .string(stage),
            ]
        }
    }
}

/// Human answers read back from a Label Studio export (`labelforge import-review`).
public enum ReviewImport {
    /// The rows of a Label Studio JSON export, as dataset rows: each task's `data` plus one
    /// `<prefix><question>` field per answered question (dots become underscores). A task's first
    /// annotation that was not cancelled wins; tasks with none are skipped and counted.
    /// - Throws: `LabelForgeError.invalidJSON` naming the file when it is not a list of tasks.
    public static func rows(labelStudioExport path: String, prefix: String = "gold_") throws -> (
        rows: [JSONValue], skipped: Int
    ) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabelForgeError(.fileNotFound, "Cannot read \(path).")
        }
        guard let tasks = try JSONValue.parse(data).arrayValue else {
            throw LabelForgeError(.invalidJSON, "\(path): a Label Studio export is a JSON list of tasks.")
        }
        var rows: [JSONValue] = []
        var skipped = 0
        for (index, task) in tasks.enumerated() {
            guard var row = task["data"]?.objectValue else {
                throw LabelForgeError(.invalidJSON, "\(path): task \(index) has no 'data' object.")
            }
            let annotation = task["annotations"]?.arrayValue?.first {
                $0["was_cancelled"]?.boolValue != true && !($0["result"]?.arrayValue ?? []).isEmpty
            }
            guard let annotation else {
                skipped += 1
                continue
            }
            // Several results of one control (e.g. rectangles) become a list, in order.
            var answers: [(name: String, values: [JSONValue])] = []
            for result in annotation["result"]?.arrayValue ?? [] {
                guard let name = result["from_name"]?.stringValue, let value = result["value"] else { continue }
                let answer = Self.answer(value, type: result["type"]?.stringValue)
                if let index = answers.firstIndex(where: { $0.name == name }) {
                    answers[index].values.append(answer)
                } else {
                    answers.append((name, [answer]))
                }
            }
            for (name, values) in answers {
                row[prefix + name.replacingOccurrences(of: ".", with: "_")] =
                    values.count == 1 ? values[0] : .array(values)
            }
            rows.append(.object(row))
        }
        return (rows, skipped)
    }

    /// A result's answer: a single choice as a string (several as a list), a text, a rating;
    /// other controls (regions, spans) keep their whole `value`.
    static func answer(_ value: JSONValue, type: String?) -> JSONValue {
        if let choices = value["choices"]?.arrayValue { return choices.count == 1 ? choices[0] : .array(choices) }
        if let text = value["text"]?.arrayValue { return text.count == 1 ? text[0] : .array(text) }
        if let rating = value["rating"] { return rating }
        if type == "labels", let labels = value["labels"]?.arrayValue, value["start"] == nil {
            return labels.count == 1 ? labels[0] : .array(labels)
        }
        return value
    }
}
