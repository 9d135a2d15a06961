import Foundation
import LabelForgeCore

/// One part of a dataset partitioned by row-ID hash: `labelforge run --shard i/N` runs the rows
/// whose ID hashes to `i` modulo `N`. A row's shard depends on its ID alone, so it does not change
/// when the input is reordered, nor with the machine that runs it.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    /// From 0 to `count - 1`, like a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`.
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else {
            throw LabelForgeError(.invalidConfig, "A shard count must be at least 1, not \(count).")
        }
        guard (0..<count).contains(index) else {
            throw LabelForgeError(
                .invalidConfig,
                "Shard \(index)/\(count) does not exist: shard indices run from 0 to \(count - 1) (0-based, like "
                    + "JOB_COMPLETION_INDEX).")
        }
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }

    /// Parses `i/N`, or `auto`: the shard the scheduler gave this process (`fromEnvironment`).
    public static func parse(_ text: String, environment: [String: String]) throws -> ShardSpec {
        if text == "auto" {
            guard let shard = try fromEnvironment(environment) else {
                throw LabelForgeError(
                    .invalidConfig,
                    "--shard auto found no shard in the environment: it reads JOB_COMPLETION_INDEX with "
                        + "JOB_COMPLETIONS (a Kubernetes Indexed Job; set JOB_COMPLETIONS to the Job's completions) "
                        + "or SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (a Slurm array). Give --shard i/N "
                        + "instead.")
            }
            return shard
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw LabelForgeError(
                .invalidConfig,
                "--shard '\(text)' is not i/N (e.g. 0/4 for the first of four shards) or auto.")
        }
        return try ShardSpec(index: index, count: count)
    }

    /// The shard a Kubernetes Indexed Job or a Slurm array gives this process, or nil when the
    /// environment names none.
    ///
    /// Kubernetes sets `JOB_COMPLETION_INDEX` (0-based) but not the count: the Job's spec sets
    /// `JOB_COMPLETIONS` to its `completions`. Slurm sets `SLURM_ARRAY_TASK_ID`,
    /// `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_MIN` (an array may start at 1).
    public static func fromEnvironment(_ environment: [String: String]) throws -> ShardSpec? {
        func number(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw LabelForgeError(.invalidConfig, "\(name)='\(text)' is not a whole number.")
            }
            return value
        }
        if let index = try number("JOB_COMPLETION_INDEX") {
            guard let count = try number("JOB_COMPLETIONS") else {
                throw LabelForgeError(
                    .invalidConfig,
                    "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: add it to the Job's container env "
                        + "with the Job's completions (see docs/scale-out.md).")
            }
            return try ShardSpec(index: index, count: count)
        }
        if let task = try number("SLURM_ARRAY_TASK_ID") {
            guard let count = try number("SLURM_ARRAY_TASK_COUNT") else {
                throw LabelForgeError(.invalidConfig, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not.")
            }
            let first = try number("SLURM_ARRAY_TASK_MIN") ?? 0
            return try ShardSpec(index: task - first, count: count)
        }
        return nil
    }

    /// The shard a row belongs to: the first 16 hex digits of SHA-256 of its ID, modulo `count`.
    public static func shard(ofRow rowID: String, count: Int) -> Int {
        let hex = ContentHash.hex(Data(rowID.utf8)).prefix(16)
        return Int(UInt64(hex, radix: 16)! % UInt64(count))
    }

    public func contains(rowID: String) -> Bool { Self.shard(ofRow: rowID, count: count) == index }

    package var json: JSONValue { ["index": .int(Int64(index)), "count": .int(Int64(count))] }
}
