import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `tag` with `method: embedding`: each enum and boolean attribute labeled as `classify` with
/// `method: embedding` labels (`EmbeddingClassifier`), from one vector of the row's text. An enum's
/// labels are its values, known by their descriptions (`values: [{name, description}]`) or names; a
/// boolean's are `true` and `false`, known by their descriptions or by examples. With `examples:`,
/// each attribute reads its label from the pool's field named as its `gold_field` (else its name).
///
/// Outputs each attribute's value (a string for an enum, `true` or `false` for a boolean, as
/// `method: llm` gives them), `confidence` (attribute → the chosen value's confidence) and `scores`
/// (attribute → value → score).
public struct EmbeddingTagStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: TagOptions
    let embedding: EmbeddingTagOptions
    /// Every attribute's reference texts, each once, in the order the attributes first list them.
    let referenceTexts: [String]
    public let version = 1

    public init(config: RunConfig.Stage, options: TagOptions, embedding: EmbeddingTagOptions) {
        self.config = config
        self.options = options
        self.embedding = embedding
        var seen: Set<String> = []
        referenceTexts = embedding.classifiers.flatMap(\.referenceTexts).filter { seen.insert($0).inserted }
    }

    public var outputFields: [String] { options.attributes.map(\.name) + ["confidence", "scores"] }
    public var outputTypes: [String: ColumnType] {
        Dictionary(options.attributes.map { ($0.name, $0.columnType) }) { first, _ in first }.merging([
            "confidence": .members(.float64), "scores": .members(.members(.float64)),
        ]) { first, _ in first }
    }
    public var optionReferences: [String] { [embedding.match.field] }
    public var truncation: Truncation? { embedding.match.truncate }
    public var engineUses: [EngineUse] { [EngineUse(engine: config.engine, task: .embed, batchSize: 32)] }
    public var goldPairs: [(output: String, gold: String)] {
        options.attributes.compactMap { a in a.goldField.map { (a.name, $0) } }
    }

    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let field = embedding.match.field
        guard let value = row.value(at: field), !value.isNull else {
            return .failed(
                StageFailure(errorClass: "missing_field", message: "the row has no text in '\(field)' to tag"))
        }
        let text = value.textForm
        if let empty = EmbeddingClassifier.emptyText(text, field: field) { return .failed(empty) }
        if let stale = embedding.classifiers.lazy.compactMap({ $0.pool?.stale }).first {
            return .failed(StageFailure(errorClass: "examples_changed", message: stale))
        }
        let engine = try context.endpoint(.embed)
        let limit = context.truncationLimit(.embed)
        let request = PreparedRequest(
            .embedding(text: embedding.match.prefix + text, modelID: engine.modelID, truncate: limit), on: engine)
        let (texts, classifiers) = (referenceTexts, embedding.classifiers)
        let shared = context.claimShared(
            "references", on: engine,
            requests: {
                texts.map {
                    PreparedRequest(.embedding(text: $0, modelID: engine.modelID, truncate: limit), on: engine)
                }
            },
            derive: { answers in
                let vectors = Dictionary(
                    uniqueKeysWithValues: zip(texts, try answers.map { try $0.singleVector().vector }))
                return classifiers.map { $0.references($0.referenceTexts.map { vectors[$0]! }) }
            })
        do {
            let answer = try await context.send(request, on: engine).singleVector()
            let references = try await shared.value()
            context.countTokens(in: answer.promptTokens)
            var output: [String: JSONValue] = [:]
            var confidences: [String: JSONValue] = [:]
            var scores: [String: JSONValue] = [:]
            for (i, attribute) in options.attributes.enumerated() {
                let classifier = classifiers[i]
                let choice = classifier.choose(answer.vector, text: text, references: references[i])
                let name = classifier.labels[choice.best].name
                output[attribute.name] = attribute.type == "boolean" ? .bool(name == "true") : .string(name)
                confidences[attribute.name] = .double(Answers.rounded(choice.confidence))
                scores[attribute.name] = choice.scoresJSON(classifier.labels)
            }
            output["confidence"] = .object(confidences)
            output["scores"] = .object(scores)
            return StageResult(output: output, truncated: answer.truncated ? 1 : 0)
        } catch {
            return .failed(StageFailure(error))
        }
    }
}

/// `tag`'s options under `method: embedding`: how texts are compared, and one classifier per
/// attribute (in attribute order).
public struct EmbeddingTagOptions: Sendable {
    public var match: EmbeddingMatch
    var classifiers: [EmbeddingClassifier]

    /// Outputs besides the attributes, which no attribute may be named.
    static let reservedNames = ["confidence", "scores"]

    static func parse(_ node: ConfigReader, attributes: [RunConfig.Attribute], _ context: StageParseContext) throws
        -> EmbeddingTagOptions
    {
        let match = try EmbeddingMatch.parse(node, context, type: "tag")
        let examples = try node.child("examples")
        // One pool for every attribute: opened, hashed and read once.
        let opened = try examples.map { node in
            let file = try PoolFile.open(node, resolved: context.resolved)
            return (file: file, records: try file.records(field: try node.child("field")?.string() ?? match.field))
        }
        var classifiers: [EmbeddingClassifier] = []
        for (attribute, item) in zip(attributes, try node.require("attributes").items()) {
            guard attribute.type == "enum" || attribute.type == "boolean" else {
                throw item.error(
                    "attribute '\(attribute.name)' is a \(attribute.type): method: embedding labels enum and boolean "
                        + "attributes only. Label it in a tag stage with method: llm.")
            }
            guard !reservedNames.contains(attribute.name) else {
                throw item.error(
                    "an attribute of a tag stage with method: embedding cannot be named '\(attribute.name)', which "
                        + "is one of its outputs (\(reservedNames.joined(separator: ", "))).")
            }
            let names = attribute.type == "boolean" ? ["true", "false"] : attribute.values
            if attribute.type == "boolean", examples == nil,
                !names.allSatisfy({ attribute.valueDescriptions[$0] != nil })
            {
                throw item.error(
                    "boolean attribute '\(attribute.name)' has nothing to compare rows with: give examples: (a "
                        + "labeled pool) or describe both values, values: [{name: true, description: …}, "
                        + "{name: false, description: …}].")
            }
            let pool = try examples.map {
                try ExamplePool.parse(
                    $0, labels: names, field: match.field, resolved: context.resolved,
                    attribute: (attribute.name, attribute.goldField ?? attribute.name), opened: opened)
            }
            classifiers.append(
                EmbeddingClassifier(
                    labels: names.map { RunConfig.Label(name: $0, description: attribute.valueDescriptions[$0]) },
                    labelPrefix: match.labelPrefix, prefix: match.prefix, temperature: match.temperature, pool: pool))
        }
        return EmbeddingTagOptions(match: match, classifiers: classifiers)
    }

    var resolvedJSON: [String: JSONValue] {
        var json = match.resolvedJSON
        // The pool as every attribute reads it; each attribute's label field is its own.
        if var pool = classifiers.first?.pool?.resolvedJSON.objectValue {
            pool["label_field"] = nil
            json["examples"] = .object(pool)
        }
        return json
    }
}
