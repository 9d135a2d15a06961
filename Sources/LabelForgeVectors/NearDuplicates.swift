import Foundation
import LabelForgeCore

/// How a text is cut into the pieces near-duplicate detection compares.
public enum Shingling: Sendable, Equatable {
    /// Runs of `n` consecutive words (split at whitespace).
    case words(Int)
    /// Runs of `n` consecutive characters (Unicode scalars), whitespace included.
    case characters(Int)

    /// The text's distinct shingles as 64-bit hashes (FNV-1a of their UTF-8 bytes), sorted. A text
    /// shorter than one shingle is one shingle of its whole; an empty text has none. The text is
    /// compared as given: normalize it first (the `dedup` stage does: NFKC, case folding, whitespace
    /// collapsed).
    public func hashes(of text: String) -> [UInt64] {
        var hashes: [UInt64] = []
        let utf8 = Array(text.utf8)
        utf8.withUnsafeBufferPointer { bytes in
            // Boundaries of the units (words or scalars) in the bytes.
            var starts: [Int] = []
            var ends: [Int] = []
            switch self {
            case .words:
                var index = 0
                while index < bytes.count {
                    while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
                    guard index < bytes.count else { break }
                    starts.append(index)
                    while index < bytes.count, !Self.isSpace(bytes[index]) { index += 1 }
                    ends.append(index)
                }
            case .characters:
                for index in 0..<bytes.count where bytes[index] & 0xC0 != 0x80 {
                    starts.append(index)
                    if index > 0 { ends.append(index) }
                }
                if !starts.isEmpty { ends.append(bytes.count) }
            }
            guard !starts.isEmpty else { return }
            let n: Int
            switch self {
            case .words(let size), .characters(let size): n = max(1, size)
            }
            let count = max(1, starts.count - n + 1)
            hashes.reserveCapacity(count)
            for first in 0..<count {
                let last = min(first + n, starts.count) - 1
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                for index in starts[first]..<ends[last] {
                    // Whitespace inside a word shingle counts as one space, however it was written.
                    let byte = Self.isSpace(bytes[index]) ? 0x20 : bytes[index]
                    if byte == 0x20, index > starts[first], Self.isSpace(bytes[index - 1]) { continue }
                    hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
                }
                hashes.append(hash)
            }
        }
        hashes.sort()
        return Self.unique(hashes)
    }

    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }

    static func unique(_ sorted: [UInt64]) -> [UInt64] {
        var result: [UInt64] = []
        result.reserveCapacity(sorted.count)
        for value in sorted where result.last != value { result.append(value) }
        return result
    }
}

/// Near-duplicate detection: MinHash-LSH over shingle sets with every candidate verified by exact
/// Jaccard, and cosine similarity over vectors; clusters by connected components.
///
/// Results do not depend on the number of threads or the chunk sizes: each document's signature,
/// the candidate pairs and the components are functions of the inputs alone.
public enum NearDuplicates {
    /// Two documents found similar enough: `first < second`, by input index.
    public struct Pair: Sendable, Equatable {
        public var first: Int
        public var second: Int
        public var similarity: Double

        public init(first: Int, second: Int, similarity: Double) {
            self.first = first
            self.second = second
            self.similarity = similarity
        }
    }

    /// Clusters of near-duplicates.
    public struct Result: Sendable, Equatable {
        /// For each document, the member of its cluster that is kept: the cluster's first document
        /// (lowest index). A document that is not a near-duplicate of any other is its own.
        public var kept: [Int]
        /// Every verified pair at or above the threshold, sorted by `(first, second)`.
        public var pairs: [Pair]
        /// Pairs the index proposed, before verification.
        public var candidates: Int

        /// Members by cluster, for clusters of two or more, ordered by their kept member.
        public var clusters: [[Int]] {
            var members: [Int: [Int]] = [:]
            for (index, root) in kept.enumerated() { members[root, default: []].append(index) }
            return members.keys.sorted().compactMap { members[$0]!.count > 1 ? members[$0] : nil }
        }
    }

