import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeVectors

/// `dedup`: removes duplicates of rows earlier in output order; the first of each cluster is kept.
///
/// - `exact`: rows whose field is the same text after normalization (Unicode NFKC, case folding,
///   whitespace collapsed). Outputs `key` (hash of the normalized text) and `duplicates`; removed
///   rows name the kept row as `duplicate_of`. Memory: one entry per distinct text.
/// - `minhash`: MinHash-LSH over shingles of the normalized text, every candidate pair verified by
///   exact Jaccard ≥ `threshold`, clusters by connected components. Kept rows output `duplicates`;
///   removed rows `duplicate_of` and `jaccard` (with the kept row). Memory: each row's shingle
///   hashes and signature.
/// - `embedding`: cosine ≥ `threshold` between the field's vectors from the stage's embedding
///   engine (the same cached requests an `embed` stage makes), exact. Removed rows record `cosine`.
///
/// `minhash` and `embedding` also write `outputs/<id>.pairs.jsonl` (every pair found) and
/// `outputs/<id>.dedup.json` (clusters, sizes, example pairs), which the report summarizes.
struct DedupStage: BarrierStage {
    let config: RunConfig.Stage
    let options: DedupOptions
    let version = 1
    var outputFields: [String] { options.method == "exact" ? ["key", "duplicates"] : ["duplicates"] }
    var outputTypes: [String: ColumnType] {
        options.method == "exact" ? ["key": .string, "duplicates": .int64] : ["duplicates": .int64]
    }

    var optionReferences: [String] { [options.field] }
    /// `method: embedding` embeds each text, 32 to a request.
    var engineUses: [EngineUse] {
        options.method == "embedding" ? [EngineUse(engine: config.engine, task: .embed, batchSize: 32)] : []
    }
    var truncation: Truncation? { options.method == "embedding" ? options.truncate : nil }

    /// The text as compared: NFKC, case-folded, runs of whitespace as one space, trimmed.
    static func normalized(_ text: String) -> String {
        // ASCII (most text compared here): NFKC changes nothing and case folding is lowercasing,
        // done on the bytes; the same result as the general path below, many times faster.
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(text.utf8.count)
            var pendingSpace = false
            for byte in text.utf8 {
                if byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) {
                    pendingSpace = !bytes.isEmpty
                    continue
                }
                if pendingSpace {
                    bytes.append(0x20)
                    pendingSpace = false
                }
                bytes.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return unicodeNormalized(text)
    }

