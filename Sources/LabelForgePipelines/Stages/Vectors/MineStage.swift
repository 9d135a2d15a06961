import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel
import LabelForgeVectors

/// `mine_hard_negatives`: for each (query, positive) row, the corpus passages that score high
/// against the query but are not its positives (docs/mining.md).
///
/// A dataset-wide stage. The corpus is every distinct positive of the rows, plus a corpus file when
/// configured (exact-string dedup, file texts first). Queries and passages are embedded through the
/// stage's embedding engine — one cached request per text, so an `embed` stage with the same
/// prefix shares the cache — searched exactly with `VectorSearch`, and selected with
/// `HardNegatives`. Rows that repeat a query share its positives. Each row keeps its output
/// (`negatives`, `negative_scores`, `positive_score`); the training file in sentence-transformers'
/// layout goes to `outputs/<id>.<output_format>.jsonl`, the statistics to `outputs/<id>.stats.json`.
struct MineStage: BarrierStage {
    let config: RunConfig.Stage
    let options: MineOptions
    let version = 1
    let outputFields = ["negatives", "negative_scores", "positive_score"]
    let outputTypes: [String: ColumnType] = [
        "negatives": .list(.string), "negative_scores": .list(.float64), "positive_score": .float64,
    ]

    var optionReferences: [String] { [options.query, options.positive] }
    /// Its embedding engine, and its reranker where it has one; both batched.
    var engineUses: [EngineUse] {
        [EngineUse(engine: config.engine, task: .embed, batchSize: options.batchSize)]
            + (options.rerankEngine.map { [EngineUse(engine: $0, task: .rerank, batchSize: options.batchSize)] } ?? [])
    }
    var truncation: Truncation? { options.truncate }

    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) async throws {
        // Pass 1: queries, their positives and the corpus.
        var corpusIndex: [String: Int] = [:]
        var corpus: [String] = []
        func passage(_ text: String) -> Int {
            if let index = corpusIndex[text] { return index }
            corpusIndex[text] = corpus.count
            corpus.append(text)
            return corpus.count - 1
        }
        for text in try options.corpusTexts() { _ = passage(text) }
        var queryIndex: [String: Int] = [:]
        var queries: [String] = []
        var positives: [Set<Int>] = []
        var seeds: [UInt64] = []
        let reader = try rows()
        while let row = try reader.next() {
            guard failure(row) == nil, let (query, positive) = texts(of: context(row)) else { continue }
            let p = passage(positive)
            if let q = queryIndex[query] {
                positives[q].insert(p)
            } else {
                queryIndex[query] = queries.count
                queries.append(query)
                positives.append([p])
                seeds.append(
                    UInt64(Seed.derive(runSeed: services.runSeed, stageID: config.id, rowID: row.rowID, sampleIndex: 0))
                )
            }
        }

        // Vectors, search and selection. A query whose vector failed fails its rows; a passage whose
        // vector failed is no candidate, and fails the rows whose positive it is.
        let queryAnswers = try await services.embed(queries.map { options.queryPrefix + $0 }, "queries embedded")
        let corpusAnswers = try await services.embed(corpus.map { options.corpusPrefix + $0 }, "passages embedded")
        // A failed query keeps a zero row, so rows stay indexed by query; it is never searched.
        let dimension = (queryAnswers + corpusAnswers).lazy.compactMap(\.value).first?.count ?? 0
        let zero = [Float](repeating: 0, count: dimension)
        let queryVectors = VectorMatrix(queryAnswers.map { $0.value ?? zero }).normalized()
        // Search runs over the passages that have a vector; `searchable[i]` is the passage's index.
        let searchable = corpusAnswers.indices.filter { corpusAnswers[$0].value != nil }
        let corpusVectors = VectorMatrix(searchable.map { corpusAnswers[$0].value! }).normalized()
        var corpusRow = [Int?](repeating: nil, count: corpus.count)
        for (row, passage) in searchable.enumerated() { corpusRow[passage] = row }
        let embedded = queries.indices.filter { queryAnswers[$0].value != nil }
        let maxPositives = positives.map(\.count).max() ?? 1
        let rangeMax = options.selection.rangeMax ?? options.selection.defaultRangeMax(maxPositives: maxPositives)
        var hits = [[VectorSearch.Hit]](repeating: [], count: queries.count)
        if !embedded.isEmpty && !searchable.isEmpty {
            let searched = VectorSearch.topK(
                queries: VectorMatrix(embedded.map { Array(queryVectors.row($0)) }), corpus: corpusVectors,
                k: rangeMax + maxPositives, queryBlock: options.queryBlock, corpusBlock: options.corpusBlock
            ) { services.progress("queries searched", $0, embedded.count) }
            for (row, q) in embedded.enumerated() {
                hits[q] = searched[row].map { VectorSearch.Hit(index: searchable[$0.index], score: $0.score) }
            }
        }
        // With a reranker, every candidate of the window and every positive is scored again by it, and
        // the margins, bounds and ranks below are in its scores (as sentence-transformers does with
        // a cross-encoder). A failed pair fails its query's rows: its window cannot be ranked.
        var rescored: [[Int: Float]] = Array(repeating: [:], count: queries.count)
        var rerankKeys: [[String]] = Array(repeating: [], count: queries.count)
        var rerankFailures: [Int: StageFailure] = [:]
        if options.rerankEngine != nil {
            for (done, q) in embedded.enumerated() {
                let documents = Array(Set(hits[q].map(\.index)).union(positives[q])).sorted().filter {
                    corpusRow[$0] != nil
                }
                let answers = try await services.rerank(queries[q], documents.map { corpus[$0] })
                rerankKeys[q] = answers.map(\.key)
                for (document, answer) in zip(documents, answers) {
                    if let value = answer.value {
                        rescored[q][document] = Float(value)
                    } else if rerankFailures[q] == nil {
                        rerankFailures[q] = answer.failure
                    }
                }
                services.progress("queries reranked", done + 1, embedded.count)
            }
        }
        func score(_ q: Int, _ p: Int) -> Float {
            rescored[q][p]
                ?? zip(queryVectors.row(q), corpusVectors.row(corpusRow[p]!)).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var selections: [HardNegatives.Selection?] = Array(repeating: nil, count: queries.count)
        var removed = HardNegatives.Removed()
        for q in embedded where rerankFailures[q] == nil {
            var selectionOptions = options.selection
            selectionOptions.rangeMax = rangeMax
            var candidates = hits[q]
            if !rescored[q].isEmpty {
                let rank = Dictionary(uniqueKeysWithValues: candidates.enumerated().map { ($1.index, $0) })
                candidates = candidates.map {
                    VectorSearch.Hit(index: $0.index, score: rescored[q][$0.index] ?? $0.score)
                }
                .sorted { $0.score > $1.score || ($0.score == $1.score && rank[$0.index]! < rank[$1.index]!) }
            }
            let known = positives[q].filter { corpusRow[$0] != nil }
            let selection = HardNegatives.select(
                candidates: candidates, positives: positives[q], positiveScores: known.map { score(q, $0) },
                maxPositives: maxPositives, options: selectionOptions, seed: seeds[q])
            removed = removed + selection.removed
            selections[q] = selection
        }

        // Pass 2: every row's result, and the training file.
        var training: [UInt8] = []
        var positiveScores: [Double] = []
        var negativeScores: [Double] = []
        var short = 0
        var failedRows = 0
        let again = try rows()
        while let row = try again.next() {
            if let failure = failure(row) {
                try emit(row, .fail(failure), [])
                continue
            }
            guard let (query, positive) = texts(of: context(row)), let q = queryIndex[query] else {
                try emit(
                    row,
                    .fail(
                        StageFailure(
                            errorClass: "missing_field",
                            message: "the row has no text in '\(options.query)' or '\(options.positive)'")), [])
                continue
            }
            let p = corpusIndex[positive]!
            let requests = [queryAnswers[q].key, corpusAnswers[p].key] + rerankKeys[q]
            let requestFailure =
                queryAnswers[q].failure ?? corpusAnswers[p].failure ?? rerankFailures[q]
            guard requestFailure == nil, let selection = selections[q] else {
                failedRows += 1
                try emit(row, .fail(requestFailure!), requests)
                continue
            }
            let positiveScore = Double(score(q, p))
            let negatives = selection.negatives.map { corpus[$0.index] }
            let scores = selection.negatives.map { Double($0.score) }
            positiveScores.append(positiveScore)
            negativeScores += scores
            if negatives.count < options.selection.numNegatives { short += 1 }
            let lines = options.format.lines(
                columns: options.columns, query: query, positive: positive, negatives: negatives,
                positiveScore: positiveScore, negativeScores: scores, count: options.selection.numNegatives)
            for line in lines { MiningFormat.write(line, into: &training) }
            try emit(
                row,
                .keep([
                    "negatives": .array(negatives.map(JSONValue.string)),
                    "negative_scores": .array(scores.map { .double(Answers.rounded($0)) }),
                    "positive_score": .double(Answers.rounded(positiveScore)),
                ]), requests)
        }
        try services.writeOutput("\(config.id).\(options.format.rawValue).jsonl", training)
        let stats: JSONValue = [
            "queries": .int(Int64(queries.count)), "corpus": .int(Int64(corpus.count)),
            "rows": .int(Int64(positiveScores.count)),
            "mean_positive_score": positiveScores.isEmpty
                ? .null : .double(Answers.rounded(positiveScores.reduce(0, +) / Double(positiveScores.count))),
            "mean_negative_score": negativeScores.isEmpty
                ? .null : .double(Answers.rounded(negativeScores.reduce(0, +) / Double(negativeScores.count))),
            "removed": [
                "absolute_margin": .int(Int64(removed.absoluteMargin)),
                "relative_margin": .int(Int64(removed.relativeMargin)),
                "max_score": .int(Int64(removed.maxScore)), "min_score": .int(Int64(removed.minScore)),
            ],
            "rows_short_of_negatives": .int(Int64(short)), "range_max": .int(Int64(rangeMax)),
            "rows_failed": .int(Int64(failedRows)),
            "passages_without_vector": .int(Int64(corpus.count - searchable.count)),
        ]
        try services.writeOutput("\(config.id).stats.json", Array((CanonicalJSON.string(stats) + "\n").utf8))
    }

    /// The report's lines for this stage, from its `stats.json`.
    func reportLines(outputs: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: outputs + "/\(config.id).stats.json"),
            let stats = try? JSONValue.parse(data)
        else { return [] }
        let removed = stats["removed"] ?? .null
        return [
            "## Mining: \(config.id)", "",
            "- queries: \(stats["queries"]?.textForm ?? "?"), corpus passages: \(stats["corpus"]?.textForm ?? "?"), "
                + "window end (range_max): \(stats["range_max"]?.textForm ?? "?")",
            "- mean positive score: \(stats["mean_positive_score"]?.textForm ?? "n/a"), "
                + "mean negative score: \(stats["mean_negative_score"]?.textForm ?? "n/a")",
            "- candidates removed: absolute margin \(removed["absolute_margin"]?.textForm ?? "0"), relative margin "
                + "\(removed["relative_margin"]?.textForm ?? "0"), max score \(removed["max_score"]?.textForm ?? "0"), "
                + "min score \(removed["min_score"]?.textForm ?? "0")",
            "- rows with fewer negatives than asked: \(stats["rows_short_of_negatives"]?.textForm ?? "?")",
        ]
    }

    private func texts(of row: RowContext) -> (String, String)? {
        guard let query = row.value(at: options.query), !query.isNull, let positive = row.value(at: options.positive),
            !positive.isNull
        else { return nil }
        return (query.textForm, positive.textForm)
    }

}