    /// MinHash-LSH settings: permutations, the Jaccard threshold, and the bands × rows of the index.
    public struct MinHashParameters: Sendable, Equatable {
        public var permutations: Int
        public var threshold: Double
        public var bands: Int
        public var rows: Int
        /// Seed of the permutations (the same seed gives the same signatures everywhere).
        public var seed: UInt64 = 1

        public init(permutations: Int, threshold: Double, bands: Int, rows: Int) {
            self.permutations = permutations
            self.threshold = threshold
            self.bands = bands
            self.rows = rows
        }

        /// Bands and rows minimizing `fpWeight` × the probability mass of pairs below the threshold
        /// that become candidates plus `fnWeight` × that of pairs above it that do not, the way
        /// datasketch's `MinHashLSH` chooses them (`_optimal_param`). Candidates are verified, so
        /// a false positive costs one exact Jaccard and a false negative a missed duplicate: the
        /// defaults weigh misses 9 to 1.
        public static func optimal(
            threshold: Double, permutations: Int, fpWeight: Double = 0.1, fnWeight: Double = 0.9
        ) -> MinHashParameters {
            var best = (error: Double.infinity, bands: 1, rows: permutations)
            for bands in 1...permutations {
                for rows in 1...(permutations / bands) {
                    let candidate = { (s: Double) in 1 - pow(1 - pow(s, Double(rows)), Double(bands)) }
                    let fp = integrate(candidate, from: 0, to: threshold)
                    let fn = integrate({ 1 - candidate($0) }, from: threshold, to: 1)
                    let error = fp * fpWeight + fn * fnWeight
                    if error < best.error { best = (error, bands, rows) }
                }
            }
            return MinHashParameters(
                permutations: permutations, threshold: threshold, bands: best.bands, rows: best.rows)
        }

        /// Simpson's rule on 64 intervals: the integrands are smooth and the choice is an argmin.
        static func integrate(_ f: (Double) -> Double, from a: Double, to b: Double) -> Double {
            let n = 64
            let h = (b - a) / Double(n)
            var sum = f(a) + f(b)
            for i in 1..<n { sum += f(a + Double(i) * h) * (i % 2 == 1 ? 4 : 2) }
            return sum * h / 3
        }

        /// The permutations' multipliers (odd) and offsets.
        func coefficients() -> (a: [UInt64], b: [UInt64]) {
            var random = SplitMix64(seed: seed)
            var a: [UInt64] = []
            var b: [UInt64] = []
            for _ in 0..<permutations {
                a.append(random.next() | 1)
                b.append(random.next())
            }
            return (a, b)
        }
    }

