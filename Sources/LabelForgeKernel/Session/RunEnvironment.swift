import Foundation

/// What a run reads from the world outside its config and data: the wall time (manifest timestamps,
/// run IDs), a monotonic clock (latencies, throughput) and the environment variables (API keys,
/// cache credentials). `live` reads the process's; kernel tests fix them, so that two runs write
/// the same manifest bytes.
public struct RunEnvironment: Sendable {
    /// The wall time now.
    public var now: @Sendable () -> Date
    /// The monotonic clock now.
    public var clock: @Sendable () -> ContinuousClock.Instant
    public var variables: [String: String]

    public init(
        now: @escaping @Sendable () -> Date, clock: @escaping @Sendable () -> ContinuousClock.Instant,
        variables: [String: String]
    ) {
        self.now = now
        self.clock = clock
        self.variables = variables
    }

    /// The process's clocks and environment.
    public static var live: RunEnvironment {
        RunEnvironment(now: { Date() }, clock: { ContinuousClock.now }, variables: ProcessInfo.processInfo.environment)
    }

    /// A world where time stands still at `date` (every latency is 0) and only `variables` are set.
    public static func fixed(at date: Date, variables: [String: String] = [:]) -> RunEnvironment {
        let instant = ContinuousClock.now
        return RunEnvironment(now: { date }, clock: { instant }, variables: variables)
    }

    /// The wall time now as manifests record it (ISO 8601, UTC, with milliseconds).
    public func timestamp() -> String { Timestamp.string(from: now()) }

    /// Milliseconds since `start` on the monotonic clock.
    package func milliseconds(since start: ContinuousClock.Instant) -> Int { Int((clock() - start) / .milliseconds(1)) }

    /// Seconds since `start` on the monotonic clock.
    package func seconds(since start: ContinuousClock.Instant) -> Double {
        Double((clock() - start) / .milliseconds(1)) / 1000
    }
}
