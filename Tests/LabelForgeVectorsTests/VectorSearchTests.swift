import Testing

@testable import LabelForgeVectors

@Suite struct VectorSearchTests {
    /// Deterministic pseudo-random vectors (a linear congruential generator).
    static func vectors(_ rows: Int, _ dimension: Int, seed: UInt64) -> VectorMatrix {
        var state = seed
        var values: [Float] = []
        for _ in 0..<(rows * dimension) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(Float(Int64(bitPattern: state >> 11) % 2000 - 1000) / 1000)
        }
        return VectorMatrix(rows: rows, dimension: dimension, values: values).normalized()
    }

    static func bruteForce(_ queries: VectorMatrix, _ corpus: VectorMatrix, k: Int) -> [[VectorSearch.Hit]] {
        var result: [[VectorSearch.Hit]] = []
        for q in 0..<queries.rows {
            var hits: [VectorSearch.Hit] = []
            for c in 0..<corpus.rows {
                var dot: Float = 0
                for (x, y) in zip(queries.row(q), corpus.row(c)) { dot += x * y }
                hits.append(VectorSearch.Hit(index: c, score: dot))
            }
            hits.sort { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
            result.append(Array(hits.prefix(k)))
        }
        return result
    }

    @Test("blocked sgemm top-k finds the same neighbours as brute force, whatever the block sizes")
    func matchesBruteForce() {
        let queries = Self.vectors(37, 16, seed: 1)
        let corpus = Self.vectors(501, 16, seed: 2)
        let expected = Self.bruteForce(queries, corpus, k: 7)
        for (qb, cb) in [(1024, 8192), (5, 64), (1, 1), (37, 500)] {
            let found = VectorSearch.topK(queries: queries, corpus: corpus, k: 7, queryBlock: qb, corpusBlock: cb)
            #expect(found.map { $0.map(\.index) } == expected.map { $0.map(\.index) }, "blocks \(qb)×\(cb)")
            for (a, b) in zip(found.flatMap { $0 }, expected.flatMap { $0 }) { #expect(abs(a.score - b.score) < 1e-5) }
        }
    }

    @Test("ties keep the lower corpus index first; k larger than the corpus returns every row")
    func tiesAndSmallCorpus() {
        let corpus = VectorMatrix([[1, 0], [0, 1], [1, 0], [0.6, 0.8]])
        let found = VectorSearch.topK(queries: VectorMatrix([[1, 0]]), corpus: corpus, k: 10, corpusBlock: 1)
        #expect(found[0].map(\.index) == [0, 2, 3, 1])
        #expect(found[0].map(\.score) == [1, 1, 0.6, 0])
    }
}
