import Foundation

/// Waiting on events instead of fixed sleeps: suites run in parallel on few cores, so a moment
/// chosen in milliseconds comes too early or too late under load, and an event does not.
public enum Waiting {
    /// Polls `condition` until it holds or `timeout` passes.
    /// - Returns: whether the condition held.
    @discardableResult
    public static func until(
        timeout: Duration = .seconds(120), every poll: Duration = .milliseconds(5), _ condition: () throws -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: poll)
        }
    }
}

/// A test step that could not go on, with what it found.
public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension RunFiles {
    /// The one run directory under `runs` (hidden staging directories aside).
    /// - Throws: `TestSetupError` naming `runs` when it holds none or several (a run killed before
    ///   its directory existed), instead of crashing the test runner.
    public static func onlyRun(in runs: String) throws -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).filter { !$0.hasPrefix(".") }
        guard names.count == 1 else {
            throw TestSetupError("expected one run directory in \(runs), found \(names.count): \(names.sorted())")
        }
        return runs + "/" + names[0]
    }

    /// `type: row` lines written so far to the manifest of the one run under `runs` (0 before it exists).
    public static func rowLines(in runs: String) -> Int {
        guard let dir = try? onlyRun(in: runs),
            let text = try? String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        else { return 0 }
        return text.components(separatedBy: #""type":"row""#).count - 1
    }
}
