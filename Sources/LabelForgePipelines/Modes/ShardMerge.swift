import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel

/// What `labelforge merge` was asked to merge.
public struct MergeOptions: Sendable {
    /// The run directories of the shards (`labelforge run --shard i/N`), in any order.
    public var shardDirectories: [String]
    /// Also run the stages the shards stopped before (the first dataset-wide stage and after).
    public var continueRun: Bool

    public init(shardDirectories: [String], continueRun: Bool) {
        self.shardDirectories = shardDirectories
        self.continueRun = continueRun
    }
}

/// The shards of one plan, checked and read back for `labelforge merge`.
///
/// The merged run is the unsharded run's first stretch of row-wise stages, streamed again in input
/// order with every answer from the cache the shards shared, and each (row, stage) recorded as its
/// shard recorded it: the outputs are byte-identical to an unsharded run's by construction.
struct ShardMerge {
    var plan: RunPlan
    /// The shards' row records, by `ManifestRecovery.key`.
    var rows: [String: RowRecord]
    /// The shards' run records, by shard index.
    var runs: [RunRecord]
    var directories: [String]

    /// Reads and checks the shards: same plan and shard count, every index once, each finished,
    /// each row in its own shard and recorded once, together every row of the dataset.
    static func load(_ paths: [String]) throws -> ShardMerge {
        guard !paths.isEmpty else {
            throw LabelForgeError(.invalidConfig, "Give the run directories of the shards to merge.")
        }
        var shards: [(dir: String, run: RunRecord, spec: ShardSpec, summary: SummaryRecord)] = []
        var rows: [String: RowRecord] = [:]
        var owner: [String: String] = [:]
        for path in paths {
            let dir = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
            let artifacts = try RunArtifacts.load(dir)
            guard let shard = artifacts.run.shard else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(dir) is not a shard run (its manifest records no shard): merge takes the run directories of "
                        + "`labelforge run --shard i/N`.")
            }
            guard let summary = artifacts.summary, summary.status == "completed" else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(dir) (shard \(shard)) has not completed"
                        + (artifacts.summary.map { " (status \($0.status))" } ?? "")
                        + ": finish it with `labelforge run --resume \(dir)`, then merge.")
            }
            let reader = try artifacts.manifest()
            while let record = try reader.read() {
                guard case .row(let row) = record else { continue }
                if row.parentRowID == nil, !shard.contains(rowID: row.rowID) {
                    throw LabelForgeError(
                        .invalidConfig,
                        "\(dir) (shard \(shard)) recorded row \(row.rowID), which belongs to shard "
                            + "\(ShardSpec.shard(ofRow: row.rowID, count: shard.count))/\(shard.count).")
                }
                let key = ManifestRecovery.key(row: row.rowID, stage: row.stage)
                if let other = owner[key], other != dir {
                    throw LabelForgeError(
                        .invalidConfig,
                        "Row \(row.rowID), stage '\(row.stage)' is recorded by both \(other) and \(dir).")
                }
                owner[key] = dir
                rows[key] = row
            }
            shards.append((dir, artifacts.run, shard, summary))
        }
        try checkComplete(shards.map { ($0.dir, $0.run, $0.spec) })
        let first = shards[0]
        let plan = try RunPlan.reload(
            runDirectory: first.dir, recorded: first.run, refusal: "Cannot merge",
            advice: " Merge where the shards' dataset, prompts and models are as they ran.")
        let covered = shards.reduce(0) { $0 + ($1.summary.counts?.rows ?? 0) }
        guard covered == plan.dataset.rows else {
            throw LabelForgeError(
                .invalidConfig,
                "The shards cover \(covered) rows but the dataset has \(plan.dataset.rows): each shard must run the "
                    + "whole dataset's config (the same --limit).")
        }
        let ordered = shards.sorted { $0.spec.index < $1.spec.index }
        return ShardMerge(plan: plan, rows: rows, runs: ordered.map(\.run), directories: ordered.map(\.dir))
    }

    /// Checks that the shards ran one plan with one shard count, each index once and none missing.
    private static func checkComplete(_ shards: [(dir: String, run: RunRecord, spec: ShardSpec)]) throws {
        let first = shards[0]
        let count = first.spec.count
        var byIndex: [Int: String] = [:]
        for shard in shards {
            guard shard.run.planHash == first.run.planHash else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(shard.dir) ran plan \(shard.run.planHash) but \(first.dir) ran \(first.run.planHash): shards "
                        + "must come from the same config, dataset, prompts and models.")
            }
            guard shard.spec.count == count else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(shard.dir) is shard \(shard.spec) but \(first.dir) is shard \(first.spec): the shards of one "
                        + "run share one count.")
            }
            if let other = byIndex[shard.spec.index] {
                throw LabelForgeError(.invalidConfig, "\(other) and \(shard.dir) are both shard \(shard.spec).")
            }
            byIndex[shard.spec.index] = shard.dir
        }
        let missing = (0..<count).filter { byIndex[$0] == nil }
        guard missing.isEmpty else {
            throw LabelForgeError(
                .invalidConfig,
                "Shard" + (missing.count > 1 ? "s " : " ") + missing.map { "\($0)/\(count)" }.joined(separator: ", ")
                    + " missing: give the run directories of all \(count) shards.")
        }
    }

    /// Request keys the shards answered that `cache` does not hold (a failed row's keys have no
    /// answer to hold), sorted.
    func missingAnswers(in cache: any CacheStore) async throws -> [String] {
        var scan = MissingKeys(cache: cache)
        for row in rows.values where row.error == nil { try await scan.add(row.requestKeys) }
        return try await scan.finish().sorted()
    }

    var state: ManifestRecovery.State { ManifestRecovery.State(run: nil, rows: rows, completed: false) }
}
