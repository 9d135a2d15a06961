import LabelForgeCore
import LabelForgeEval
import LabelForgeLLM

/// Agreement of one output field with a gold field.
public struct GoldScore: Sendable {
    public var stage: String
    public var field: String
    public var goldField: String
    public var agreement: Agreement
    /// Seeded bootstrap 95% intervals of accuracy, macro-F1 and kappa (`Bootstrap()`).
    public var intervals: ScoreIntervals?
}

/// What a finished (or aborted) run did.
public struct RunReport: Sendable {
    /// `completed` or `aborted`.
    public var status: String
    public var runDirectory: RunDirectory
    public var rows: Int
    public var rowsFailed: Int
    public var stages: [(id: String, stats: StageStats)]
    public var engineRequests: Int
    public var scores: [GoldScore]
    public var elapsedSeconds: Double
    public var abortReason: String?
    /// Sections stages add to the report (e.g. mining statistics), as Markdown lines.
    public var sections: [String] = []
    /// Cache entries that failed their integrity check: each was a miss, asked of the engine again
    /// and stored anew.
    public var cacheFailedVerification = 0
    /// The dataset-wide stage a shard run (or a merge without `--continue`) stopped before.
    public var stoppedBefore: String? = nil
    /// What this invocation's requests cost, per engine with `pricing` that was sent any (from the
    /// usage the engines reported; cached answers cost nothing).
    public var cost: [EngineCost] = []
    /// Batch engines' batches and items by state (engine name, counts), in the config's order.
    public var batches: [(engine: String, counts: BatchCounts)] = []
    /// The Parquet views written (`outputs: {format: parquet}`): their rows, all files together,
    /// and the seconds it took.
    public var parquetViews: (rows: Int, seconds: Double)? = nil

    /// What a run that stopped before a dataset-wide stage says about it.
    public var stopNote: String? {
        stoppedBefore.map {
            "stopped before the dataset-wide stage '\($0)': it needs every row, so it runs after "
                + "`labelforge merge <shard run dirs…> --continue`"
        }
    }

    public var cacheHits: Int { stages.reduce(0) { $0 + $1.stats.cacheHits } }
    public var cacheLookups: Int { stages.reduce(0) { $0 + $1.stats.cacheHits + $1.stats.cacheMisses } }
    public var cacheHitRate: Double { cacheLookups == 0 ? 0 : Double(cacheHits) / Double(cacheLookups) }

    /// The report as Markdown, written to `report.md`.
    public var markdown: String {
        var lines = [
            "# Run \(runDirectory.runID)", "",
            "- status: \(status)" + (abortReason.map { " (\($0))" } ?? "") + (stopNote.map { "; \($0)" } ?? ""),
            "- rows: \(rows) (\(rowsFailed) with a failed stage)",
            "- cache hit rate: \(Self.percent(cacheHitRate)) (\(cacheHits)/\(cacheLookups) requests)",
            "- engine requests sent: \(engineRequests)",
        ]
        if cacheFailedVerification > 0 {
            lines.append("- cache entries that failed verification (refetched): \(cacheFailedVerification)")
        }
        for (id, s) in stages where s.truncated > 0 {
            lines.append("- \(id): \(s.truncated) text(s) longer than the model's window, cut to it")
        }
        lines += [
            "- time: \(String(format: "%.1f", elapsedSeconds)) s", "",
            "| stage | ok | failed | cache hits | tokens in | tokens out |", "|---|---|---|---|---|---|",
        ]
        for (id, s) in stages {
            lines.append("| \(id) | \(s.ok) | \(s.failed) | \(s.cacheHits) | \(s.tokensIn) | \(s.tokensOut) |")
        }
        if !scores.isEmpty {
            lines += [
                "", "| stage.field | gold | n | accuracy [95% CI] | macro-F1 [95% CI] | kappa [95% CI] | chance |",
                "|---|---|---|---|---|---|---|",
            ]
            for score in scores {
                let a = score.agreement
                lines.append(
                    "| \(score.stage).\(score.field) | \(score.goldField) | \(a.count) | "
                        + "\(Self.percent(a.accuracy, score.intervals?.accuracy)) | "
                        + "\(Self.decimal(a.macroF1, score.intervals?.macroF1)) | "
                        + "\(a.kappa.map { Self.decimal($0, score.intervals?.kappa) } ?? "–") | "
                        + "\(Self.percent(a.majorityBaseline)) |")
            }
        }
        if !sections.isEmpty { lines += [""] + sections }
        return lines.joined(separator: "\n") + "\n"
    }

    package static func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }

    /// `x` as a percentage, with its interval after it where there is one: `50.2% [48.7, 51.8]`.
    package static func percent(_ x: Double, _ interval: Interval?) -> String {
        percent(x) + (interval.map { String(format: " [%.1f, %.1f]", $0.lower * 100, $0.upper * 100) } ?? "")
    }

    /// `x` to three decimals, with its interval after it where there is one.
    package static func decimal(_ x: Double, _ interval: Interval?) -> String {
        String(format: "%.3f", x) + (interval.map { String(format: " [%.3f, %.3f]", $0.lower, $0.upper) } ?? "")
    }
}
