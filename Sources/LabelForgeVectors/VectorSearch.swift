import COpenBLAS
import Foundation

/// Float32 vectors, one per row, stored row-major.
public struct VectorMatrix: Sendable, Equatable {
    public let rows: Int
    public let dimension: Int
    public var values: [Float]

    /// - Precondition: `values.count == rows × dimension`.
    public init(rows: Int, dimension: Int, values: [Float]) {
        precondition(values.count == rows * dimension, "\(values.count) values are not \(rows) × \(dimension)")
        self.rows = rows
        self.dimension = dimension
        self.values = values
    }

    public init(_ vectors: [[Float]]) {
        self.init(rows: vectors.count, dimension: vectors.first?.count ?? 0, values: vectors.flatMap { $0 })
    }

    public func row(_ index: Int) -> ArraySlice<Float> {
        values[(index * dimension)..<((index + 1) * dimension)]
    }

    /// Each row scaled to unit L2 norm (a zero row stays zero), so inner products are cosines.
    public func normalized() -> VectorMatrix {
        var values = values
        for r in 0..<rows {
            let range = (r * dimension)..<((r + 1) * dimension)
            let norm = values[range].reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 0 { for i in range { values[i] /= norm } }
        }
        return VectorMatrix(rows: rows, dimension: dimension, values: values)
    }
}

/// Exact nearest neighbours by inner product: blocks of queries times blocks of the corpus with
/// BLAS `sgemm` (OpenBLAS), each query keeping its best `k` in a bounded heap. Memory holds one
/// block of scores (`queryBlock` × `corpusBlock` floats), whatever the sizes of the two sets.
public enum VectorSearch {
    /// The cosine similarity of two vectors (in Double); two all-zero vectors that are equal count as
    /// the same direction (1), any other zero vector as none (0).
    public static func cosine(_ x: [Float], _ y: [Float]) -> Double {
        let dot = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let norms =
            x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            * y.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return norms == 0 ? (x == y ? 1 : 0) : dot / norms
    }

    public struct Hit: Sendable, Equatable {
        public var index: Int
        public var score: Float

        public init(index: Int, score: Float) {
            self.index = index
            self.score = score
        }
    }

    /// For each query, the `k` corpus rows with the highest inner product, best first; equal
    /// scores keep the lower corpus index first, so results do not depend on the block sizes.
    public static func topK(
        queries: VectorMatrix, corpus: VectorMatrix, k: Int, queryBlock: Int = 1024, corpusBlock: Int = 8192,
        progress: ((_ queriesDone: Int) -> Void)? = nil
    ) -> [[Hit]] {
        precondition(queries.dimension == corpus.dimension, "queries and corpus differ in dimension")
        let k = min(k, corpus.rows)
        guard k > 0, queries.rows > 0 else { return Array(repeating: [], count: queries.rows) }
        var heaps = (0..<queries.rows).map { _ in BoundedHeap(capacity: k) }
        var scores = [Float](repeating: 0, count: min(queryBlock, queries.rows) * min(corpusBlock, corpus.rows))
        for qStart in stride(from: 0, to: queries.rows, by: queryBlock) {
            let qCount = min(queryBlock, queries.rows - qStart)
            for cStart in stride(from: 0, to: corpus.rows, by: corpusBlock) {
                let cCount = min(corpusBlock, corpus.rows - cStart)
                blockScores(
                    queries, rows: qStart..<(qStart + qCount), corpus, rows: cStart..<(cStart + cCount), into: &scores)
                scores.withUnsafeBufferPointer { s in
                    heaps.withUnsafeMutableBufferPointer { heaps in
                        // Each query's heap is touched by one iteration only.
                        let block = Block(heaps: heaps.baseAddress! + qStart, scores: s.baseAddress!)
                        DispatchQueue.concurrentPerform(iterations: qCount) { row in
                            let heap = block.heaps + row
                            let line = block.scores + row * cCount
                            for column in 0..<cCount { heap.pointee.offer(index: cStart + column, score: line[column]) }
                        }
                    }
                }
            }
            progress?(qStart + qCount)
        }
        return heaps.map { $0.sorted() }
    }

    /// The inner products of query rows `qRows` with corpus rows `cRows` (one OpenBLAS `sgemm`),
    /// row-major into `scores` (`qRows.count × cRows.count`).
    static func blockScores(
        _ queries: VectorMatrix, rows qRows: Range<Int>, _ corpus: VectorMatrix, rows cRows: Range<Int>,
        into scores: inout [Float]
    ) {
        let d = queries.dimension
        queries.values.withUnsafeBufferPointer { q in
            corpus.values.withUnsafeBufferPointer { c in
                scores.withUnsafeMutableBufferPointer { s in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(qRows.count), Int32(cRows.count), Int32(d), 1,
                        q.baseAddress! + qRows.lowerBound * d, Int32(d), c.baseAddress! + cRows.lowerBound * d,
                        Int32(d),
                        0, s.baseAddress!, Int32(cRows.count))
                }
            }
        }
    }
}

/// One block's heaps and scores, shared by the iterations that each own one query's row.
private struct Block: @unchecked Sendable {
    let heaps: UnsafeMutablePointer<BoundedHeap>
    let scores: UnsafePointer<Float>
}

/// The best `capacity` (index, score) pairs seen, kept as a min-heap on "worse" (lower score, or
/// equal score and higher index).
struct BoundedHeap {
    let capacity: Int
    private(set) var items: [VectorSearch.Hit] = []

    init(capacity: Int) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    @inline(__always) static func worse(_ a: VectorSearch.Hit, _ b: VectorSearch.Hit) -> Bool {
        a.score < b.score || (a.score == b.score && a.index > b.index)
    }

    @inline(__always) mutating func offer(index: Int, score: Float) {
        let hit = VectorSearch.Hit(index: index, score: score)
        if items.count < capacity {
            items.append(hit)
            siftUp(items.count - 1)
        } else if Self.worse(items[0], hit) {
            items[0] = hit
            siftDown(0)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.worse(items[child], items[parent]) else { return }
            items.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var worst = parent
            if left < items.count && Self.worse(items[left], items[worst]) { worst = left }
            if right < items.count && Self.worse(items[right], items[worst]) { worst = right }
            if worst == parent { return }
            items.swapAt(parent, worst)
            parent = worst
        }
    }

    /// Best first.
    func sorted() -> [VectorSearch.Hit] {
        items.sorted { Self.worse($1, $0) }
    }
}
