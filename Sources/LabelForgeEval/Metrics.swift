import Foundation

/// Classification metrics against gold labels, with scikit-learn's semantics
/// (`precision_recall_fscore_support`, `confusion_matrix`, `accuracy_score`; a metric whose
/// denominator is zero is 0, sklearn's `zero_division=0`). docs/metrics.md defines each.
public struct ClassificationReport: Sendable, Equatable {
    public struct Scores: Sendable, Equatable {
        public var precision: Double
        public var recall: Double
        public var f1: Double
        /// Gold rows of the class (for averages: all rows).
        public var support: Int
    }

    /// The classes, in the order of `confusion`'s rows and columns.
    public let labels: [String]
    /// `confusion[g][p]`: rows whose gold label is `labels[g]` and prediction `labels[p]`.
    public let confusion: [[Int]]
    public let perClass: [String: Scores]
    public let accuracy: Double
    public let macro: Scores
    public let micro: Scores
    public let weighted: Scores

    /// Scores `predicted` against `gold`.
    /// - Parameters:
    ///   - gold: the reference labels.
    ///   - predicted: the labels to score, one per gold label.
    ///   - labels: the classes and their order; by default every label seen, sorted.
    public init(gold: [String], predicted: [String], labels: [String]? = nil) {
        precondition(gold.count == predicted.count, "gold and predicted differ in length")
        let labels = labels ?? Array(Set(gold + predicted)).sorted()
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        var confusion = Array(repeating: Array(repeating: 0, count: labels.count), count: labels.count)
        for (g, p) in zip(gold, predicted) {
            if let gi = index[g], let pi = index[p] { confusion[gi][pi] += 1 }
        }
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        func f1(_ p: Double, _ r: Double) -> Double { p + r == 0 ? 0 : 2 * p * r / (p + r) }
        var perClass: [String: Scores] = [:]
        var truePositives = 0
        var predictedTotal = 0
        var goldTotal = 0
        for (i, label) in labels.enumerated() {
            let tp = confusion[i][i]
            let predictedAs = confusion.reduce(0) { $0 + $1[i] }
            let support = confusion[i].reduce(0, +)
            let p = ratio(tp, predictedAs)
            let r = ratio(tp, support)
            perClass[label] = Scores(precision: p, recall: r, f1: f1(p, r), support: support)
            truePositives += tp
            predictedTotal += predictedAs
            goldTotal += support
        }
        let scores = labels.map { perClass[$0]! }
        let count = Double(max(1, labels.count))
        macro = Scores(
            precision: scores.reduce(0) { $0 + $1.precision } / count,
            recall: scores.reduce(0) { $0 + $1.recall } / count,
            f1: scores.reduce(0) { $0 + $1.f1 } / count, support: goldTotal)
        let microP = ratio(truePositives, predictedTotal)
        let microR = ratio(truePositives, goldTotal)
        micro = Scores(precision: microP, recall: microR, f1: f1(microP, microR), support: goldTotal)
        func weightedMean(_ value: (Scores) -> Double) -> Double {
            goldTotal == 0 ? 0 : scores.reduce(0) { $0 + value($1) * Double($1.support) } / Double(goldTotal)
        }
        weighted = Scores(
            precision: weightedMean(\.precision), recall: weightedMean(\.recall), f1: weightedMean(\.f1),
            support: goldTotal)
        accuracy = ratio(zip(gold, predicted).filter { $0 == $1 }.count, gold.count)
        self.labels = labels
        self.confusion = confusion
        self.perClass = perClass
    }
}

/// How disagreements between ordered categories count in Cohen's kappa.
public enum KappaWeights: String, Sendable, CaseIterable {
    /// Every disagreement counts the same.
    case none
    /// By the distance between the categories' positions.
    case linear
    /// By the squared distance.
    case quadratic
}

/// A calibration bin of confidences: how confident the model was and how often it was right.
public struct CalibrationBin: Sendable, Equatable {
    /// The bin's interval, `(lower, upper]` (the first bin includes 0).
    public var lower: Double
    public var upper: Double
    public var count: Int
    public var meanConfidence: Double
    public var accuracy: Double
}

