import Testing

@testable import LabelForgeVectors

/// Every expected list below is worked out by hand from the candidates and the rules in
/// docs/mining.md (sentence-transformers' semantics, with its margin and positive bugs fixed).
@Suite struct HardNegativesTests {
    typealias Hit = VectorSearch.Hit
    static let candidates = [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.6), (4, 0.5), (5, 0.4)].map {
        Hit(index: $0.0, score: Float($0.1))
    }

    func select(
        _ candidates: [Hit] = candidates, positives: Set<Int> = [0], scores: [Float] = [0.9], maxPositives: Int = 1,
        seed: UInt64 = 0, _ configure: (inout HardNegatives.Options) -> Void
    ) -> HardNegatives.Selection {
        var options = HardNegatives.Options()
        configure(&options)
        return HardNegatives.select(
            candidates: candidates, positives: positives, positiveScores: scores, maxPositives: maxPositives,
            options: options, seed: seed)
    }

    @Test("top: positives excluded, the default window is range_min + num_negatives + max_positives")
    func top() {
        let selection = select { $0.numNegatives = 2 }
        #expect(selection.negatives.map(\.index) == [1, 2])
        #expect(HardNegatives.Options().defaultRangeMax(maxPositives: 2) == 5)
    }

    @Test("range_min and range_max cut a window out of the surviving ranks")
    func window() {
        let selection = select {
            $0.numNegatives = 2
            $0.rangeMin = 1
            $0.rangeMax = 4
        }
        // Survivors 1, 2, 3, 4, 5; ranks 1..<4 are 2, 3, 4; the top two are 2 and 3.
        #expect(selection.negatives.map(\.index) == [2, 3])
        #expect(select { $0.rangeMin = 9 }.negatives.isEmpty)
    }

    @Test("absolute margin: a candidate within m of the positive is dropped, and counted")
    func absoluteMargin() {
        let selection = select {
            $0.numNegatives = 2
            $0.absoluteMargin = 0.15
        }
        // 0.8 + 0.15 > 0.9: dropped; 0.7 + 0.15 = 0.85 ≤ 0.9: kept.
        #expect(selection.negatives.map(\.index) == [2, 3])
        #expect(selection.removed.absoluteMargin == 1)
        #expect(HardNegatives.Options().defaultRangeMax(maxPositives: 1) == 4)
    }

    @Test("relative margin: above pos − |pos|·m is dropped")
    func relativeMargin() {
        let selection = select {
            $0.numNegatives = 2
            $0.relativeMargin = 0.2
        }
        // Threshold 0.9 − 0.18 = 0.72: 0.8 dropped, 0.7 kept.
        #expect(selection.negatives.map(\.index) == [2, 3])
        #expect(selection.removed.relativeMargin == 1)
    }

    @Test("relative margin with a negative positive score stays a margin below it (sign-safe)")
    func negativeScores() {
        let candidates = [(1, -0.4), (2, -0.52), (3, -0.53), (4, -0.6)].map { Hit(index: $0.0, score: Float($0.1)) }
        let selection = select(candidates, positives: [0], scores: [-0.5]) {
            $0.numNegatives = 3
            $0.relativeMargin = 0.05
        }
        // pos − |pos|·m = −0.525: −0.4 and −0.52 are dropped. (The unfixed pos·(1 − m) = −0.475
        // would have kept −0.52, a candidate scoring above the positive's margin.)
        #expect(selection.negatives.map(\.index) == [3, 4])
        #expect(selection.removed.relativeMargin == 2)
    }

    @Test("several positives: all are excluded, and margins use the smallest positive score")
    func severalPositives() {
        let selection = select(positives: [1, 3], scores: [0.8, 0.6], maxPositives: 2) {
            $0.numNegatives = 3
            $0.absoluteMargin = 0
        }
        // Anchor 0.6: 0.9 and 0.7 are above it; 0.8 and 0.6 are positives; 0.5 and 0.4 remain.
        #expect(selection.negatives.map(\.index) == [4, 5])
        #expect(selection.removed.absoluteMargin == 2)
    }

    @Test("max_score and min_score bound the scores")
    func bounds() {
        let selection = select {
            $0.numNegatives = 5
            $0.maxScore = 0.65
            $0.minScore = 0.45
        }
        #expect(selection.negatives.map(\.index) == [3, 4])
        #expect(selection.removed.maxScore == 2 && selection.removed.minScore == 1)
    }

    @Test("fewer candidates than asked gives what there is")
    func fewer() {
        let selection = select(Array(Self.candidates.prefix(4))) {
            $0.numNegatives = 5
            $0.rangeMax = 10
        }
        #expect(selection.negatives.map(\.index) == [1, 2, 3])
    }

    @Test("random sampling is seeded, stays in the window and lists negatives in rank order")
    func random() {
        let many = (0..<30).map { Hit(index: $0, score: 1 - Float($0) / 100) }
        func pick(_ seed: UInt64) -> [Int] {
            select(many, positives: [0], scores: [1], seed: seed) {
                $0.numNegatives = 4
                $0.rangeMin = 2
                $0.rangeMax = 20
                $0.sampling = .random
            }.negatives.map(\.index)
        }
        #expect(pick(7) == pick(7))
        #expect(pick(7) != pick(8))
        #expect(pick(7) == pick(7).sorted() && pick(7).count == 4)
        // Survivors are 1…29; ranks 2..<20 are rows 3…20.
        #expect(pick(7).allSatisfy { (3...20).contains($0) })
    }
}
