/// Aborts a run when too many of its rows fail (`run.max_failure_ratio`), judged after 10 rows.
package struct FailureBudget {
    package let maxRatio: Double
    private(set) var rows = 0
    private(set) var failed = 0
    /// Why the run must stop, once it must.
    private(set) var abortReason: String?

    package init(maxRatio: Double) { self.maxRatio = maxRatio }

    package mutating func record(failed rowFailed: Bool) {
        rows += 1
        if rowFailed { failed += 1 }
        if abortReason == nil, rows >= 10, Double(failed) / Double(rows) > maxRatio {
            abortReason = "\(failed) of the first \(rows) rows failed, above max_failure_ratio \(maxRatio)"
        }
    }

    /// A dataset-wide stage's own failures (its requests'; rows whose upstream failed are counted
    /// where they failed): the run stops after the stage when more than `maxRatio` of its rows failed
    /// (an engine that died mid-stage fails every text), judged from 10 rows.
    package mutating func record(stage: String, rows: Int, failed: Int) {
        if abortReason == nil, rows >= 10, Double(failed) / Double(rows) > maxRatio {
            abortReason =
                "\(failed) of the \(rows) rows of dataset-wide stage '\(stage)' failed, above max_failure_ratio \(maxRatio)"
        }
    }
}