    /// The general path of `normalized`.
    static func unicodeNormalized(_ text: String) -> String {
        text.precomposedStringWithCompatibilityMapping
            .folding(options: [.caseInsensitive], locale: nil)
            .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    func run(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) async throws {
        if options.method == "exact" {
            try exact(rows: rows, context: context, failure: failure, emit: emit)
        } else {
            try await near(rows: rows, context: context, failure: failure, services: services, emit: emit)
        }
    }

    private var missingField: StageFailure {
        StageFailure(errorClass: "missing_field", message: "the row has no value at '\(options.field)' to compare")
    }

    private func exact(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) throws {
        let field = options.field
        func key(_ row: PipelineRow) -> String? {
            guard failure(row) == nil, let value = context(row).value(at: field), !value.isNull else { return nil }
            return ContentHash.prefixed(ContentHash.hex(Data(Self.normalized(value.textForm).utf8)))
        }
        var groupSizes: [String: Int] = [:]
        let counting = try rows()
        while let row = try counting.next() {
            if let key = key(row) { groupSizes[key, default: 0] += 1 }
        }
        var kept: [String: String] = [:]
        let deciding = try rows()
        while let row = try deciding.next() {
            if let reason = failure(row) {
                try emit(row, .fail(reason), [])
            } else if let key = key(row) {
                if let first = kept[key] {
                    try emit(
                        row,
                        .drop(["key": .string(key), "duplicate_of": .string(first)], reason: "duplicate of \(first)"),
                        [])
                } else {
                    kept[key] = row.rowID
                    try emit(
                        row, .keep(["key": .string(key), "duplicates": .int(Int64(groupSizes[key, default: 1] - 1))]),
                        [])
                }
            } else {
                try emit(row, .fail(missingField), [])
            }
        }
    }

    /// `minhash` and `embedding`: one pass to collect the texts, the clustering, one pass to decide.
    private func near(
        rows: () throws -> RowFileReader, context: (PipelineRow) -> RowContext, failure: (PipelineRow) -> StageFailure?,
        services: BarrierServices, emit: (PipelineRow, BarrierVerdict, _ requests: [String]) throws -> Void
    ) async throws {
        /// The text a row is compared by; `nil` for rows that take no part (failed upstream, no value).
        func text(of row: PipelineRow) -> String? {
            guard failure(row) == nil, let value = context(row).value(at: options.field), !value.isNull else {
                return nil
            }
            return value.textForm
        }
        var texts: [String] = []
        var rowIDs: [String] = []
        let collecting = try rows()
        while let row = try collecting.next() {
            guard let text = text(of: row) else { continue }
            texts.append(text)
            rowIDs.append(row.rowID)
        }
        // Embedding: a text whose request failed fails its row and takes no part in the clustering;
        // the slots below count only the texts that take part.
        var requestKeys: [String] = []
        var embeddingFailures: [Int: StageFailure] = [:]
        var answered: [[Float]] = []
        if options.method == "embedding" {
            let answers = try await services.embed(texts, "texts embedded")
            requestKeys = answers.map(\.key)
            var kept: [String] = []
            var keptIDs: [String] = []
            for (index, answer) in answers.enumerated() {
                if let vector = answer.value {
                    answered.append(vector)
                    kept.append(texts[index])
                    keptIDs.append(rowIDs[index])
                } else {
                    embeddingFailures[index] = answer.failure
                }
            }
            if !embeddingFailures.isEmpty {
                texts = kept
                rowIDs = keptIDs
            }
        }
        let result: NearDuplicates.Result
        let measure: String
        var parameters: [String: JSONValue] = ["threshold": .double(options.threshold)]
        var sets: [[UInt64]] = []
        var vectors = VectorMatrix(rows: 0, dimension: 0, values: [])
        if options.method == "minhash" {
            measure = "jaccard"
            sets = Self.shingleSets(texts, shingling: options.shingling)
            let lsh = options.minhashParameters
            result = NearDuplicates.minhash(sets, parameters: lsh) {
                services.progress("candidate pairs verified", $0, $1)
            }
            parameters["num_perm"] = .int(Int64(lsh.permutations))
            parameters["bands"] = .int(Int64(lsh.bands))
            parameters["rows"] = .int(Int64(lsh.rows))
            parameters["shingle"] = .string(options.shingle)
            parameters["ngram"] = .int(Int64(options.ngram))
        } else {
            measure = "cosine"
            vectors = VectorMatrix(answered).normalized()
            let count = vectors.rows
            result = NearDuplicates.cosine(vectors, threshold: Float(options.threshold)) {
                services.progress("texts compared", $0, count)
            }
        }
        /// A removed row's similarity with its kept row (not always a pair found directly).
        func similarity(_ a: Int, _ b: Int) -> Double {
            if measure == "cosine" {
                return Double(zip(vectors.row(a), vectors.row(b)).reduce(Float(0)) { $0 + $1.0 * $1.1 })
            }
            return NearDuplicates.jaccard(sets[a], sets[b])
        }
        let clusterSizes = result.kept.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }

        var slot = 0
        var textIndex = 0
        let deciding = try rows()
        while let row = try deciding.next() {
            if let reason = failure(row) {
                try emit(row, .fail(reason), [])
                continue
            }
            // The first pass's test, over the same rows in the same order: the slots line up.
            guard text(of: row) != nil else {
                try emit(row, .fail(missingField), [])
                continue
            }
            defer { textIndex += 1 }
            let requests = requestKeys.isEmpty ? [] : [requestKeys[textIndex]]
            if let failed = embeddingFailures[textIndex] {
                try emit(row, .fail(failed), requests)
                continue
            }
            guard slot < rowIDs.count else {
                try emit(row, .fail(missingField), requests)
                continue
            }
            defer { slot += 1 }
            let kept = result.kept[slot]
            if kept == slot {
                try emit(row, .keep(["duplicates": .int(Int64(clusterSizes[slot, default: 1] - 1))]), requests)
            } else {
                let value = Answers.rounded(similarity(kept, slot))
                try emit(
                    row,
                    .drop(
                        ["duplicate_of": .string(rowIDs[kept]), measure: .double(value)],
                        reason: "near-duplicate of \(rowIDs[kept]) (\(measure) \(value))"), requests)
            }
        }

        var pairLines: [UInt8] = []
        for pair in result.pairs {
            let line: [String: JSONValue] = [
                "first": .string(rowIDs[pair.first]), "second": .string(rowIDs[pair.second]),
                measure: .double(Answers.rounded(pair.similarity)),
            ]
            pairLines += Array((CanonicalJSON.string(.object(line)) + "\n").utf8)
        }
        try services.writeOutput("\(config.id).pairs.jsonl", pairLines)
        let clusters = result.clusters
        let histogram = clusters.reduce(into: [Int: Int]()) { $0[$1.count, default: 0] += 1 }
        let examples = result.pairs.prefix(5).map { pair -> JSONValue in
            .object([
                "first": .string(rowIDs[pair.first]), "second": .string(rowIDs[pair.second]),
                measure: .double(Answers.rounded(pair.similarity)),
                "first_text": .string(Self.excerpt(texts[pair.first])),
                "second_text": .string(Self.excerpt(texts[pair.second])),
            ])
        }
        let stats: JSONValue = [
            "method": .string(options.method), "parameters": .object(parameters),
            "rows": .int(Int64(texts.count)), "failed": .int(Int64(embeddingFailures.count)),
            "kept": .int(Int64(texts.count - clusters.reduce(0) { $0 + $1.count - 1 })),
            "removed": .int(Int64(clusters.reduce(0) { $0 + $1.count - 1 })),
            "clusters": .int(Int64(clusters.count)),
            "cluster_sizes": .object(
                Dictionary(uniqueKeysWithValues: histogram.map { (String($0.key), JSONValue.int(Int64($0.value))) })),
            "largest_clusters": .array(
                clusters.sorted { $0.count > $1.count || ($0.count == $1.count && $0[0] < $1[0]) }.prefix(5).map {
                    ["kept": .string(rowIDs[$0[0]]), "size": .int(Int64($0.count))]
                }),
            "pairs": .int(Int64(result.pairs.count)), "candidates": .int(Int64(result.candidates)),
            "example_pairs": .array(Array(examples)),
        ]
        try services.writeOutput("\(config.id).dedup.json", Array((CanonicalJSON.string(stats) + "\n").utf8))
    }

