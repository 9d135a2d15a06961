/// The ordering logic of a streaming run, apart from any I/O: a bounded window of rows in flight,
/// results released strictly in input order, and the failure budget that aborts a run.
///
/// The runner asks `canAdmit` before reading a row, calls `admit()` when it starts one, and
/// `complete(_:with:)` when one finishes; what comes back is ready to be written, in order.
struct OrderedWindow<Result> {
    /// Rows in flight at most.
    let capacity: Int
    /// Finished rows held back behind a slower one, at most, before reading pauses.
    let maxPending: Int
    private(set) var inFlight = 0
    private(set) var admitted = 0
    private var nextToRelease = 0
    private var pending: [Int: Result] = [:]

    init(capacity: Int, maxPending: Int? = nil) {
        self.capacity = max(1, capacity)
        self.maxPending = maxPending ?? max(1, capacity) * 4
    }

    /// Whether another row may start: the window has room and not too many finished rows wait.
    var canAdmit: Bool { inFlight < capacity && pending.count < maxPending }

    /// Finished rows waiting for an earlier one.
    var waiting: Int { pending.count }

    /// Starts the next row; returns its index in input order.
    mutating func admit() -> Int {
        inFlight += 1
        admitted += 1
        return admitted - 1
    }

    /// Records that row `index` finished; returns every result now ready, in input order.
    mutating func complete(_ index: Int, with result: Result) -> [Result] {
        precondition(
            index >= nextToRelease && index < admitted && pending[index] == nil, "row \(index) completed twice")
        inFlight -= 1
        pending[index] = result
        var ready: [Result] = []
        while let next = pending.removeValue(forKey: nextToRelease) {
            ready.append(next)
            nextToRelease += 1
        }
        return ready
    }
}

/// Aborts a run when too many of its rows fail (`run.max_failure_ratio`), judged after 10 rows.
struct FailureBudget {
    let maxRatio: Double
    private(set) var rows = 0
    private(set) var failed = 0
    /// Why the run must stop, once it must.
    private(set) var abortReason: String?

    init(maxRatio: Double) { self.maxRatio = maxRatio }

    mutating func record(failed rowFailed: Bool) {
        rows += 1
        if rowFailed { failed += 1 }
        if abortReason == nil, rows >= 10, Double(failed) / Double(rows) > maxRatio {
            abortReason = "\(failed) of the first \(rows) rows failed, above max_failure_ratio \(maxRatio)"
        }
    }

    /// A dataset-wide stage's own failures (its requests'; rows whose upstream failed are counted
    /// where they failed): the run stops after the stage when more than `maxRatio` of its rows failed
    /// (an engine that died mid-stage fails every text), judged from 10 rows.
    mutating func record(stage: String, rows: Int, failed: Int) {
        if abortReason == nil, rows >= 10, Double(failed) / Double(rows) > maxRatio {
            abortReason =
                "\(failed) of the \(rows) rows of dataset-wide stage '\(stage)' failed, above max_failure_ratio \(maxRatio)"
        }
    }
}