extension Statistics {
    /// Cohen's kappa between two raters over `labels` (their order matters for weights), as
    /// scikit-learn's `cohen_kappa_score`; `nil` when undefined (no rows, or chance agreement 1).
    public static func cohenKappa(_ a: [String], _ b: [String], labels: [String]? = nil, weights: KappaWeights)
        -> Double?
    {
        guard a.count == b.count, !a.isEmpty else { return nil }
        let labels = labels ?? Array(Set(a + b)).sorted()
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        let k = labels.count
        var observed = Array(repeating: Array(repeating: 0.0, count: k), count: k)
        for (x, y) in zip(a, b) {
            guard let i = index[x], let j = index[y] else { continue }
            observed[i][j] += 1
        }
        let total = observed.reduce(0) { $0 + $1.reduce(0, +) }
        let rows = observed.map { $0.reduce(0, +) }
        let columns = (0..<k).map { j in observed.reduce(0) { $0 + $1[j] } }
        var disagreement = 0.0
        var expected = 0.0
        for i in 0..<k {
            for j in 0..<k {
                let weight: Double
                switch weights {
                case .none: weight = i == j ? 0 : 1
                case .linear: weight = Double(abs(i - j))
                case .quadratic: weight = Double((i - j) * (i - j))
                }
                disagreement += weight * observed[i][j]
                expected += weight * rows[i] * columns[j] / total
            }
        }
        return expected == 0 ? nil : 1 - disagreement / expected
    }

    /// Cohen's kappa between two raters of ordered numeric scores (categories sorted by value).
    public static func cohenKappa(_ a: [Int], _ b: [Int], weights: KappaWeights) -> Double? {
        let order = Array(Set(a + b)).sorted().map(String.init)
        return cohenKappa(a.map(String.init), b.map(String.init), labels: order, weights: weights)
    }

    /// Fleiss' kappa from a subjects × categories table of counts, every subject rated by the same
    /// number of raters (statsmodels' `fleiss_kappa`); `nil` when undefined.
    public static func fleissKappa(_ table: [[Int]]) -> Double? {
        guard let raters = table.first?.reduce(0, +), raters > 1, table.allSatisfy({ $0.reduce(0, +) == raters })
        else { return nil }
        let subjects = Double(table.count)
        let n = Double(raters)
        let categories = table[0].count
        let shares = (0..<categories).map { j in Double(table.reduce(0) { $0 + $1[j] }) / (subjects * n) }
        let agreement =
            table.reduce(0.0) { total, row in
                total + (Double(row.reduce(0) { $0 + $1 * $1 }) - n) / (n * (n - 1))
            } / subjects
        let chance = shares.reduce(0) { $0 + $1 * $1 }
        return chance == 1 ? nil : (agreement - chance) / (1 - chance)
    }

    /// The level of measurement Krippendorff's alpha compares values at.
    public enum MeasurementLevel: String, Sendable, CaseIterable {
        case nominal, ordinal, interval, ratio
    }

