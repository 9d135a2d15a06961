import LabelForgeEval
import Testing

// Golden numbers, computed once with scikit-learn 1.9.1, SciPy 1.17.1, statsmodels 0.15.0 and the
// `krippendorff` package (PyPI, 2026-11-26), rounded to 6 decimals, by this script:
//
//   import numpy as np, krippendorff
//   from sklearn.metrics import precision_recall_fscore_support, accuracy_score, cohen_kappa_score, confusion_matrix
//   from scipy.stats import kendalltau, zscore, rankdata
//   from statsmodels.stats.inter_rater import fleiss_kappa
//   gold = ["cat","dog","cat","bird","dog","cat","bird","bird","dog","cat","dog","cat"]
//   pred = ["cat","dog","dog","bird","dog","cat","cat","bird","bird","cat","dog","dog"]
//   labels = ["bird","cat","dog"]
//   precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)            # per class
//   precision_recall_fscore_support(gold, pred, labels=labels, average=avg, zero_division=0)  # macro, micro, weighted
//   accuracy_score(gold, pred); confusion_matrix(gold, pred, labels=labels)
//   a = [1,2,3,3,2,1,4,5,4,3,2,2]; b = [1,2,2,3,3,1,5,5,4,2,2,3]
//   cohen_kappa_score(a, b, weights=w) for w in [None, "linear", "quadratic"]
//   x = [1.0,2.5,3.0,3.0,4.2,5.0,6.1,6.1,7.0]; y = [2.0,2.0,3.5,3.1,5.0,4.0,7.0,6.0,6.5]; kendalltau(x, y)
//   fleiss_kappa(np.array(table))          # table below (statsmodels' own example data)
//   krippendorff.alpha(reliability_data=rd, level_of_measurement=level)   # the package's README data
//   zscore(v); (v-min)/(max-min); (rankdata(v, method="average")-1)/(len(v)-1) for v = [3,1,4,1,5,9,2,6]
//   ECE: 10 equal-width bins (lo, hi], |mean(correct) - mean(conf)| weighted by the bin's share
@Suite struct MetricsTests {
    static let gold = ["cat", "dog", "cat", "bird", "dog", "cat", "bird", "bird", "dog", "cat", "dog", "cat"]
    static let predicted = ["cat", "dog", "dog", "bird", "dog", "cat", "cat", "bird", "bird", "cat", "dog", "dog"]