/// sentence-transformers' output layouts, so its trainers read the training file as is: columns
/// named as in `mine_hard_negatives` (the query's and positive's field names, `negative…`, `label`,
/// `scores`) and in its order, which its losses read by position.
enum MiningFormat: String, Sendable, CaseIterable {
    /// `{query, positive, negative}`, one line per negative.
    case triplet
    /// `{query, positive, negative_1 … negative_n}`; rows with fewer negatives are left out.
    case nTuple = "n-tuple"
    /// `n-tuple` plus `scores: [positive, negatives…]`.
    case nTupleScores = "n-tuple-scores"
    /// `{query, positive, label}`: the positive with 1, each negative (in the positive's column) with 0.
    case labeledPair = "labeled-pair"
    /// `{query, positive: [positive, negatives…], labels: [1, 0, …]}`.
    case labeledList = "labeled-list"

    typealias Line = [(key: String, value: JSONValue)]

    /// - Parameters:
    ///   - columns: the names of the query's and the positive's columns.
    func lines(
        columns: (query: String, positive: String), query: String, positive: String, negatives: [String],
        positiveScore: Double, negativeScores: [Double], count: Int
    ) -> [Line] {
        let (q, p) = columns
        switch self {
        case .triplet:
            return negatives.map { [(q, .string(query)), (p, .string(positive)), ("negative", .string($0))] }
        case .nTuple, .nTupleScores:
            guard negatives.count >= count else { return [] }
            var line: Line = [(q, .string(query)), (p, .string(positive))]
            for (i, negative) in negatives.prefix(count).enumerated() {
                line.append(("negative_\(i + 1)", .string(negative)))
            }
            if self == .nTupleScores {
                line.append(
                    (
                        "scores",
                        .array(([positiveScore] + negativeScores.prefix(count)).map { .double(Answers.rounded($0)) })
                    ))
            }
            return [line]
        case .labeledPair:
            return [[(q, .string(query)), (p, .string(positive)), ("label", 1)]]
                + negatives.map { [(q, .string(query)), (p, .string($0)), ("label", 0)] }
        case .labeledList:
            return [
                [
                    (q, .string(query)), (p, .array(([positive] + negatives).map(JSONValue.string))),
                    ("labels", .array([1] + negatives.map { _ in 0 })),
                ]
            ]
        }
    }

