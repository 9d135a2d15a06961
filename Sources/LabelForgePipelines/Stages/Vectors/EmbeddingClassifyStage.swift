import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel
import LabelForgeLLM
import LabelForgeVectors

/// `classify` with `method: embedding`: the label whose text is nearest the row's text, by cosine
/// similarity of their vectors from an engine with `task: embed` (zero-shot, as sentence-transformers
/// users do it); or, with `examples:`, the class whose labeled examples are nearest (few-shot: class
/// prototypes, or a vote of the nearest examples). No prompt pack and no chat model are needed.
///
/// A label's text is `label_prefix` plus its description, or its name where it has none; the row's
/// and each example's text is `prefix` plus its field. Every text is its own cached embeddings
/// request. The label and example vectors are asked for once per run and shared by every row (they
/// are in no row's request keys); each row lists its own request. `confidence` is the softmax of the
/// similarities divided by `temperature` (for `vote: knn`, the winner's share of the vote); `scores`
/// holds each label's similarity (vote share). Ties go to the label listed first. An example whose
/// text is the row's own is left out for that row, so a gold set can label itself (leave-one-out).
public struct EmbeddingClassifyStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: ClassifyOptions
    /// 2: a row whose text is empty fails with `empty_text` (version 1 labeled it).
    public let version = 2
    public let outputFields = ["label", "confidence", "scores"]
    public let outputTypes: [String: ColumnType] = [
        "label": .string, "confidence": .float64, "scores": .members(.float64),
    ]

    public init(config: RunConfig.Stage, options: ClassifyOptions) {
        self.config = config
        self.options = options
    }

    public var optionReferences: [String] { options.field.map { [$0] } ?? [] }
    public var truncation: Truncation? { options.truncate }
    public var engineUses: [EngineUse] { [EngineUse(engine: config.engine, task: .embed, batchSize: 32)] }
    public var goldPairs: [(output: String, gold: String)] { config.goldField.map { [("label", $0)] } ?? [] }

    var classifier: EmbeddingClassifier {
        EmbeddingClassifier(
            labels: options.labels, labelPrefix: options.labelPrefix, prefix: options.prefix,
            temperature: options.temperature, pool: options.examples)
    }

    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let field = options.field ?? ""
        guard let value = row.value(at: field), !value.isNull else {
            return .failed(
                StageFailure(errorClass: "missing_field", message: "the row has no text in '\(field)' to classify"))
        }
        let text = value.textForm
        if let empty = EmbeddingClassifier.emptyText(text, field: field) { return .failed(empty) }
        if let stale = options.examples?.stale {
            return .failed(StageFailure(errorClass: "examples_changed", message: stale))
        }
        let engine = try context.endpoint(.embed)
        let limit = context.truncationLimit(.embed)
        let request = PreparedRequest(
            .embedding(text: options.prefix + text, modelID: engine.modelID, truncate: limit), on: engine)
        let classifier = self.classifier
        // The label and example texts' vectors: claimed before the row's own request, so the row
        // that sends them lists them first.
        let shared = context.claimShared(
            "references", on: engine,
            requests: {
                classifier.referenceTexts.map {
                    PreparedRequest(.embedding(text: $0, modelID: engine.modelID, truncate: limit), on: engine)
                }
            },
            derive: { answers in classifier.references(try answers.map { try $0.singleVector().vector }) })
        do {
            let answer = try await context.send(request, on: engine).singleVector()
            let references = try await shared.value()
            context.countTokens(in: answer.promptTokens)
            let choice = classifier.choose(answer.vector, text: text, references: references)
            return StageResult(
                output: [
                    "label": .string(options.labels[choice.best].name),
                    "confidence": .double(Answers.rounded(choice.confidence)),
                    "scores": choice.scoresJSON(options.labels),
                ], truncated: answer.truncated ? 1 : 0)
        } catch {
            return .failed(StageFailure(error))
        }
    }
}

/// The label nearest a text: among labels known by their texts (zero-shot), or by labeled examples
/// (few-shot: class prototypes, or a vote of the nearest examples). What `classify` and `tag` do
/// with `method: embedding`.
struct EmbeddingClassifier: Sendable {
    var labels: [RunConfig.Label]
    var labelPrefix: String
    var prefix: String
    var temperature: Double
    var pool: ExamplePool?

    /// A text with nothing but white space has no meaning to compare: its row fails (`empty_text`)
    /// rather than take whichever label an empty vector is nearest.
    static func emptyText(_ text: String, field: String) -> StageFailure? {
        guard text.allSatisfy(\.isWhitespace) else { return nil }
        return StageFailure(
            errorClass: "empty_text", message: "the row's '\(field)' is empty: there is no text to label")
    }

    /// The texts each label is known by, in label order.
    var labelTexts: [String] { labels.map { labelPrefix + ($0.description ?? $0.name) } }

    /// The texts whose vectors rows are compared with: each label's, then each example's.
    var referenceTexts: [String] { labelTexts + (pool?.examples.map { prefix + $0.text } ?? []) }