    /// Each text's shingle set, of its normalized form, computed in parallel.
    static func shingleSets(_ texts: [String], shingling: Shingling) -> [[UInt64]] {
        NearDuplicates.shingleSets(texts, shingling: shingling, normalize: normalized)
    }

    static func excerpt(_ text: String) -> String { text.count <= 160 ? text : String(text.prefix(157)) + "…" }

    /// The report's lines for this stage, from its `dedup.json`.
    func reportLines(outputs: String) -> [String] {
        guard options.method != "exact",
            let data = FileManager.default.contents(atPath: outputs + "/\(config.id).dedup.json"),
            let stats = try? JSONValue.parse(data)
        else { return [] }
        let sizes = (stats["cluster_sizes"]?.objectValue ?? [:]).sorted { Int($0.key)! < Int($1.key)! }
            .map { "\($0.value.textForm)×\($0.key)" }.joined(separator: ", ")
        var lines = [
            "## Dedup: \(config.id) (\(options.method))", "",
            "- rows: \(stats["rows"]?.textForm ?? "?"), kept: \(stats["kept"]?.textForm ?? "?"), removed: "
                + "\(stats["removed"]?.textForm ?? "?") in \(stats["clusters"]?.textForm ?? "?") clusters"
                + (sizes.isEmpty ? "" : " (clusters × size: \(sizes))"),
            "- pairs found: \(stats["pairs"]?.textForm ?? "?") of \(stats["candidates"]?.textForm ?? "?") candidates "
                + "(`outputs/\(config.id).pairs.jsonl`)",
        ]
        for example in stats["example_pairs"]?.arrayValue ?? [] {
            let measure = options.method == "minhash" ? "jaccard" : "cosine"
            lines.append(
                "- \(example["first"]?.textForm ?? "") ~ \(example["second"]?.textForm ?? "") (\(measure) "
                    + "\(example[measure]?.textForm ?? "?")): “\(example["second_text"]?.textForm ?? "")”")
        }
        return lines
    }
}

