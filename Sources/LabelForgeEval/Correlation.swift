import Foundation

/// Agreement and correlation statistics between two runs' outputs (or a run and gold labels).
public enum Statistics {
    /// Cohen's kappa of two raters over the same items: `(p_o - p_e) / (1 - p_e)`.
    ///
    /// Returns 1 when both raters use one identical label throughout (no chance correction is
    /// possible, and they agree perfectly), and `nil` for no items. Matches scikit-learn's
    /// `cohen_kappa_score` (unweighted).
    public static func cohenKappa(_ a: [String], _ b: [String]) -> Double? {
        precondition(a.count == b.count, "kappa needs paired ratings")
        guard !a.isEmpty else { return nil }
        let n = Double(a.count)
        var countA: [String: Double] = [:]
        var countB: [String: Double] = [:]
        var agree = 0.0
        for (x, y) in zip(a, b) {
            countA[x, default: 0] += 1
            countB[y, default: 0] += 1
            if x == y { agree += 1 }
        }
        let observed = agree / n
        let expected = Set(countA.keys).union(countB.keys).reduce(0.0) { sum, label in
            sum + (countA[label] ?? 0) / n * (countB[label] ?? 0) / n
        }
        guard expected < 1 else { return observed == 1 ? 1 : 0 }
        return (observed - expected) / (1 - expected)
    }

    /// Cohen's kappa from a confusion table (`confusion[a][b]`: items rated `a` by one rater and
    /// `b` by the other), for ratings counted as they stream by; equal to `cohenKappa(_:_:)` over
    /// the same pairs.
    public static func cohenKappa(confusion: [String: [String: Int]]) -> Double? {
        var countA: [String: Double] = [:]
        var countB: [String: Double] = [:]
        var agree = 0.0
        var total = 0.0
        for (x, row) in confusion {
            for (y, count) in row {
                let count = Double(count)
                countA[x, default: 0] += count
                countB[y, default: 0] += count
                if x == y { agree += count }
                total += count
            }
        }
        guard total > 0 else { return nil }
        let observed = agree / total
        let expected = Set(countA.keys).union(countB.keys).reduce(0.0) { sum, label in
            sum + (countA[label] ?? 0) / total * (countB[label] ?? 0) / total
        }
        guard expected < 1 else { return observed == 1 ? 1 : 0 }
        return (observed - expected) / (1 - expected)
    }

    /// Pearson's correlation coefficient, or `nil` when either side is constant or there are
    /// fewer than two pairs. Matches `scipy.stats.pearsonr`.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        precondition(x.count == y.count, "correlation needs paired values")
        guard x.count >= 2 else { return nil }
        let n = Double(x.count)
        let meanX = x.reduce(0, +) / n
        let meanY = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - meanX) * (b - meanY)
            sxx += (a - meanX) * (a - meanX)
            syy += (b - meanY) * (b - meanY)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return max(-1, min(1, sxy / (sxx * syy).squareRoot()))
    }

    /// Spearman's rank correlation: Pearson over average ranks (ties share their mean rank).
    /// Matches `scipy.stats.spearmanr`.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        pearson(ranks(x), ranks(y))
    }

    /// 1-based average ranks.
    public static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let average = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = average }
            i = j + 1
        }
        return ranks
    }
}