    /// One JSON line with the columns in order (canonical JSON would sort them).
    static func write(_ line: Line, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, (key, value)) in line.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            CanonicalJSON.write(value, into: &out)
        }
        out.append(contentsOf: [UInt8(ascii: "}"), 0x0A])
    }
}

/// `mine_hard_negatives`'s options (docs/config.md, docs/mining.md).
struct MineOptions: ParsedStageOptions {
    var query: String
    var positive: String
    /// A JSONL file of extra passages and the field holding their text.
    var corpusPath: String?
    var corpusField = "text"
    var queryPrefix = ""
    var corpusPrefix = ""
    var batchSize = 32
    var selection = HardNegatives.Options()
    var format = MiningFormat.triplet
    var queryBlock = 1024
    var corpusBlock = 8192
    /// An engine serving `/v1/rerank` that scores the candidate window again before selection.
    var rerankEngine: String?
    /// How queries and passages longer than the embedding (and rerank) model's window are cut.
    var truncate = Truncation.model

    package static let keys = [
        "query", "positive", "corpus", "query_prefix", "corpus_prefix", "batch_size", "range_min", "range_max",
        "max_score", "min_score", "absolute_margin", "relative_margin", "num_negatives", "sampling_strategy",
        "output_format",
        "query_block", "corpus_block", "rerank_engine", Truncation.key,
    ]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> MineOptions {
        var options = MineOptions(
            query: try node.require("query").string(), positive: try node.require("positive").string())
        if let corpus = try node.child("corpus") {
            try corpus.checkKeys(["path", "field"])
            options.corpusPath = try corpus.require("path").filePath()
            options.corpusField = try corpus.child("field")?.string() ?? "text"
        }
        options.queryPrefix = try node.child("query_prefix")?.string() ?? ""
        options.corpusPrefix = try node.child("corpus_prefix")?.string() ?? ""
        func positive(_ key: String, _ fallback: Int, minimum: Int = 1) throws -> Int {
            let child = try node.child(key)
            let value = try child?.int() ?? fallback
            if value < minimum { throw child!.error("\(key) must be at least \(minimum).") }
            return value
        }
        options.batchSize = try positive("batch_size", 32)
        options.queryBlock = try positive("query_block", 1024)
        options.corpusBlock = try positive("corpus_block", 8192)
        options.selection.rangeMin = try positive("range_min", 0, minimum: 0)
        options.selection.numNegatives = try positive("num_negatives", 3)
        if let rangeMax = try node.child("range_max") {
            let value = try rangeMax.int()
            if value <= options.selection.rangeMin {
                throw rangeMax.error("range_max must be above range_min (\(options.selection.rangeMin)).")
            }
            options.selection.rangeMax = value
        }
        options.selection.maxScore = try node.child("max_score").map { Float(try $0.double()) }
        options.selection.minScore = try node.child("min_score").map { Float(try $0.double()) }
        options.selection.absoluteMargin = try node.child("absolute_margin").map { Float(try $0.double()) }
        options.selection.relativeMargin = try node.child("relative_margin").map { Float(try $0.double()) }
        if let sampling = try node.child("sampling_strategy")?.oneOf(HardNegatives.Sampling.allCases.map(\.rawValue)) {
            options.selection.sampling = HardNegatives.Sampling(rawValue: sampling)!
        }
        options.rerankEngine = try node.child("rerank_engine")?.string()
        options.truncate = try Truncation.parse(try node.child(Truncation.key), absent: context.absentTruncation)
        if let format = try node.child("output_format")?.oneOf(MiningFormat.allCases.map(\.rawValue)) {
            options.format = MiningFormat(rawValue: format)!
        }
        return options
    }

