import Foundation
import LabelForgeCore

/// Which corpus rows become hard negatives for one query, given its candidates by score:
/// sentence-transformers' `mine_hard_negatives` semantics (docs/mining.md), with its known bugs
/// fixed — every positive of the query excluded, the relative margin in the sign-safe form
/// `pos − |pos|·m` against the query's *minimum* positive score, and a window never larger than
/// what survives.
public enum HardNegatives {
    public enum Sampling: String, Sendable, CaseIterable {
        /// The best-scoring candidates of the window.
        case top
        /// A seeded random sample of the window, listed in rank order.
        case random
    }

    public struct Options: Sendable, Equatable {
        /// Ranks of the surviving candidates to skip (likely false negatives) …
        public var rangeMin = 0
        /// … and the rank to stop at; `nil` for sentence-transformers' default (`defaultRangeMax`).
        public var rangeMax: Int? = nil
        /// Drop candidates scoring above / below these.
        public var maxScore: Float? = nil
        public var minScore: Float? = nil
        /// Drop candidates within this much of the query's minimum positive score…
        public var absoluteMargin: Float? = nil
        /// … or above `pos − |pos|·m` of it (NV-Retriever's TopK-PercPos: 0.05 keeps ≤ 95%).
        public var relativeMargin: Float? = nil
        public var numNegatives = 3
        public var sampling = Sampling.top

        public init() {}

        /// sentence-transformers' default window end: `range_min + 10·num_negatives + max_positives`
        /// when a margin or `max_score` is set, else `range_min + num_negatives + max_positives`.
        public func defaultRangeMax(maxPositives: Int) -> Int {
            let filtered = absoluteMargin != nil || relativeMargin != nil || maxScore != nil
            return rangeMin + (filtered ? 10 : 1) * numNegatives + maxPositives
        }
    }

    /// Why candidates were left out, counted over queries.
    public struct Removed: Sendable, Equatable {
        public var absoluteMargin = 0
        public var relativeMargin = 0
        public var maxScore = 0
        public var minScore = 0

        public init() {}

        public static func + (a: Removed, b: Removed) -> Removed {
            var sum = a
            sum.absoluteMargin += b.absoluteMargin
            sum.relativeMargin += b.relativeMargin
            sum.maxScore += b.maxScore
            sum.minScore += b.minScore
            return sum
        }
    }

    public struct Selection: Sendable, Equatable {
        /// Best rank first.
        public var negatives: [VectorSearch.Hit]
        public var removed: Removed
    }

    /// The negatives for one query.
    /// - Parameters:
    ///   - candidates: the query's nearest corpus rows, best first (positives may be among them).
    ///   - positives: every corpus row that is a positive of this query.
    ///   - positiveScores: the query's scores against those positives (the margins' anchor is the
    ///     smallest).
    ///   - maxPositives: the most positives any query has (for the default window).
    ///   - options: the window, score limits, margins, how many and how they are sampled.
    ///   - seed: the random sample's seed (derived from the row ID).
    public static func select(
        candidates: [VectorSearch.Hit], positives: Set<Int>, positiveScores: [Float], maxPositives: Int,
        options: Options, seed: UInt64 = 0
    ) -> Selection {
        var removed = Removed()
        let anchor = positiveScores.min()
        var survivors: [VectorSearch.Hit] = []
        for hit in candidates where !positives.contains(hit.index) {
            if let m = options.absoluteMargin, let pos = anchor, hit.score + m > pos {
                removed.absoluteMargin += 1
            } else if let m = options.relativeMargin, let pos = anchor, hit.score > pos - abs(pos) * m {
                removed.relativeMargin += 1
            } else if let max = options.maxScore, hit.score > max {
                removed.maxScore += 1
            } else if let min = options.minScore, hit.score < min {
                removed.minScore += 1
            } else {
                survivors.append(hit)
            }
        }
        let end = min(options.rangeMax ?? options.defaultRangeMax(maxPositives: maxPositives), survivors.count)
        let window = options.rangeMin < end ? Array(survivors[options.rangeMin..<end]) : []
        let negatives: [VectorSearch.Hit]
        switch options.sampling {
        case .top:
            negatives = Array(window.prefix(options.numNegatives))
        case .random:
            var generator = SplitMix64(seed: seed)
            var positions = Array(window.indices)
            for i in stride(from: positions.count - 1, to: 0, by: -1) {
                positions.swapAt(i, Int(generator.next() % UInt64(i + 1)))
            }
            negatives = positions.prefix(options.numNegatives).sorted().map { window[$0] }
        }
        return Selection(negatives: negatives, removed: removed)
    }
}
