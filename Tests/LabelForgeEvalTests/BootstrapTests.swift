import LabelForgeEval
import Testing

/// Reference intervals were computed once with SciPy 1.17.1 (`scipy.stats.bootstrap`,
/// `method="percentile"`, `n_resamples=20000`, `random_state=0`) over scikit-learn 1.9.1's
/// `accuracy_score`, `f1_score(average="macro")` and `cohen_kappa_score`, on the rows below:
///
///     labels = ["a", "b", "c", "d"]; n = 240
///     gold = [labels[(i * 7 + i // 11) % 4 if i % 5 else 0] for i in range(n)]
///     pred = [g if (i * 13) % 10 < 6 else labels[(labels.index(g) + 1 + i % 2) % 4] for i, g in enumerate(gold)]
///     other = [g if (i * 17) % 10 < 5 else labels[(labels.index(g) + 1) % 4] for i, g in enumerate(gold)]
///     bootstrap((np.arange(n),), lambda i, axis=-1: metric(g[i], p[i]), vectorized=False, ...)
///
/// Two bootstraps draw different rows, so their endpoints agree to within Monte Carlo noise
/// (about 0.001 at 20,000 resamples); 0.003 still tells a 95% interval from a 94% one.
@Suite struct BootstrapTests {
    static let labels = ["a", "b", "c", "d"]
    static let gold: [String] = (0..<240).map { (i: Int) -> String in
        i % 5 != 0 ? labels[(i * 7 + i / 11) % 4] : labels[0]
    }
    static let predicted: [String] = gold.indices.map { (i: Int) -> String in
        let next = (labels.firstIndex(of: gold[i])! + 1 + i % 2) % 4
        return (i * 13) % 10 < 6 ? gold[i] : labels[next]
    }
    static let other: [String] = gold.indices.map { (i: Int) -> String in
        let next = (labels.firstIndex(of: gold[i])! + 1) % 4
        return (i * 17) % 10 < 5 ? gold[i] : labels[next]
    }
    static let tolerance = 0.003

    @Test("intervals match SciPy's percentile bootstrap on fixed data")
    func matchesScipy() throws {
        let intervals = try #require(
            Bootstrap(resamples: 20000).intervals(gold: Self.gold, predicted: Self.predicted))
        let agreement = Agreement(pairs: zip(Self.predicted, Self.gold).map { ($0, $1) })
        #expect(abs(agreement.accuracy - 0.6) < 1e-12)
        #expect(abs(agreement.macroF1 - 0.5559632827489971) < 1e-9)
        #expect(abs(try #require(agreement.kappa) - 0.44142746314972847) < 1e-9)
        let expected: [(Interval?, Double, Double)] = [
            (intervals.accuracy, 0.5375, 0.6625),
            (intervals.macroF1, 0.48768029544014935, 0.6188505731311841),
            (intervals.kappa, 0.35682682779143243, 0.5234151738699688),
        ]
        for (interval, lower, upper) in expected {
            let interval = try #require(interval)
            #expect(abs(interval.lower - lower) < Self.tolerance, "lower \(interval.lower) vs SciPy's \(lower)")
            #expect(abs(interval.upper - upper) < Self.tolerance, "upper \(interval.upper) vs SciPy's \(upper)")
        }
    }

    @Test("a paired difference matches SciPy, and one inside the noise holds 0")
    func pairedDifference() throws {
        let difference = try #require(
            Bootstrap(resamples: 20000).accuracyDifference(gold: Self.gold, Self.predicted, Self.other))
        // The difference moves in steps of 1/240, and an endpoint may land one step apart.
        #expect(abs(difference.lower - -0.02083333333333337) < 1.0 / 240 + 0.001)
        #expect(abs(difference.upper - 0.22083333333333327) < 1.0 / 240 + 0.001)
        #expect(difference.contains(0))
        // Gold against the predictions: a real difference, well outside the noise.
        let clear = try #require(Bootstrap().accuracyDifference(gold: Self.gold, Self.gold, Self.predicted))
        #expect(!clear.contains(0) && clear.lower > 0.3)
        // A labeler against itself differs by exactly nothing.
        #expect(
            Bootstrap().accuracyDifference(gold: Self.gold, Self.predicted, Self.predicted)
                == Interval(lower: 0, upper: 0))
    }

    @Test("the same rows and seed give the same intervals; another seed draws other rows")
    func seeded() throws {
        let first = Bootstrap(seed: 7).intervals(gold: Self.gold, predicted: Self.predicted)
        #expect(first == Bootstrap(seed: 7).intervals(gold: Self.gold, predicted: Self.predicted))
        #expect(first != Bootstrap(seed: 8).intervals(gold: Self.gold, predicted: Self.predicted))
        // An agreement's intervals depend on its counts, not on the order rows came in.
        let forward = Agreement(pairs: zip(Self.predicted, Self.gold).map { ($0, $1) })
        let backward = Agreement(pairs: zip(Self.predicted, Self.gold).reversed().map { ($0, $1) })
        #expect(forward.intervals() == backward.intervals())
        let interval = try #require(forward.intervals())
        #expect(interval.accuracy.contains(forward.accuracy) && interval.macroF1.contains(forward.macroF1))
    }

    @Test("no rows give no interval; one class everywhere gives no kappa interval")
    func degenerate() throws {
        #expect(Bootstrap().intervals(gold: [], predicted: []) == nil)
        let same = try #require(Bootstrap().intervals(gold: ["x", "x", "x"], predicted: ["x", "x", "x"]))
        #expect(same.accuracy == Interval(lower: 1, upper: 1))
        #expect(same.kappa == nil)
    }
}