    /// The reranker, when one scores the window.
    var extraEngines: [(name: String, task: String)] { rerankEngine.map { [($0, "rerank")] } ?? [] }

    /// The training file's column names: the last part of the query's and positive's field paths.
    var columns: (query: String, positive: String) {
        func name(_ path: String) -> String { String(path.split(separator: ".").last ?? Substring(path)) }
        let names = (name(query), name(positive))
        return names.0 == names.1 ? ("anchor", "positive") : names
    }

    /// The corpus file's texts, in file order (none without a corpus file).
    func corpusTexts() throws -> [String] {
        guard let corpusPath else { return [] }
        let reader = try DatasetReader(path: corpusPath, format: .jsonl)
        var texts: [String] = []
        while let record = try reader.next() {
            guard let text = record.fields[corpusField], !text.isNull else {
                throw LabelForgeError(
                    .invalidDataset, "\(record.location): the corpus row has no '\(corpusField)' field.")
            }
            texts.append(text.textForm)
        }
        return texts
    }

    var resolvedJSON: [String: JSONValue] {
        func number(_ value: Float?) -> JSONValue { value.map { .double(Double($0)) } ?? .null }
        return [
            "query": .string(query), "positive": .string(positive),
            "corpus": corpusPath.map { ["path": .string($0), "field": .string(corpusField)] } ?? .null,
            "query_prefix": .string(queryPrefix), "corpus_prefix": .string(corpusPrefix),
            "batch_size": .int(Int64(batchSize)), "range_min": .int(Int64(selection.rangeMin)),
            "range_max": selection.rangeMax.map { .int(Int64($0)) } ?? .null, "max_score": number(selection.maxScore),
            "min_score": number(selection.minScore), "absolute_margin": number(selection.absoluteMargin),
            "relative_margin": number(selection.relativeMargin), "num_negatives": .int(Int64(selection.numNegatives)),
            "sampling_strategy": .string(selection.sampling.rawValue), "output_format": .string(format.rawValue),
            "query_block": .int(Int64(queryBlock)), "corpus_block": .int(Int64(corpusBlock)),
            "rerank_engine": rerankEngine.map(JSONValue.string) ?? .null,
        ].merging(truncate.json.map { [Truncation.key: $0] } ?? [:]) { _, new in new }
    }
}
