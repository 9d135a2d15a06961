import LabelForgeEval
import Testing

/// Reference values were computed once with scikit-learn 1.x (`cohen_kappa_score`) and
/// SciPy 1.17 (`pearsonr`, `spearmanr`) and are kept here as golden numbers.
@Suite struct StatisticsTests {
    @Test("Cohen's kappa agrees with scikit-learn", arguments: [
        (["pos", "neg", "neu", "pos", "pos", "neg", "neu", "neu", "pos", "neg"],
         ["pos", "neg", "pos", "pos", "neu", "neg", "neu", "neg", "pos", "neg"], 0.5454545454545454),
        (["x", "x", "y", "y", "z", "x", "y", "z", "z", "x", "y", "x"],
         ["x", "y", "y", "y", "z", "x", "x", "z", "y", "x", "y", "z"], 0.49473684210526314),
        (["a", "b"], ["b", "a"], -1.0),
    ])
    func kappa(a: [String], b: [String], expected: Double) throws {
        #expect(abs(try #require(Statistics.cohenKappa(a, b)) - expected) < 1e-9)
        // The same pairs counted into a confusion table, as `labelforge diff` streams them.
        var confusion: [String: [String: Int]] = [:]
        for (x, y) in zip(a, b) { confusion[x, default: [:]][y, default: 0] += 1 }
        #expect(abs(try #require(Statistics.cohenKappa(confusion: confusion)) - expected) < 1e-9)
    }

    @Test("Pearson and Spearman agree with SciPy", arguments: [
        ([1, 2, 3, 4, 5, 6, 7, 8.5], [2, 1, 4, 3, 7, 8, 6, 9], 0.8973772574163261, 0.880952380952381),
        ([1, 1, 2, 2, 3, 10], [3, 2, 2, 1, 5, 5], 0.6620302829235921, 0.5454545454545454),
    ])
    func correlations(x: [Double], y: [Double], pearson: Double, spearman: Double) throws {
        #expect(abs(try #require(Statistics.pearson(x, y)) - pearson) < 1e-9)
        #expect(abs(try #require(Statistics.spearman(x, y)) - spearman) < 1e-9)
    }

    @Test("ties share their average rank")
    func ranks() {
        #expect(Statistics.ranks([10, 20, 10, 30]) == [1.5, 3, 1.5, 4])
    }

    @Test("constant inputs have no correlation; identical labels have kappa 1")
    func degenerate() {
        #expect(Statistics.pearson([1, 1, 1], [1, 2, 3]) == nil)
        #expect(Statistics.cohenKappa(["a", "a"], ["a", "a"]) == 1)
    }

    @Test("accuracy and macro-F1 from accumulated pairs")
    func agreement() {
        let a = Agreement(pairs: [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")])
        #expect(a.count == 4)
        #expect(a.accuracy == 0.75)
        // F1(a) = 2·1/(2·1+1+0) = 2/3; F1(b) = 2·2/(2·2+0+1) = 4/5.
        #expect(abs(a.macroF1 - (2.0 / 3 + 0.8) / 2) < 1e-12)
    }
}