    /// The references from the vectors of `referenceTexts`, in that order.
    func references(_ vectors: [[Float]]) -> References {
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1.name, $0) })
        return References(
            vectors: vectors, labelCount: labels.count, classes: pool?.examples.map { index[$0.label]! } ?? [])
    }

    /// The chosen label (its index), its confidence, and each label's score.
    struct Choice {
        var best: Int
        var confidence: Double
        var scores: [Double]

        func scoresJSON(_ labels: [RunConfig.Label]) -> JSONValue {
            .object(
                Dictionary(
                    uniqueKeysWithValues: zip(labels.map(\.name), scores.map { .double(Answers.rounded($0)) })))
        }
    }

    /// The label of a row's vector; `text` is the row's own text (examples with it are left out).
    func choose(_ vector: [Float], text: String, references: References) -> Choice {
        guard let pool else { return choice(similarities: references.labels.map { VectorSearch.cosine(vector, $0) }) }
        return fewShot(vector, text: text, pool: pool, references: references)
    }

    /// The softmax of the similarities divided by `temperature` gives the confidence.
    func choice(similarities: [Double]) -> Choice {
        let weights = Calibration.softmax(similarities, temperature: temperature)
        let best = Self.first(maximumOf: similarities)
        return Choice(best: best, confidence: weights[best], scores: similarities)
    }

    /// The label by the examples: the nearest class prototype, or the nearest examples' vote. The
    /// examples whose text is the row's own take no part.
    func fewShot(_ vector: [Float], text: String, pool: ExamplePool, references: References) -> Choice {
        let row = References.normalized(vector)
        let leftOut = pool.indices(ofText: text)
        switch pool.vote {
        case .prototype:
            var sums = references.classSums
            var counts = references.classCounts
            for i in leftOut {
                let c = references.classes[i]
                counts[c] -= 1
                for d in row.indices { sums[c][d] -= references.examples[i][d] }
            }
            // A class without examples is known by its label's text, as zero-shot.
            let similarities = labels.indices.map { c in
                counts[c] > 0 ? References.cosine(row, sums[c]) : VectorSearch.cosine(vector, references.labels[c])
            }
            return choice(similarities: similarities)
        case .knn:
            let nearest = pool.examples.indices.filter { !leftOut.contains($0) }
                .map { (index: $0, similarity: References.dot(row, references.examples[$0])) }
                .sorted { ($0.similarity, $1.index) > ($1.similarity, $0.index) }
                .prefix(pool.neighbours)
            var votes = [Double](repeating: 0, count: labels.count)
            let top = nearest.first?.similarity ?? 0
            for neighbour in nearest {
                votes[references.classes[neighbour.index]] += exp((neighbour.similarity - top) / temperature)
            }
            let total = votes.reduce(0, +)
            // Every example left out (the pool is the row's own text): the labels' texts decide.
            guard total > 0 else {
                return choice(similarities: references.labels.map { VectorSearch.cosine(vector, $0) })
            }
            let shares = votes.map { $0 / total }
            let best = Self.first(maximumOf: shares)
            return Choice(best: best, confidence: shares[best], scores: shares)
        }
    }

    /// The index of the first of equal maxima (`max(by:)` keeps the element it holds unless
    /// another is greater).
    static func first(maximumOf values: [Double]) -> Int { values.indices.max { values[$0] < values[$1] }! }
}

/// The vectors rows are compared with, computed once per run: each label's (as the engine gave
/// it), each example's (unit length, in double precision), and each class's sum of its examples'.
struct References: Sendable {
    var labels: [[Float]]
    var examples: [[Double]]
    /// Each example's class (label index).
    var classes: [Int]
    var classSums: [[Double]]
    var classCounts: [Int]

    init(vectors: [[Float]], labelCount: Int, classes: [Int]) {
        labels = Array(vectors[..<labelCount])
        examples = vectors[labelCount...].map(Self.normalized)
        self.classes = classes
        let dimension = labels.first?.count ?? 0
        classSums = [[Double]](repeating: [Double](repeating: 0, count: dimension), count: labelCount)
        classCounts = [Int](repeating: 0, count: labelCount)
        for (i, c) in classes.enumerated() {
            classCounts[c] += 1
            for d in 0..<dimension { classSums[c][d] += examples[i][d] }
        }
    }

    static func normalized(_ vector: [Float]) -> [Double] {
        let values = vector.map(Double.init)
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm == 0 ? values : values.map { $0 / norm }
    }

    static func dot(_ x: [Double], _ y: [Double]) -> Double {
        var sum = 0.0
        for i in x.indices { sum += x[i] * y[i] }
        return sum
    }

    /// Cosine similarity of a unit vector and any vector.
    static func cosine(_ unit: [Double], _ y: [Double]) -> Double {
        let norm = dot(y, y).squareRoot()
        return norm == 0 ? 0 : dot(unit, y) / norm
    }
}