    /// Each text's shingle hashes (`Shingling.hashes`) after `normalize`, in parallel chunks.
    public static func shingleSets(
        _ texts: [String], shingling: Shingling, normalize: @Sendable (String) -> String = { $0 }, chunk: Int = 512
    ) -> [[UInt64]] {
        var sets = [[UInt64]](repeating: [], count: texts.count)
        sets.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(pointer: buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: (texts.count + chunk - 1) / chunk) { c in
                for index in (c * chunk)..<min(texts.count, (c + 1) * chunk) {
                    out.pointer[index] = shingling.hashes(of: normalize(texts[index]))
                }
            }
        }
        return sets
    }

    /// The MinHash signature of one shingle set: per permutation, the least of the shingles'
    /// hashes under it (multiply-shift hashing of the 64-bit shingle hash to 32 bits: the top half
    /// of `a[k]·x + b[k]` mod 2⁶⁴, `a[k]` odd).
    static func signature(_ shingles: [UInt64], a: [UInt64], b: [UInt64], into signature: UnsafeMutablePointer<UInt32>)
    {
        let count = a.count
        for k in 0..<count { signature[k] = .max }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for shingle in shingles {
                    for k in 0..<count {
                        signature[k] = min(signature[k], UInt32(truncatingIfNeeded: (a[k] &* shingle &+ b[k]) >> 32))
                    }
                }
            }
        }
    }

    /// Exact Jaccard similarity of two sorted, distinct hash sets.
    public static func jaccard(_ x: [UInt64], _ y: [UInt64]) -> Double {
        if x.isEmpty && y.isEmpty { return 1 }
        var i = 0
        var j = 0
        var common = 0
        while i < x.count && j < y.count {
            if x[i] == y[j] {
                common += 1
                i += 1
                j += 1
            } else if x[i] < y[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return Double(common) / Double(x.count + y.count - common)
    }

    /// Near-duplicate clusters of shingle sets (each sorted and distinct, as `Shingling.hashes`
    /// gives): MinHash-LSH candidates, each verified by exact Jaccard ≥ the threshold, joined into
    /// connected components. Identical sets are joined before the index sees them (only the first
    /// goes in), so a thousand copies of one text cost no more than one. Empty sets (texts with no
    /// shingle) are nobody's duplicate.
    /// - Parameters:
    ///   - sets: each document's shingle hashes.
    ///   - parameters: permutations, threshold, bands and rows.
    ///   - chunk: documents per unit of parallel work.
    /// - Parameter progress: called with candidate pairs verified so far, of all candidates.
    public static func minhash(
        _ sets: [[UInt64]], parameters: MinHashParameters, chunk: Int = 1024,
        progress: ((_ verified: Int, _ candidates: Int) -> Void)? = nil
    ) -> Result {
        let n = sets.count
        var union = UnionFind(count: n)
        var pairs: [Pair] = []
        // Identical sets: the first of each is the representative the index sees.
        var representatives: [Int] = []
        // Keyed by a 64-bit fingerprint of the set; sets are compared on a fingerprint match.
        var firstWithSet: [UInt64: [Int]] = [:]
        for (index, set) in sets.enumerated() where !set.isEmpty {
            var fingerprint: UInt64 = 0xcbf2_9ce4_8422_2325
            for hash in set { fingerprint = (fingerprint ^ hash) &* 0x100_0000_01b3 }
            if let first = firstWithSet[fingerprint]?.first(where: { sets[$0] == set }) {
                union.join(first, index)
                pairs.append(Pair(first: first, second: index, similarity: 1))
            } else {
                firstWithSet[fingerprint, default: []].append(index)
                representatives.append(index)
            }
        }
        firstWithSet = [:]
        let slots = representatives
        // Signatures of the representatives, in parallel chunks.
        let width = parameters.permutations
        let (a, b) = parameters.coefficients()
        var signatures = [UInt32](repeating: 0, count: representatives.count * width)
        let chunk = max(1, chunk)
        signatures.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(pointer: buffer.baseAddress!)
            let chunks = (slots.count + chunk - 1) / chunk
            DispatchQueue.concurrentPerform(iterations: chunks) { part in
                for slot in (part * chunk)..<min(slots.count, (part + 1) * chunk) {
                    signature(sets[slots[slot]], a: a, b: b, into: out.pointer + slot * width)
                }
            }
        }
        // Bands: representatives whose band agrees are candidates.
        var candidateKeys: [UInt64] = []
        let rows = parameters.rows
        for band in 0..<min(parameters.bands, width / max(1, rows)) {
            var keyed: [(key: UInt64, slot: Int32)] = []
            keyed.reserveCapacity(representatives.count)
            signatures.withUnsafeBufferPointer { s in
                for slot in 0..<representatives.count {
                    var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(band + 1)
                    let base = slot * width + band * rows
                    for r in 0..<rows { hash = (hash ^ UInt64(s[base + r])) &* 0x100_0000_01b3 ^ (hash >> 29) }
                    keyed.append((hash, Int32(slot)))
                }
            }
            keyed.sort { $0.key < $1.key || ($0.key == $1.key && $0.slot < $1.slot) }
            var start = 0
            while start < keyed.count {
                var end = start + 1
                while end < keyed.count, keyed[end].key == keyed[start].key { end += 1 }
                if end - start > 1 {
                    for i in start..<end {
                        for j in (i + 1)..<end {
                            candidateKeys.append(UInt64(keyed[i].slot) << 32 | UInt64(keyed[j].slot))
                        }
                    }
                }
                start = end
            }
        }
        candidateKeys.sort()
        let keys = Shingling.unique(candidateKeys)
        candidateKeys = []
        // Verification, in parallel chunks of pairs, a round of chunks between progress reports.
        var similarities = [Double](repeating: 0, count: keys.count)
        similarities.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(pointer: buffer.baseAddress!)
            let chunks = (keys.count + chunk - 1) / chunk
            let round = 64
            for first in stride(from: 0, to: chunks, by: round) {
                DispatchQueue.concurrentPerform(iterations: min(round, chunks - first)) { offset in
                    let c = first + offset
                    for p in (c * chunk)..<min(keys.count, (c + 1) * chunk) {
                        let key = keys[p]
                        out.pointer[p] = jaccard(sets[slots[Int(key >> 32)]], sets[slots[Int(key & 0xFFFF_FFFF)]])
                    }
                }
                progress?(min(keys.count, (first + round) * chunk), keys.count)
            }
        }
        for (p, key) in keys.enumerated() where similarities[p] >= parameters.threshold {
            let first = representatives[Int(key >> 32)]
            let second = representatives[Int(key & 0xFFFF_FFFF)]
            union.join(first, second)
            pairs.append(Pair(first: first, second: second, similarity: similarities[p]))
        }
        pairs.sort { ($0.first, $0.second) < ($1.first, $1.second) }
        return Result(kept: union.roots(), pairs: pairs, candidates: keys.count)
    }

    /// Near-duplicate clusters of vectors: pairs with cosine similarity ≥ `threshold` (exact,
    /// by blocked matrix products of the normalized vectors), joined into connected components.
    /// - Parameters:
    ///   - vectors: one vector per row.
    ///   - threshold: the least cosine similarity of a near-duplicate pair.
    ///   - block: rows per block of the matrix products (memory: `block × rows` scores at a time).
    ///   - progress: called with the rows compared with every later row so far.
    public static func cosine(
        _ vectors: VectorMatrix, threshold: Float, block: Int = 2048, progress: ((_ rowsDone: Int) -> Void)? = nil
    ) -> Result {
        let matrix = vectors.normalized()
        let n = matrix.rows
        var union = UnionFind(count: n)
        var pairs: [Pair] = []
        let block = max(1, block)
        var scores = [Float](repeating: 0, count: min(block, max(n, 1)) * min(block, max(n, 1)))
        for qStart in stride(from: 0, to: n, by: block) {
            let qCount = min(block, n - qStart)
            // Only blocks at or after the query block: each pair is seen once, as (earlier, later).
            for cStart in stride(from: qStart, to: n, by: block) {
                let cCount = min(block, n - cStart)
                VectorSearch.blockScores(
                    matrix, rows: qStart..<(qStart + qCount), matrix, rows: cStart..<(cStart + cCount), into: &scores)
                for row in 0..<qCount {
                    let first = qStart + row
                    for column in 0..<cCount {
                        let second = cStart + column
                        guard second > first else { continue }
                        let score = scores[row * cCount + column]
                        if score >= threshold {
                            union.join(first, second)
                            pairs.append(Pair(first: first, second: second, similarity: Double(score)))
                        }
                    }
                }
            }
            progress?(qStart + qCount)
        }
        pairs.sort { ($0.first, $0.second) < ($1.first, $1.second) }
        return Result(kept: union.roots(), pairs: pairs, candidates: n * (n - 1) / 2)
    }
}

/// A buffer that parallel iterations write at disjoint offsets.
private struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
}

/// Disjoint sets whose root is always the lowest member.
struct UnionFind {
    private var parent: [Int]

    init(count: Int) { parent = Array(0..<count) }

    mutating func root(_ x: Int) -> Int {
        var x = x
        while parent[x] != x {
            parent[x] = parent[parent[x]]
            x = parent[x]
        }
        return x
    }

    /// Every element's root, in order.
    mutating func roots() -> [Int] { (0..<parent.count).map { root($0) } }

    mutating func join(_ x: Int, _ y: Int) {
        let (a, b) = (root(x), root(y))
        if a < b { parent[b] = a } else if b < a { parent[a] = b }
    }
}