    func close(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-6) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= tolerance
    }

    @Test(
        "precision, recall, F1 (per class, macro, micro, weighted), accuracy and the confusion matrix match scikit-learn"
    )
    func classification() {
        let report = ClassificationReport(gold: Self.gold, predicted: Self.predicted)
        #expect(report.labels == ["bird", "cat", "dog"])
        #expect(report.confusion == [[2, 1, 0], [0, 3, 2], [1, 0, 3]])
        let expected: [String: (Double, Double, Double, Int)] = [
            "bird": (0.666667, 0.666667, 0.666667, 3), "cat": (0.75, 0.6, 0.666667, 5), "dog": (0.6, 0.75, 0.666667, 4),
        ]
        for (label, (p, r, f, s)) in expected {
            let scores = report.perClass[label]!
            #expect(close(scores.precision, p) && close(scores.recall, r) && close(scores.f1, f) && scores.support == s)
        }
        #expect(close(report.macro.precision, 0.672222) && close(report.macro.recall, 0.672222))
        #expect(close(report.macro.f1, 0.666667))
        #expect(close(report.micro.precision, 0.666667) && close(report.micro.f1, 0.666667))
        #expect(close(report.weighted.precision, 0.679167) && close(report.weighted.f1, 0.666667))
        #expect(close(report.accuracy, 0.666667))
        // A class never predicted scores 0 precision (sklearn's zero_division=0), not NaN.
        let never = ClassificationReport(gold: ["a", "b"], predicted: ["a", "a"], labels: ["a", "b"])
        #expect(never.perClass["b"]?.precision == 0 && never.perClass["b"]?.f1 == 0)
    }

    @Test("the chance level is the accuracy of always answering the most common gold label")
    func majority() {
        let agreement = Agreement(pairs: zip(Self.predicted, Self.gold).map { ($0, $1) })
        #expect(close(agreement.majorityBaseline, 5.0 / 12))
        #expect(Agreement().majorityBaseline == 0)
    }

    @Test("Cohen's kappa unweighted, linear and quadratic match scikit-learn")
    func weightedKappa() {
        let a = [1, 2, 3, 3, 2, 1, 4, 5, 4, 3, 2, 2]
        let b = [1, 2, 2, 3, 3, 1, 5, 5, 4, 2, 2, 3]
        #expect(close(Statistics.cohenKappa(a, b, weights: .none), 0.459459))
        #expect(close(Statistics.cohenKappa(a, b, weights: .linear), 0.69697))
        #expect(close(Statistics.cohenKappa(a, b, weights: .quadratic), 0.864865))
        #expect(close(Statistics.cohenKappa(Self.gold, Self.predicted, weights: .none), 0.494737))
    }

    @Test("Fleiss' kappa matches statsmodels")
    func fleiss() {
        let table = [
            [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
        ]
        #expect(close(Statistics.fleissKappa(table), 0.209931))
        #expect(Statistics.fleissKappa([[1, 0], [0, 2]]) == nil, "subjects with different rater counts")
    }

    @Test("Krippendorff's alpha at every level matches the krippendorff package, missing values included")
    func krippendorff() {
        let data: [[Double?]] = [
            [nil, nil, nil, nil, nil, 3, 4, 1, 2, 1, 1, 3, 3, nil, 3],
            [1, nil, 2, 1, 3, 3, 4, 3, nil, nil, nil, nil, nil, nil, nil],
            [nil, nil, 2, 1, 3, 4, 4, nil, 2, 1, 1, 3, 3, nil, 4],
        ]
        // The package's own doctest values: nominal 0.691358, interval 0.810845.
        #expect(close(Statistics.krippendorffAlpha(data, level: .nominal), 0.691358))
        #expect(close(Statistics.krippendorffAlpha(data, level: .interval), 0.810845))
        #expect(close(Statistics.krippendorffAlpha(data, level: .ordinal), 0.806721))
        #expect(close(Statistics.krippendorffAlpha(data, level: .ratio), 0.808944))
        #expect(Statistics.krippendorffAlpha([[1, nil], [nil, 2]], level: .nominal) == nil)
    }

    @Test("Kendall's tau-b with ties matches SciPy")
    func kendall() {
        let x = [1.0, 2.5, 3.0, 3.0, 4.2, 5.0, 6.1, 6.1, 7.0]
        let y = [2.0, 2.0, 3.5, 3.1, 5.0, 4.0, 7.0, 6.0, 6.5]
        #expect(close(Statistics.kendallTauB(x, y), 0.840668))
        #expect(Statistics.kendallTauB([1, 1], [2, 3]) == nil)
    }

    @Test("expected calibration error over 10 bins, and the bins of the reliability diagram")
    func calibration() {
        let confidences = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.52, 0.99, 0.3]
        let correct = [1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0].map { $0 == 1 }
        #expect(close(Statistics.expectedCalibrationError(confidences: confidences, correct: correct), 0.215))
        let bins = Statistics.calibrationBins(confidences: confidences, correct: correct)
        #expect(bins.count == 10 && bins.map(\.count).reduce(0, +) == 12)
        // 0.3 falls in (0.2, 0.3]; 1.0 would fall in the last bin, 0 in the first.
        #expect(bins[2].count == 1 && bins[2].accuracy == 0)
        #expect(
            Statistics.calibrationBins(confidences: [0, 1], correct: [true, true]).map(\.count) == [
                1, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ])
    }

    @Test("z-score, min-max and percentile normalization match SciPy")
    func normalization() {
        let v = [3.0, 1, 4, 1, 5, 9, 2, 6]
        let z = [-0.340352, -1.118298, 0.048622, -1.118298, 0.437595, 1.993488, -0.729325, 0.826568]
        #expect(zip(Normalization.zscore.apply(v), z).allSatisfy { close($0, $1) })
        #expect(Normalization.minmax.apply(v) == [0.25, 0, 0.375, 0, 0.5, 1, 0.125, 0.625])
        let p = [0.428571, 0.071429, 0.571429, 0.071429, 0.714286, 1, 0.285714, 0.857143]
        #expect(zip(Normalization.percentile.apply(v), p).allSatisfy { close($0, $1) })
        #expect(Normalization.zscore.apply([2, 2]) == [0, 0])
    }
}
