import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeKernel
import LabelForgeLLM
import Logging

/// What `labelforge run` was asked to do beyond the config.
public struct RunOptions: Sendable {
    public var configPath: String
    public var runsDir: String
    /// Process only the first N rows (overrides `run.limit`).
    public var limit: Int?
    /// Skip cache reads (responses are still written).
    public var noCache: Bool
    /// Overrides the config's and the environment's cache location.
    public var cachePath: String?
    /// Continue the interrupted run in this directory instead of starting a new one.
    public var resume: String?
    /// With `resume`: also run again the rows that failed (the run may have completed).
    public var retryFailed: Bool
    /// Re-execute a past run from its manifest instead of a config.
    public var replay: ReplayOptions?
    /// Run only this shard's rows, and stop before the first dataset-wide stage.
    public var shard: ShardSpec?
    /// Merge shard runs instead of running a config (`labelforge merge`).
    public var merge: MergeOptions?
    /// Replace the config's `budget.usd` and `budget.tokens` (`--budget-usd`, `--budget-tokens`).
    public var budgetUSD: Double? = nil
    public var budgetTokens: Int? = nil

    public init(
        configPath: String, runsDir: String = "runs", limit: Int? = nil, noCache: Bool = false,
        cachePath: String? = nil,
        resume: String? = nil, retryFailed: Bool = false, replay: ReplayOptions? = nil, shard: ShardSpec? = nil,
        merge: MergeOptions? = nil
    ) {
        self.shard = shard
        self.merge = merge
        self.retryFailed = retryFailed
        self.configPath = configPath
        self.runsDir = runsDir
        self.limit = limit
        self.noCache = noCache
        self.cachePath = cachePath
        self.resume = resume
        self.replay = replay
    }
}

/// How `labelforge replay` re-executes a run.
public struct ReplayOptions: Sendable {
    /// The run directory to replay (holding manifest.jsonl and config.resolved.yaml).
    public var runDirectory: String
    /// Ignore cached responses and call the engine again with the same seeds.
    public var recompute: Bool
    /// Call the engine for requests the cache lacks (otherwise replay uses the cache only).
    public var allowEngine: Bool

    public init(runDirectory: String, recompute: Bool = false, allowEngine: Bool = false) {
        self.runDirectory = runDirectory
        self.recompute = recompute
        self.allowEngine = allowEngine
    }

    /// Whether no engine is started: every response must come from the cache.
    var offline: Bool { !recompute && !allowEngine }
}
