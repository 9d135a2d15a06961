import Foundation
import LabelForgeCache
import LabelForgeCore

/// Everything a run needs before its first row, whichever way it started (`RunStart`): the plan,
/// the run directory, what an earlier run recorded, the engines, and where it stops.
package struct RunSetup {
    /// Where the run's engines come from.
    package enum Engines {
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
    package struct RequiredAnswers {
        package var sample: Int
        package var missing: (any CacheStore) async throws -> [String]
        package var message: (_ count: Int, _ sample: String) -> String

        package init(
            sample: Int, missing: @escaping (any CacheStore) async throws -> [String],
            message: @escaping (_ count: Int, _ sample: String) -> String
        ) {
            self.sample = sample
            self.missing = missing
            self.message = message
        }
    }

    package var plan: RunPlan
    package var directory: RunDirectory
    /// Whether this run created `directory`: a run that fails before it starts removes it.
    package var createdDirectory: Bool
    /// The (row, stage) results and barriers an earlier run recorded here or in the shards merged.
    package var previous: ManifestRecovery.State? = nil
    /// What the manifest's first line records besides the plan; `nil` when a resumed run's manifest
    /// has its line already. The line itself is made when the run starts (`RunSession`), after the
    /// cache checks, so its `created_at` is when the run began.
    package var runLine: RunLine?
    package var engines: Engines = .live
    /// Whether cached answers are not read (`--no-cache`, `replay --recompute`).
    package var noCache = false
    /// Where the run stops: at the end, or at its first dataset-wide stage (a merge without
    /// `--continue`; a shard stops there on its own; `labelforge plan`).
    package var stop = StopPoint.end
    /// The failure ratio that aborts the run, instead of the config's `max_failure_ratio`; `1`
    /// never aborts (`labelforge plan`, where every new request is a failure).
    package var maxFailureRatio: Double? = nil
    /// Whether the previous results are written to this manifest as they were recorded (a merge).
    package var writesPrevious = false
    /// The shard this run labels; `nil` for all rows.
    package var shard: ShardSpec? = nil
    package var required: RequiredAnswers? = nil

    package init(
        plan: RunPlan, directory: RunDirectory, createdDirectory: Bool, previous: ManifestRecovery.State? = nil,
        runLine: RunLine? = nil, engines: Engines = .live, noCache: Bool = false, stop: StopPoint = .end,
        maxFailureRatio: Double? = nil, writesPrevious: Bool = false, shard: ShardSpec? = nil,
        required: RequiredAnswers? = nil
    ) {
        self.plan = plan
        self.directory = directory
        self.createdDirectory = createdDirectory
        self.previous = previous
        self.runLine = runLine
        self.engines = engines
        self.noCache = noCache
        self.stop = stop
        self.maxFailureRatio = maxFailureRatio
        self.writesPrevious = writesPrevious
        self.shard = shard
        self.required = required
    }

    /// Where a run stops.
    package enum StopPoint: Sendable, Equatable {
        /// After every stage.
        case end
        /// Before its first dataset-wide stage: the summary names that stage (`stopped_before`).
        case beforeFirstBarrier
        /// After its first dataset-wide stage has looked its requests up (a stage that sends none is
        /// not run): what follows depends on answers the run does not have (`labelforge plan`).
        case afterFirstBarrierRequests
    }

    /// The run line's fields that depend on how the run started.
    package struct RunLine {
        package var noCache = false
        package var shard: ShardSpec? = nil
        package var replayOf: String? = nil
        package var mergedFrom: [String]? = nil

        package init(
            noCache: Bool = false, shard: ShardSpec? = nil, replayOf: String? = nil, mergedFrom: [String]? = nil
        ) {
            self.noCache = noCache
            self.shard = shard
            self.replayOf = replayOf
            self.mergedFrom = mergedFrom
        }
    }

    /// The manifest's run line, made now; `nil` when the manifest has one.
    package func runRecord(createdAt: String) -> RunRecord? {
        runLine.map { line in
            var record = plan.runRecord(directory: directory, noCache: line.noCache, createdAt: createdAt)
            record.shard = line.shard
            record.replayOf = line.replayOf
            record.mergedFrom = line.mergedFrom
            return record
        }
    }
}
