import Foundation
import LabelForgeCache
import LabelForgeCore

/// Everything a run needs before its first row, whichever way it started (`RunStart`): the plan,
/// the run directory, what an earlier run recorded, the engines, and where it stops.
struct RunSetup {
    /// Where the run's engines come from.
    enum Engines {
        /// Started for this run (and stopped after it).
        case live
        /// None: every answer comes from the cache, and the run records what these engines reported
        /// when the answers were made (an offline replay, a merge that stops at the first barrier).
        case recorded([RunRecord.EnginePin])
        /// Already started for several runs (an ablation's variants).
        case shared(EngineSet)
    }

    /// Answers the run needs from the cache: the keys the cache lacks, and the error that names them
    /// (given the missing count and a sample of keys).
    struct RequiredAnswers {
        var sample: Int
        var missing: (any CacheStore) async throws -> [String]
        var message: (_ count: Int, _ sample: String) -> String
    }

    var plan: RunPlan
    var directory: RunDirectory
    /// Whether this run created `directory`: a run that fails before it starts removes it.
    var createdDirectory: Bool
    /// The (row, stage) results and barriers an earlier run recorded here or in the shards merged.
    var previous: ManifestRecovery.State? = nil
    /// What the manifest's first line records besides the plan; `nil` when a resumed run's manifest
    /// has its line already. The line itself is made when the run starts (`RunSession`), after the
    /// cache checks, so its `created_at` is when the run began.
    var runLine: RunLine?
    var engines: Engines = .live
    /// Whether cached answers are not read (`--no-cache`, `replay --recompute`).
    var noCache = false
    /// Whether the run stops before its first dataset-wide stage (a merge without `--continue`; a
    /// shard stops there on its own).
    var stopsAtFirstBarrier = false
    /// Whether the previous results are written to this manifest as they were recorded (a merge).
    var writesPrevious = false
    /// The shard this run labels; `nil` for all rows.
    var shard: ShardSpec? = nil
    var required: RequiredAnswers? = nil

    /// The run line's fields that depend on how the run started.
    struct RunLine {
        var noCache = false
        var shard: ShardSpec? = nil
        var replayOf: String? = nil
        var mergedFrom: [String]? = nil
    }

    /// The manifest's run line, made now; `nil` when the manifest has one.
    func runRecord() -> RunRecord? {
        runLine.map { line in
            var record = plan.runRecord(directory: directory, noCache: line.noCache)
            record.shard = line.shard
            record.replayOf = line.replayOf
            record.mergedFrom = line.mergedFrom
            return record
        }
    }
}
