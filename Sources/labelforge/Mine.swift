import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel
import LabelForgeVectors

extension HardNegatives.Sampling: ExpressibleByArgument {}

struct Mine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Select hard negatives from vectors on disk (.npy), without a pipeline or an engine.",
        discussion: """
            The selection of the mine_hard_negatives stage (docs/mining.md) over precomputed float32 vectors: \
            --queries and --corpus are .npy files (rows × dimension, normalized here), --positives a text file \
            with one line per query listing its positives' corpus rows (comma-separated). Writes one JSON line \
            per query: {query, negatives, scores}, corpus rows best first.
            """
    )

    @Option(name: .long, help: "Query vectors (.npy, float32, rows × dimension).")
    var queries: String

    @Option(name: .long, help: "Corpus vectors (.npy).")
    var corpus: String

    @Option(name: .long, help: "One line per query: its positives' corpus rows, comma-separated.")
    var positives: String

    @Option(name: .long, help: "Where to write the negatives (JSONL).")
    var output: String

    @Option(name: .long) var rangeMin = 0
    @Option(name: .long) var rangeMax: Int?
    @Option(name: .long) var maxScore: Float?
    @Option(name: .long) var minScore: Float?
    @Option(name: .long) var absoluteMargin: Float?
    @Option(name: .long) var relativeMargin: Float?
    @Option(name: .long) var numNegatives = 3
    @Option(name: .long, help: "top or random.") var sampling: HardNegatives.Sampling = .top
    @Option(name: .long, help: "The random sample's seed.") var seed: UInt64 = 0
    @Option(name: .long, help: "Search memory: query rows per block.") var queryBlock = 1024
    @Option(name: .long, help: "Search memory: corpus rows per block.") var corpusBlock = 8192

    func run() async throws {
        do {
            let queryReader = try NpyReader(path: queries)
            let corpusReader = try NpyReader(path: corpus)
            let q = VectorMatrix(
                rows: queryReader.rows, dimension: queryReader.dimension, values: try queryReader.readAll()
            )
            .normalized()
            let c = VectorMatrix(
                rows: corpusReader.rows, dimension: corpusReader.dimension, values: try corpusReader.readAll()
            )
            .normalized()
            guard q.dimension == c.dimension else {
                throw LabelForgeError(
                    .invalidConfig, "\(queries) has dimension \(q.dimension), \(corpus) \(c.dimension).")
            }
            let lines = try String(contentsOfFile: positives, encoding: .utf8).split(
                separator: "\n", omittingEmptySubsequences: false)
            var positiveRows: [Set<Int>] = []
            for (number, line) in lines.prefix(q.rows).enumerated() {
                let rows = line.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard rows.allSatisfy({ $0 != nil && $0! >= 0 && $0! < c.rows }) else {
                    throw LabelForgeError(
                        .invalidDataset, "\(positives):\(number + 1): not a list of corpus rows (0..<\(c.rows)).")
                }
                positiveRows.append(Set(rows.map { $0! }))
            }
            guard positiveRows.count == q.rows else {
                throw LabelForgeError(
                    .invalidDataset, "\(positives) has \(positiveRows.count) lines for \(q.rows) queries.")
            }
            var options = HardNegatives.Options()
            options.rangeMin = rangeMin
            options.maxScore = maxScore
            options.minScore = minScore
            options.absoluteMargin = absoluteMargin
            options.relativeMargin = relativeMargin
            options.numNegatives = numNegatives
            options.sampling = sampling
            let maxPositives = positiveRows.map(\.count).max() ?? 1
            options.rangeMax = rangeMax ?? options.defaultRangeMax(maxPositives: maxPositives)
            let hits = VectorSearch.topK(
                queries: q, corpus: c, k: options.rangeMax! + maxPositives, queryBlock: queryBlock,
                corpusBlock: corpusBlock)
            var out: [UInt8] = []
            var short = 0
            for i in 0..<q.rows {
                let scores = positiveRows[i].map { p in zip(q.row(i), c.row(p)).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
                let selection = HardNegatives.select(
                    candidates: hits[i], positives: positiveRows[i], positiveScores: scores, maxPositives: maxPositives,
                    options: options, seed: seed &+ UInt64(i))
                if selection.negatives.count < numNegatives { short += 1 }
                CanonicalJSON.write(
                    [
                        "query": .int(Int64(i)), "negatives": .array(selection.negatives.map { .int(Int64($0.index)) }),
                        "scores": .array(selection.negatives.map { .double(Double($0.score)) }),
                    ], into: &out)
                out.append(0x0A)
            }
            try Data(out).write(to: URL(fileURLWithPath: output))
            print(
                "\(q.rows) queries × \(c.rows) passages: \(q.rows - short) with \(numNegatives) negatives, \(short) with fewer"
            )
        } catch {
            throw Terminal.exit(for: error)
        }
    }
}
