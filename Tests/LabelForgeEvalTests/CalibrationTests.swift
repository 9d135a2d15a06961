import Foundation
import LabelForgeEval
import Testing

/// Reference values were computed once with scikit-learn 1.9.1 (`IsotonicRegression(out_of_bounds=
/// "clip")`) and SciPy 1.17.1 (`minimize_scalar(method="bounded")` of the same negative
/// log-likelihoods over log T), on the rows below:
///
///     conf = [round(0.3 + 0.7 * ((i * 37) % 60) / 60, 4) for i in range(60)]
///     correct = [1.0 if ((i * 11) % 10) < (3 + (4 if c > 0.75 else 0)) else 0.0 for i, c in enumerate(conf)]
///     logits = [[((i * 7) % 5) / 5, ((i * 3) % 7) / 7, ((i * 5) % 3) / 3] for i in range(60)]
///     gold = [(i * 13) % 3 if i % 4 else argmax(logits[i]) for i in range(60)]
@Suite struct CalibrationTests {
    static let confidences: [Double] = (0..<60).map { (i: Int) -> Double in
        let raw: Double = 0.3 + 0.7 * Double((i * 37) % 60) / 60
        return (raw * 1e4).rounded() / 1e4
    }
    static let correct: [Bool] = confidences.indices.map { (i: Int) -> Bool in
        let threshold: Int = confidences[i] > 0.75 ? 7 : 3
        return (i * 11) % 10 < threshold
    }
    static let logits: [[Double]] = (0..<60).map { (i: Int) -> [Double] in
        let a: Double = Double((i * 7) % 5) / 5
        let b: Double = Double((i * 3) % 7) / 7
        let c: Double = Double((i * 5) % 3) / 3
        return [a, b, c]
    }
    static let gold: [Int] = (0..<60).map { (i: Int) -> Int in
        let row = logits[i]
        let best = row.indices.max { row[$0] < row[$1] }!
        return i % 4 != 0 ? (i * 13) % 3 : best
    }

    @Test("isotonic regression matches scikit-learn: pooled violators, linear between points, clipped outside")
    func isotonic() {
        let map = Calibration.Isotonic(inputs: Self.confidences, targets: Self.correct.map { $0 ? 1 : 0 })
        let queries = [0.2, 0.31, 0.5, 0.6333, 0.72, 0.745, 0.7517, 0.76, 0.77, 0.9, 0.99]
        let expected = [
            0.25, 0.25, 0.3, 0.3, 0.333333333333, 0.333333333333, 0.333333333333, 0.490028490028, 0.7, 0.7, 0.7,
        ]
        for (query, value) in zip(queries, expected) {
            #expect(abs(map(query) - value) < 1e-9, "at \(query): \(map(query)) vs scikit-learn's \(value)")
        }
        #expect(zip(map.y, map.y.dropFirst()).allSatisfy { $0 <= $1 }, "the fitted map never decreases")
    }

    @Test("temperature scaling finds SciPy's minimum of the same likelihood, softmax and binary")
    func temperatures() {
        let softmax = Calibration.fitTemperature(logits: Self.logits, gold: Self.gold)
        #expect(abs(softmax - 0.8165076962299417) < 1e-6, "\(softmax)")
        let binary = Calibration.fitBinaryTemperature(confidences: Self.confidences, correct: Self.correct)
        #expect(abs(binary - 5.3382752937742035) < 1e-6, "\(binary)")
    }

    @Test("a planted overconfidence: temperature scaling and isotonic both bring the ECE down on held-out rows")
    func plantedMiscalibration() {
        // Rows whose true chance of being right is p, reported as σ(2.5 · logit(p)) (overconfident,
        // as a model trained to a low loss is); fitted on even rows, measured on odd ones.
        var generator = SplitMix64Like(seed: 3)
        var reported: [Double] = []
        var right: [Bool] = []
        for _ in 0..<4000 {
            let p = 0.2 + 0.75 * generator.unit()
            reported.append(1 / (1 + exp(-2.5 * log(p / (1 - p)))))
            right.append(generator.unit() < p)
        }
        let fit = stride(from: 0, to: 4000, by: 2)
        let held = Array(stride(from: 1, to: 4000, by: 2))
        let before = Statistics.expectedCalibrationError(
            confidences: held.map { reported[$0] }, correct: held.map { right[$0] })
        let temperature = Calibration.fitBinaryTemperature(
            confidences: fit.map { reported[$0] }, correct: fit.map { right[$0] })
        let afterTemperature = Statistics.expectedCalibrationError(
            confidences: held.map { Calibration.scaled(reported[$0], temperature: temperature) },
            correct: held.map { right[$0] })
        let isotonic = Calibration.Isotonic(inputs: fit.map { reported[$0] }, targets: fit.map { right[$0] ? 1 : 0 })
        let afterIsotonic = Statistics.expectedCalibrationError(
            confidences: held.map { isotonic(reported[$0]) }, correct: held.map { right[$0] })
        #expect(before > 0.1, "the planted overconfidence shows: \(before)")
        #expect(afterTemperature < 0.05 && afterIsotonic < 0.05, "\(before) → \(afterTemperature), \(afterIsotonic)")
        #expect(abs(temperature - 2.5) < 0.25, "the planted temperature is found: \(temperature)")
    }
}

/// A seeded generator of uniform values in [0, 1) (SplitMix64), local to these tests.
struct SplitMix64Like {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func unit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}
