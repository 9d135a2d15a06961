/// Accuracy and macro-F1 of predictions against gold labels, accumulated one pair at a time
/// (memory grows with the number of classes, not rows).
public struct Agreement: Sendable, Equatable {
    private struct Pair: Hashable, Sendable {
        var predicted: String
        var gold: String
    }

    private var confusion: [Pair: Int] = [:]

    public init() {}

    /// Builds an agreement from `(predicted, gold)` pairs.
    public init(pairs: [(predicted: String, gold: String)]) {
        for pair in pairs { add(predicted: pair.predicted, gold: pair.gold) }
    }

    /// Counts one compared row.
    public mutating func add(predicted: String, gold: String) {
        confusion[Pair(predicted: predicted, gold: gold), default: 0] += 1
    }

    /// Pairs compared (rows with both a prediction and a gold label).
    public var count: Int { confusion.values.reduce(0, +) }

    public var correct: Int { confusion.filter { $0.key.predicted == $0.key.gold }.values.reduce(0, +) }

    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }

    /// The accuracy of always answering the most common gold label: the chance level a labeler has
    /// to beat.
    public var majorityBaseline: Double {
        var gold: [String: Int] = [:]
        for (pair, n) in confusion { gold[pair.gold, default: 0] += n }
        return count == 0 ? 0 : Double(gold.values.max() ?? 0) / Double(count)
    }

    /// Unweighted Cohen's kappa of the predictions against gold; `nil` when undefined (no rows, or
    /// every row of one class on both sides).
    public var kappa: Double? {
        let (gold, predicted) = rows
        return Statistics.cohenKappa(gold, predicted, weights: .none)
    }

    /// Bootstrap intervals of accuracy, macro-F1 and kappa, resampling the compared rows (taken in
    /// the order of their gold and predicted labels, so the same counts give the same intervals).
    public func intervals(_ bootstrap: Bootstrap = Bootstrap()) -> ScoreIntervals? {
        let (gold, predicted) = rows
        return bootstrap.intervals(gold: gold, predicted: predicted)
    }

    /// The compared rows, expanded from the counts: sorted by gold label, then prediction.
    private var rows: (gold: [String], predicted: [String]) {
        var gold: [String] = []
        var predicted: [String] = []
        for (pair, n) in confusion.sorted(by: { ($0.key.gold, $0.key.predicted) < ($1.key.gold, $1.key.predicted) }) {
            gold += repeatElement(pair.gold, count: n)
            predicted += repeatElement(pair.predicted, count: n)
        }
        return (gold, predicted)
    }

    /// Unweighted mean of per-class F1 over every class seen in gold or predictions.
    public var macroF1: Double {
        let classes = Set(confusion.keys.flatMap { [$0.predicted, $0.gold] })
        guard !classes.isEmpty else { return 0 }
        var sum = 0.0
        for c in classes {
            var tp = 0
            var fp = 0
            var fn = 0
            for (pair, n) in confusion {
                if pair.predicted == c && pair.gold == c { tp += n }
                if pair.predicted == c && pair.gold != c { fp += n }
                if pair.predicted != c && pair.gold == c { fn += n }
            }
            let denominator = 2 * tp + fp + fn
            sum += denominator == 0 ? 0 : 2 * Double(tp) / Double(denominator)
        }
        return sum / Double(classes.count)
    }
}
