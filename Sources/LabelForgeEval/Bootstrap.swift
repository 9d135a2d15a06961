import LabelForgeCore

/// A two-sided interval of a statistic, `[lower, upper]`.
public struct Interval: Sendable, Equatable {
    public var lower: Double
    public var upper: Double

    public init(lower: Double, upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    public func contains(_ value: Double) -> Bool { lower <= value && value <= upper }
}

/// Percentile-bootstrap intervals of the scores of predictions against gold labels.
public struct ScoreIntervals: Sendable, Equatable {
    public var accuracy: Interval
    public var macroF1: Interval
    /// `nil` where Cohen's kappa is undefined in most resamples (every row of one class).
    public var kappa: Interval?

    public init(accuracy: Interval, macroF1: Interval, kappa: Interval?) {
        self.accuracy = accuracy
        self.macroF1 = macroF1
        self.kappa = kappa
    }
}

/// Seeded percentile bootstrap over rows, as `scipy.stats.bootstrap(method="percentile")`
/// computes it: draw as many rows as there are, with replacement, `resamples` times; compute the
/// statistic on each draw; the interval runs between the `(1 − level)/2` and `(1 + level)/2`
/// quantiles of those values (linear interpolation, NumPy's default). The draws come from
/// `SplitMix64(seed:)`, so the same rows and seed give the same interval on every machine.
public struct Bootstrap: Sendable {
    public var resamples: Int
    public var seed: UInt64
    public var level: Double

    public init(resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95) {
        precondition(resamples > 0 && level > 0 && level < 1, "resamples must be positive and level in (0, 1)")
        self.resamples = resamples
        self.seed = seed
        self.level = level
    }

    /// Intervals of accuracy, macro-F1 (over the classes seen in each draw, as `Agreement` and
    /// scikit-learn's `f1_score(average="macro")` count them) and unweighted Cohen's kappa; `nil`
    /// when there are no rows.
    public func intervals(gold: [String], predicted: [String]) -> ScoreIntervals? {
        precondition(gold.count == predicted.count, "gold and predicted differ in length")
        guard !gold.isEmpty else { return nil }
        let classes = Array(Set(gold + predicted)).sorted()
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let g = gold.map { index[$0]! }
        let p = predicted.map { index[$0]! }
        var accuracy: [Double] = []
        var macroF1: [Double] = []
        var kappa: [Double] = []
        var confusion = ConfusionCounts(classes: classes.count)
        draw(rows: gold.count) { rows in
            confusion.reset()
            for row in rows { confusion.add(gold: g[row], predicted: p[row]) }
            accuracy.append(confusion.accuracy)
            macroF1.append(confusion.macroF1)
            if let k = confusion.kappa { kappa.append(k) }
        }
        return ScoreIntervals(
            accuracy: percentileInterval(accuracy), macroF1: percentileInterval(macroF1),
            kappa: kappa.count * 2 > resamples ? percentileInterval(kappa) : nil)
    }

    /// The interval of `accuracy(a) − accuracy(b)` on the same rows, both resampled by the same
    /// draws (a paired bootstrap); `nil` when there are no rows. An interval that holds 0 means
    /// the two differ by no more than the noise of this many rows.
    public func accuracyDifference(gold: [String], _ a: [String], _ b: [String]) -> Interval? {
        precondition(gold.count == a.count && gold.count == b.count, "gold, a and b differ in length")
        guard !gold.isEmpty else { return nil }
        // Per row: +1 where only a is right, −1 where only b is, 0 where both or neither are.
        let margin = gold.indices.map { (a[$0] == gold[$0] ? 1 : 0) - (b[$0] == gold[$0] ? 1 : 0) }
        var differences: [Double] = []
        draw(rows: gold.count) { rows in
            differences.append(Double(rows.reduce(0) { $0 + margin[$1] }) / Double(rows.count))
        }
        return percentileInterval(differences)
    }

    /// Calls `body` once per resample with the drawn row indices.
    private func draw(rows: Int, _ body: ([Int]) -> Void) {
        var generator = SplitMix64(seed: seed)
        var drawn = [Int](repeating: 0, count: rows)
        for _ in 0..<resamples {
            for i in 0..<rows {
                // The high half of a 64×64-bit product: a uniform index without division.
                drawn[i] = Int(generator.next().multipliedFullWidth(by: UInt64(rows)).high)
            }
            body(drawn)
        }
    }

    /// The central `level` interval of `values`, by linear interpolation between order statistics.
    func percentileInterval(_ values: [Double]) -> Interval {
        let sorted = values.sorted()
        return Interval(
            lower: Self.quantile(sorted, (1 - level) / 2), upper: Self.quantile(sorted, (1 + level) / 2))
    }

    /// NumPy's default (`linear`) quantile of sorted values.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let position = q * Double(sorted.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }
}

/// A confusion table over class indices, refilled for every resample.
private struct ConfusionCounts {
    let classes: Int
    var cells: [Int]
    var goldTotals: [Int]
    var predictedTotals: [Int]
    var rows = 0

    init(classes: Int) {
        self.classes = classes
        cells = [Int](repeating: 0, count: classes * classes)
        goldTotals = [Int](repeating: 0, count: classes)
        predictedTotals = goldTotals
    }

    mutating func reset() {
        for i in cells.indices { cells[i] = 0 }
        for i in 0..<classes {
            goldTotals[i] = 0
            predictedTotals[i] = 0
        }
        rows = 0
    }

    mutating func add(gold: Int, predicted: Int) {
        cells[gold * classes + predicted] += 1
        goldTotals[gold] += 1
        predictedTotals[predicted] += 1
        rows += 1
    }

    var correct: Int { (0..<classes).reduce(0) { $0 + cells[$1 * classes + $1] } }

    var accuracy: Double { Double(correct) / Double(rows) }

    /// Mean F1 over the classes present in gold or predictions: `2·tp / (gold + predicted)`.
    var macroF1: Double {
        var sum = 0.0
        var present = 0
        for c in 0..<classes where goldTotals[c] + predictedTotals[c] > 0 {
            sum += 2 * Double(cells[c * classes + c]) / Double(goldTotals[c] + predictedTotals[c])
            present += 1
        }
        return present == 0 ? 0 : sum / Double(present)
    }

    /// Unweighted Cohen's kappa, `nil` where chance agreement is 1 (scikit-learn gives NaN).
    var kappa: Double? {
        let n = Double(rows)
        let observed = Double(correct) / n
        let expected = (0..<classes).reduce(0.0) { $0 + Double(goldTotals[$1]) * Double(predictedTotals[$1]) } / (n * n)
        return expected >= 1 ? nil : (observed - expected) / (1 - expected)
    }
}
