/// One heavy test at a time in the test process: the real engines' suite (llama.cpp, a Ray head) and
/// tests that keep both cores busy for a while (10,000 rows through the CLI) take turns, so a
/// neighbour's load never starves a real engine's timing. Test targets wrap this in a trait
/// (`.exclusiveCPU`).
public actor HeavyGate {
    public static let shared = HeavyGate()

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Runs `body` once no other heavy test runs.
    public func exclusively(_ body: @Sendable () async throws -> Void) async throws {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        }
        busy = true
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        try await body()
    }
}
