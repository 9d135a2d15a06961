/// The ordering logic of a streaming run, apart from any I/O: a bounded window of rows in flight,
/// results released strictly in input order, and the failure budget that aborts a run.
///
/// The runner asks `canAdmit` before reading a row, calls `admit()` when it starts one, and
/// `complete(_:with:)` when one finishes; what comes back is ready to be written, in order.
package struct OrderedWindow<Result> {
    /// Rows in flight at most.
    package let capacity: Int
    /// Finished rows held back behind a slower one, at most, before reading pauses.
    package let maxPending: Int
    private(set) var inFlight = 0
    private(set) var admitted = 0
    private var nextToRelease = 0
    private var pending: [Int: Result] = [:]

    package init(capacity: Int, maxPending: Int? = nil) {
        self.capacity = max(1, capacity)
        self.maxPending = maxPending ?? max(1, capacity) * 4
    }

    /// Whether another row may start: the window has room and not too many finished rows wait.
    package var canAdmit: Bool { inFlight < capacity && pending.count < maxPending }

    /// Finished rows waiting for an earlier one.
    package var waiting: Int { pending.count }

    /// Starts the next row; returns its index in input order.
    package mutating func admit() -> Int {
        inFlight += 1
        admitted += 1
        return admitted - 1
    }

    /// Records that row `index` finished; returns every result now ready, in input order.
    package mutating func complete(_ index: Int, with result: Result) -> [Result] {
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
