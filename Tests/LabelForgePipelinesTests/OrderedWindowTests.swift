import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct OrderedWindowTests {
    @Test("results finished out of order are released in input order")
    func reorders() {
        var window = OrderedWindow<String>(capacity: 3)
        let indices = (0..<3).map { _ in window.admit() }
        #expect(indices == [0, 1, 2])
        #expect(!window.canAdmit)
        #expect(window.complete(2, with: "c").isEmpty)
        #expect(window.complete(1, with: "b").isEmpty)
        #expect(window.waiting == 2)
        #expect(window.complete(0, with: "a") == ["a", "b", "c"])
        #expect(window.waiting == 0)
        #expect(window.canAdmit)
    }

    @Test("reading pauses while finished rows queue behind a slow one, so memory stays bounded")
    func boundedPending() {
        var window = OrderedWindow<Int>(capacity: 2, maxPending: 3)
        let slow = window.admit()
        #expect(slow == 0)
        var released: [Int] = []
        var admitted = 1
        while window.canAdmit {
            let index = window.admit()
            admitted += 1
            released += window.complete(index, with: index)
        }
        #expect(released.isEmpty)
        #expect(window.waiting == 3)
        #expect(admitted == 4)
        #expect(window.complete(slow, with: slow) == [0, 1, 2, 3])
    }

    @Test("the failure budget aborts only after 10 rows, and only above the ratio")
    func budget() {
        var budget = FailureBudget(maxRatio: 0.5)
        for _ in 0..<9 { budget.record(failed: true) }
        #expect(budget.abortReason == nil)
        budget.record(failed: true)
        #expect(budget.abortReason == "10 of the first 10 rows failed, above max_failure_ratio 0.5")

        var even = FailureBudget(maxRatio: 0.5)
        for i in 0..<20 { even.record(failed: i % 2 == 1) }
        #expect(even.abortReason == nil)
    }
}