/// `dedup`'s options: the field (or `stage.field` output) compared, the method (`exact`, `minhash`,
/// `embedding`) and its parameters.
public struct DedupOptions: ParsedStageOptions {
    public var field: String
    public var method = "exact"
    /// Jaccard (`minhash`) or cosine (`embedding`) at or above which two rows are duplicates.
    public var threshold = 0.8
    /// `word` or `char` shingles of `ngram` units.
    public var shingle = "word"
    public var ngram = 3
    public var permutations = 128
    /// Bands × rows of the LSH index; chosen from the threshold when not given.
    public var bands: Int? = nil
    public var rows: Int? = nil
    /// `embedding`: how texts longer than the model's window are cut.
    public var truncate = Truncation.model

    package static let keys = [
        "field", "method", "threshold", "shingle", "ngram", "num_perm", "bands", "rows", Truncation.key,
    ]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> DedupOptions {
        var options = DedupOptions(
            field: try node.require("field").string(),
            method: try node.child("method")?.oneOf(["exact", "minhash", "embedding"]) ?? "exact")
        let onlyFor = [
            "threshold": ["minhash", "embedding"], "shingle": ["minhash"], "ngram": ["minhash"],
            "num_perm": ["minhash"], "bands": ["minhash"], "rows": ["minhash"], Truncation.key: ["embedding"],
        ]
        for (key, methods) in onlyFor.sorted(by: { $0.key < $1.key }) {
            if let value = try node.child(key), !methods.contains(options.method) {
                throw value.error("'\(key)' applies to dedup method \(methods.joined(separator: " and ")) only.")
            }
        }
        options.threshold = options.method == "embedding" ? 0.95 : 0.8
        if let threshold = try node.child("threshold") {
            options.threshold = try threshold.double()
            if !(options.threshold > 0 && options.threshold <= 1) {
                throw threshold.error("threshold must be in (0, 1].")
            }
        }
        options.truncate = try Truncation.parse(try node.child(Truncation.key), absent: context.absentTruncation)
        options.shingle = try node.child("shingle")?.oneOf(["word", "char"]) ?? "word"
        options.ngram = options.shingle == "char" ? 5 : 3
        if let ngram = try node.child("ngram") {
            options.ngram = try ngram.int()
            if options.ngram < 1 { throw ngram.error("ngram must be at least 1.") }
        }
        if let permutations = try node.child("num_perm") {
            options.permutations = try permutations.int()
            if options.permutations < 2 { throw permutations.error("num_perm must be at least 2.") }
        }
        let bandsNode = try node.child("bands")
        let rowsNode = try node.child("rows")
        if (bandsNode == nil) != (rowsNode == nil) {
            throw (bandsNode ?? rowsNode)!.error(
                "give both bands and rows, or neither (then they are chosen from the threshold).")
        }
        if let bandsNode, let rowsNode {
            options.bands = try bandsNode.int()
            options.rows = try rowsNode.int()
            if options.bands! < 1 || options.rows! < 1 || options.bands! * options.rows! > options.permutations {
                throw bandsNode.error("bands × rows must be at least 1 and at most num_perm (\(options.permutations)).")
            }
        }
        return options
    }

    public var engineTask: String? { method == "embedding" ? "embed" : nil }

    var shingling: Shingling { shingle == "char" ? .characters(ngram) : .words(ngram) }

    var minhashParameters: NearDuplicates.MinHashParameters {
        if let bands, let rows {
            return NearDuplicates.MinHashParameters(
                permutations: permutations, threshold: threshold, bands: bands, rows: rows)
        }
        return .optimal(threshold: threshold, permutations: permutations)
    }

    /// `exact` lists only `field` and `method`, as it always has (plan hashes depend on it).
    public var resolvedJSON: [String: JSONValue] {
        var json: [String: JSONValue] = ["field": .string(field), "method": .string(method)]
        switch method {
        case "minhash":
            let lsh = minhashParameters
            json.merge([
                "threshold": .double(threshold), "shingle": .string(shingle), "ngram": .int(Int64(ngram)),
                "num_perm": .int(Int64(permutations)), "bands": .int(Int64(lsh.bands)), "rows": .int(Int64(lsh.rows)),
            ]) { _, new in new }
        case "embedding":
            json["threshold"] = .double(threshold)
            if let truncate = truncate.json { json[Truncation.key] = truncate }
        default: break
        }
        return json
    }
}
