import Foundation

/// Maps from a classifier's confidence to the probability that its label is right, fitted on rows
/// with gold labels (docs/metrics.md, "Calibration").
public enum Calibration {
    /// The temperature `T` that minimizes the negative log-likelihood of the gold classes under
    /// `softmax(logits / T)` (Guo et al., 2017): one parameter, so the chosen class never changes.
    /// Searched by golden section over `log T` in [10⁻⁴, 10⁴] (the likelihood is convex in `1/T`).
    /// - Parameters:
    ///   - logits: per row, a score per class.
    ///   - gold: per row, the index of its gold class in `logits`.
    public static func fitTemperature(logits: [[Double]], gold: [Int]) -> Double {
        minimize { temperature in
            zip(logits, gold).reduce(0.0) { total, row in
                let scaled = row.0.map { $0 / temperature }
                let top = scaled.max() ?? 0
                let logSum = top + log(scaled.reduce(0) { $0 + exp($1 - top) })
                return total + logSum - scaled[row.1]
            }
        }
    }

    /// The temperature `T` that minimizes the negative log-likelihood of `correct` under
    /// `σ(logit(confidence) / T)`: temperature scaling of one confidence per row, for classifiers
    /// that give no score per class.
    public static func fitBinaryTemperature(confidences: [Double], correct: [Bool]) -> Double {
        let logits = confidences.map(logit)
        return minimize { temperature in
            zip(logits, correct).reduce(0.0) { total, row in
                let z = row.0 / temperature
                // −log σ(z) = log(1 + e^−z), −log(1 − σ(z)) = log(1 + e^z), computed stably.
                return total + softplus(row.1 ? -z : z)
            }
        }
    }

    /// `softmax(values / temperature)`.
    public static func softmax(_ values: [Double], temperature: Double) -> [Double] {
        let top = values.max() ?? 0
        let weights = values.map { exp(($0 - top) / temperature) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    /// `σ(logit(confidence) / temperature)`.
    public static func scaled(_ confidence: Double, temperature: Double) -> Double {
        1 / (1 + exp(-logit(confidence) / temperature))
    }

    static func logit(_ p: Double) -> Double {
        let clipped = min(max(p, 1e-12), 1 - 1e-12)
        return log(clipped / (1 - clipped))
    }

    static func softplus(_ x: Double) -> Double { x > 30 ? x : log1p(exp(x)) }

    /// Golden-section search for the minimum of `loss(T)` over `log T` in [−4 ln 10, 4 ln 10].
    static func minimize(_ loss: (Double) -> Double) -> Double {
        let ratio = (5.0.squareRoot() - 1) / 2
        var low = -4 * log(10.0)
        var high = 4 * log(10.0)
        var a = high - ratio * (high - low)
        var b = low + ratio * (high - low)
        var lossA = loss(exp(a))
        var lossB = loss(exp(b))
        for _ in 0..<200 where high - low > 1e-10 {
            if lossA <= lossB {
                high = b
                b = a
                lossB = lossA
                a = high - ratio * (high - low)
                lossA = loss(exp(a))
            } else {
                low = a
                a = b
                lossA = lossB
                b = low + ratio * (high - low)
                lossB = loss(exp(b))
            }
        }
        return exp((low + high) / 2)
    }

    /// A non-decreasing map from confidence to accuracy, fitted by pool-adjacent-violators, as
    /// scikit-learn's `IsotonicRegression(out_of_bounds="clip")`: equal inputs are merged (mean of
    /// their targets, weighted by count), and a value between fitted points is interpolated
    /// linearly; one outside them takes the nearest end's.
    public struct Isotonic: Sendable, Equatable {
        public let x: [Double]
        public let y: [Double]

        /// Fits `targets` (1 for a right label, 0 for a wrong one) against `inputs` (confidences).
        public init(inputs: [Double], targets: [Double]) {
            precondition(inputs.count == targets.count && !inputs.isEmpty, "isotonic needs paired, non-empty data")
            var merged: [(x: Double, sum: Double, weight: Double)] = []
            for (x, t) in zip(inputs, targets).sorted(by: { $0.0 < $1.0 }) {
                if let last = merged.last, last.x == x {
                    merged[merged.count - 1].sum += t
                    merged[merged.count - 1].weight += 1
                } else {
                    merged.append((x, t, 1))
                }
            }
            // Blocks of consecutive points, each with its mean; adjacent violators are pooled.
            var blocks: [(mean: Double, weight: Double, count: Int)] = []
            for point in merged {
                blocks.append((point.sum / point.weight, point.weight, 1))
                while blocks.count > 1 && blocks[blocks.count - 2].mean > blocks[blocks.count - 1].mean {
                    let last = blocks.removeLast()
                    let previous = blocks.removeLast()
                    let weight = previous.weight + last.weight
                    blocks.append(
                        (
                            (previous.mean * previous.weight + last.mean * last.weight) / weight, weight,
                            previous.count + last.count
                        ))
                }
            }
            x = merged.map(\.x)
            y = blocks.flatMap { repeatElement($0.mean, count: $0.count) }
        }

        public func callAsFunction(_ value: Double) -> Double {
            guard value > x[0] else { return y[0] }
            guard value < x[x.count - 1] else { return y[y.count - 1] }
            // The first fitted point at or above `value`, by binary search.
            var low = 0
            var high = x.count - 1
            while low < high {
                let middle = (low + high) / 2
                if x[middle] < value { low = middle + 1 } else { high = middle }
            }
            guard x[low] != value else { return y[low] }
            let share = (value - x[low - 1]) / (x[low] - x[low - 1])
            return y[low - 1] + (y[low] - y[low - 1]) * share
        }
    }
}