    /// Krippendorff's alpha over raters × units (`nil` = missing), as the `krippendorff` package
    /// computes it from the coincidence matrix; units with fewer than two values are left out.
    /// `nil` when undefined (fewer than two pairable values, or no expected disagreement).
    public static func krippendorffAlpha(_ data: [[Double?]], level: MeasurementLevel) -> Double? {
        let units = data.map(\.count).max() ?? 0
        let values = Array(Set(data.flatMap { $0.compactMap { $0 } })).sorted()
        let index = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })
        let v = values.count
        var coincidence = Array(repeating: Array(repeating: 0.0, count: v), count: v)
        for unit in 0..<units {
            let present = data.compactMap { unit < $0.count ? $0[unit] : nil }
            guard present.count >= 2 else { continue }
            let weight = 1 / Double(present.count - 1)
            for (x, first) in present.enumerated() {
                for (y, second) in present.enumerated() where x != y {
                    coincidence[index[first]!][index[second]!] += weight
                }
            }
        }
        let marginals = coincidence.map { $0.reduce(0, +) }
        let n = marginals.reduce(0, +)
        guard n > 1 else { return nil }
        func delta(_ c: Int, _ k: Int) -> Double {
            switch level {
            case .nominal: return c == k ? 0 : 1
            case .interval: return (values[c] - values[k]) * (values[c] - values[k])
            case .ratio:
                let sum = values[c] + values[k]
                return sum == 0 ? 0 : pow((values[c] - values[k]) / sum, 2)
            case .ordinal:
                let (low, high) = (min(c, k), max(c, k))
                let between = marginals[low...high].reduce(0, +) - (marginals[low] + marginals[high]) / 2
                return between * between
            }
        }
        var observed = 0.0
        var expected = 0.0
        for c in 0..<v {
            for k in 0..<v {
                let d = delta(c, k)
                observed += coincidence[c][k] * d
                expected += marginals[c] * marginals[k] * d
            }
        }
        return expected == 0 ? nil : 1 - (n - 1) * observed / expected
    }

    /// Kendall's tau-b (ties in either variable accounted for), as scipy's `kendalltau`; `nil`
    /// when undefined. O(n²) pairs: meant for evaluation sets, not millions of rows.
    public static func kendallTauB(_ x: [Double], _ y: [Double]) -> Double? {
        guard x.count == y.count, x.count > 1 else { return nil }
        var concordant = 0.0
        var discordant = 0.0
        var tiesX = 0.0
        var tiesY = 0.0
        var pairs = 0.0
        for i in 0..<x.count {
            for j in (i + 1)..<x.count {
                pairs += 1
                let dx = x[i] - x[j]
                let dy = y[i] - y[j]
                if dx == 0 { tiesX += 1 }
                if dy == 0 { tiesY += 1 }
                if dx == 0 || dy == 0 { continue }
                if (dx > 0) == (dy > 0) { concordant += 1 } else { discordant += 1 }
            }
        }
        let denominator = ((pairs - tiesX) * (pairs - tiesY)).squareRoot()
        return denominator == 0 ? nil : (concordant - discordant) / denominator
    }

    /// Calibration of confidences against correctness in `bins` equal-width bins over [0, 1]; a
    /// confidence `c` falls in the bin `(lower, upper]` that holds it (0 in the first).
    public static func calibrationBins(confidences: [Double], correct: [Bool], bins: Int = 10) -> [CalibrationBin] {
        var groups = Array(repeating: [(Double, Bool)](), count: bins)
        for (c, ok) in zip(confidences, correct) {
            let bin = min(bins - 1, max(0, Int((c * Double(bins)).rounded(.up)) - 1))
            groups[bin].append((c, ok))
        }
        return groups.enumerated().map { i, members in
            CalibrationBin(
                lower: Double(i) / Double(bins), upper: Double(i + 1) / Double(bins), count: members.count,
                meanConfidence: members.isEmpty ? 0 : members.reduce(0) { $0 + $1.0 } / Double(members.count),
                accuracy: members.isEmpty ? 0 : Double(members.filter(\.1).count) / Double(members.count))
        }
    }

    /// Expected calibration error: the bins' |accuracy − mean confidence|, weighted by their share
    /// of rows (`calibrationBins`).
    public static func expectedCalibrationError(confidences: [Double], correct: [Bool], bins: Int = 10) -> Double {
        let total = Double(confidences.count)
        guard total > 0 else { return 0 }
        return calibrationBins(confidences: confidences, correct: correct, bins: bins).reduce(0) {
            $0 + Double($1.count) / total * abs($1.accuracy - $1.meanConfidence)
        }
    }
}

/// Rescalings of scores, per stage or per group (scipy's `zscore` with ddof 0, min-max, and the
/// average-rank percentile).
public enum Normalization: String, Sendable, CaseIterable {
    case zscore
    case minmax
    case percentile

    /// The values rescaled; constant inputs give zeros (z-score, min-max) or 0.5 (percentile).
    public func apply(_ values: [Double]) -> [Double] {
        guard !values.isEmpty else { return [] }
        switch self {
        case .zscore:
            let mean = values.reduce(0, +) / Double(values.count)
            let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            return values.map { std == 0 ? 0 : ($0 - mean) / std }
        case .minmax:
            let (low, high) = (values.min()!, values.max()!)
            return values.map { high == low ? 0 : ($0 - low) / (high - low) }
        case .percentile:
            guard values.count > 1 else { return [0.5] }
            return Statistics.ranks(values).map { ($0 - 1) / Double(values.count - 1) }
        }
    }
}
