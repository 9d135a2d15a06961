import LabelForgeTesting
import Testing

/// Runs a suite or test while no other heavy test runs (`HeavyGate`).
struct ExclusiveCPU: SuiteTrait, TestTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await HeavyGate.shared.exclusively(function)
    }
}

extension Trait where Self == ExclusiveCPU {
    /// While no other heavy test runs: the real engines' suite, 10,000-row runs.
    static var exclusiveCPU: Self { Self() }
}
