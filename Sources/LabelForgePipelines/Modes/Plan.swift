import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import Logging

/// What a run would do, before it does it (`labelforge plan`): per stage, the rows and the
/// requests the cache already answers and those it would send, found by running the pipeline
/// against the cache alone — no engine is started and nothing is sent.
///
/// Exact for every stage whose inputs are known: a row's request keys are computed from the
/// rendered request, as the run computes them. A row whose upstream output is not cached yet
/// cannot be rendered, so it is counted as waiting (at least one new request each). The first
/// dataset-wide stage is planned over the rows before it (its embedding requests looked up in the
/// cache; a reranker's, which depend on vectors, only where the vectors are cached); planning stops
/// after it, since what follows depends on its answers.
public struct PlanReport: Sendable {
    public struct StageEstimate: Sendable {
        public var id: String
        public var type: String
        public var rows = 0
        /// Requests the cache answers.
        public var cached = 0
        /// Requests that would be sent (first attempts; validation retries may add some).
        public var new = 0
        /// Rows that wait on an upstream output not in the cache yet: at least one request each.
        public var waiting = 0
        /// Rows dropped by a filter.
        public var dropped = 0
        /// Prompt tokens of the cached requests, as the engine counted them.
        public var cachedPromptTokens = 0
        /// Prompt tokens of the new requests: counted by the engine's `/tokenize` when `plan` reached
        /// a vLLM or llama.cpp server (`tokenizedBy`), else estimated (characters / 4).
        public var newPromptTokens = 0
        /// Completion tokens of the cached answers, as the engine counted them.
        public var cachedCompletionTokens = 0
        /// Whether the stage was planned (false after the first dataset-wide stage).
        public var planned = true
        /// What the requests cost, where the stage's engine has `pricing`.
        public var cost: Cost? = nil
    }

    /// A stage's requests priced with its engine's `pricing` (US dollars).
    public struct Cost: Sendable {
        /// What the cached requests cost when they were made: exact, from the usage the engine
        /// reported.
        public var cached: Double
        /// What the new requests would cost: their prompt tokens (counted or estimated, as for the
        /// stage) and `newOutputTokens`.
        public var new: Double
        /// The new requests' output tokens, estimated as `outputMethod` says.
        public var newOutputTokens: Int
        public var outputMethod: String
    }

    /// How long the new requests would take at the throughput an earlier run of the same model
    /// measured (its engine requests over its wall time).
    public struct TimeEstimate: Sendable {
        public var seconds: Double
        public var requestsPerSecond: Double
        /// The run the throughput comes from.
        public var basedOn: String
    }

    public var planHash: String
    public var rows: Int
    public var stages: [StageEstimate]
    public var time: TimeEstimate? = nil

    /// Keys of the new requests (the first request each row would send), to count distinct
    /// requests across plans (an ablation's variants share many).
    public var newKeys: Set<String> = []
    /// Engines whose `/tokenize` counted the new requests' prompt tokens; the others' are estimated.
    public var tokenizedBy: [String] = []
    public var newRequests: Int { stages.reduce(0) { $0 + $1.new } }
    public var cachedRequests: Int { stages.reduce(0) { $0 + $1.cached } }
    /// The priced stages' costs together; `nil` when no stage's engine has `pricing`.
    public var cost: (cached: Double, new: Double)? {
        let priced = stages.compactMap(\.cost)
        guard !priced.isEmpty else { return nil }
        return (priced.reduce(0) { $0 + $1.cached }, priced.reduce(0) { $0 + $1.new })
    }

    /// Dollars as the plan shows them, to a hundredth of a cent.
    static func dollars(_ value: Double) -> String { String(format: "$%.4f", value) }

    public var json: JSONValue {
        [
            "plan_hash": .string(planHash), "rows": .int(Int64(rows)), "new_requests": .int(Int64(newRequests)),
            "tokens_counted_by": .array(tokenizedBy.map(JSONValue.string)),
            "cached_requests": .int(Int64(cachedRequests)),
            "cost_usd": cost.map { ["cached": .double($0.cached), "new_estimated": .double($0.new)] } ?? .null,
            "time_estimate": time.map {
                [
                    "seconds": .double(($0.seconds * 10).rounded() / 10),
                    "requests_per_second": .double(($0.requestsPerSecond * 100).rounded() / 100),
                    "based_on": .string($0.basedOn),
                ]
            } ?? .null,
            "stages": .array(
                stages.map {
                    [
                        "id": .string($0.id), "type": .string($0.type), "rows": .int(Int64($0.rows)),
                        "cached": .int(Int64($0.cached)), "new": .int(Int64($0.new)),
                        "waiting": .int(Int64($0.waiting)), "dropped": .int(Int64($0.dropped)),
                        "planned": .bool($0.planned), "cached_prompt_tokens": .int(Int64($0.cachedPromptTokens)),
                        "new_prompt_tokens_estimated": .int(Int64($0.newPromptTokens)),
                        "cached_completion_tokens": .int(Int64($0.cachedCompletionTokens)),
                        "cost_usd": $0.cost.map {
                            [
                                "cached": .double($0.cached), "new_estimated": .double($0.new),
                                "new_output_tokens_estimated": .int(Int64($0.newOutputTokens)),
                                "output_tokens_method": .string($0.outputMethod),
                            ]
                        } ?? .null,
                    ]
                }),
        ]
    }

    public var rendered: String {
        var lines = [
            "plan \(ContentHash.unprefixed(planHash).prefix(12)): \(rows) rows, \(cachedRequests) requests cached, \(newRequests) new"
        ]
        if let time, newRequests > 0 {
            lines.append(
                String(
                    format: "  about %.0f s for the new requests, at %.2f requests/s (measured by run %@)",
                    time.seconds,
                    time.requestsPerSecond, time.basedOn))
        } else if newRequests > 0 {
            lines.append("  no time estimate: no finished run of these models under the runs directory")
        }
        if let cost {
            lines.append(
                "  cost: about \(Self.dollars(cost.new)) for the new requests (each stage says how it counted); the "
                    + "cached requests cost \(Self.dollars(cost.cached)) when they were made")
        }
        for stage in stages {
            guard stage.planned else {
                lines.append(
                    "  \(stage.id) (\(stage.type)): not planned (after a dataset-wide stage: its input is known only "
                        + "when the run gets there)")
                continue
            }
            var line = "  \(stage.id) (\(stage.type)): \(stage.rows) rows, \(stage.cached) cached, \(stage.new) new"
            if stage.waiting > 0 { line += ", \(stage.waiting) rows waiting on new upstream outputs" }
            if stage.dropped > 0 { line += ", \(stage.dropped) dropped" }
            if stage.new > 0 {
                line +=
                    tokenizedBy.isEmpty
                    ? "; ~\(stage.newPromptTokens) new prompt tokens (4 characters per token)"
                    : "; \(stage.newPromptTokens) new prompt tokens (counted by /tokenize where the engine answers)"
            }
            if let cost = stage.cost {
                line += "; \(Self.dollars(cost.new)) new (\(cost.outputMethod)), \(Self.dollars(cost.cached)) cached"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Runner {
    /// Plans `options.configPath` against the cache; starts no engine and sends nothing: the run goes
    /// through with `PlanEngines`, whose transports answer no request and say what each would cost.
    public func plan() async throws -> PlanReport {
        let setup = try RunStart.plan(configPath: options.configPath).setup(options: options, logger: logger)
        // The scratch runs directory the plan's run wrote in.
        defer {
            try? FileManager.default.removeItem(atPath: (setup.directory.path as NSString).deletingLastPathComponent)
        }
        let engines = PlanEngines(logger: logger)
        _ = try await RunSession(cachePath: options.cachePath, logger: logger, engines: engines).run(setup)
        let plan = setup.plan
        let (estimates, newKeys) = try Self.estimates(plan: plan, manifest: setup.directory.manifestPath)
        var report = PlanReport(
            planHash: plan.planHash, rows: plan.dataset.rows, stages: Self.priced(estimates, plan: plan))
        report.newKeys = newKeys
        report.tokenizedBy = engines.tokenizedBy
        report.time = Self.throughput(runsDir: options.runsDir, models: plan.models.map(\.recordedPin)).map {
            PlanReport.TimeEstimate(
                seconds: Double(report.newRequests) / $0.rate, requestsPerSecond: $0.rate, basedOn: $0.run)
        }
        return report
    }

    /// The most recent finished run under `runsDir` whose models are `models` (same ids and
    /// revisions): its engine requests per second of wall time.
    static func throughput(runsDir: String, models: [RunRecord.ModelPin]) -> (rate: Double, run: String)? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []).sorted().reversed()
        let wanted = Set(models.map { "\($0.id)@\($0.revision)" })
        for name in names where !name.hasPrefix(".") {
            guard let (first, last) = ManifestReader.ends(of: runsDir + "/" + name + "/manifest.jsonl"),
                case .run(let run) = first, case .summary(let summary) = last, summary.isFinal,
                Set(run.models.map { "\($0.id)@\($0.revision)" }) == wanted,
                let requests = summary.engineRequests, requests > 0,
                let start = formatter.date(from: run.createdAt), let end = formatter.date(from: summary.finishedAt),
                end > start
            else { continue }
            return (Double(requests) / end.timeIntervalSince(start), run.runID)
        }
        return nil
    }

    /// Each stage's rows, cached and new requests and prompt tokens, from the manifest of a plan's
    /// dry run; and the keys of the new requests.
    static func estimates(plan: RunPlan, manifest path: String) throws -> ([PlanReport.StageEstimate], Set<String>) {
        var estimates = plan.graph.order.map { PlanReport.StageEstimate(id: $0.config.id, type: $0.config.type) }
        let index = Dictionary(uniqueKeysWithValues: estimates.enumerated().map { ($1.id, $0) })
        var seen: Set<String> = []
        var newKeys: Set<String> = []
        // A dataset-wide stage's requests are counted once each, from its barrier line: its rows
        // share them (a query's vector serves every row of that query).
        let barriers = Set(plan.graph.order.filter { $0.rowSet == .barrier }.map(\.config.id))
        let reader = try ManifestReader(path: path)
        while let record = try reader.read() {
            if case .barrier(let barrier) = record, let i = index[barrier.stage], let requests = barrier.requests {
                estimates[i].cached += requests.cacheHits
                estimates[i].new += requests.lookups - requests.cacheHits
                estimates[i].cachedPromptTokens += requests.tokensIn
                estimates[i].newPromptTokens += requests.estimatedTokensIn
                continue
            }
            guard case .row(let row) = record, let i = index[row.stage] else { continue }
            seen.insert(row.stage)
            estimates[i].rows += 1
            if row.dropped && row.error == nil { estimates[i].dropped += 1 }
            if barriers.contains(row.stage) {
                if row.error?.errorClass == "upstream_failed" { estimates[i].waiting += 1 }
                continue
            }
            estimates[i].cached += row.cacheHits
            switch row.error?.errorClass {
            case LabelForgeError.Code.cacheMiss.rawValue:
                estimates[i].new += max(1, row.requestKeys.count - row.cacheHits)
                if let key = row.requestKeys.last { newKeys.insert(key) }
                estimates[i].newPromptTokens += row.tokensIn
            case "upstream_failed": estimates[i].waiting += 1
            case nil:
                estimates[i].cachedPromptTokens += row.tokensIn
                estimates[i].cachedCompletionTokens += row.tokensOut
            default: break
            }
        }
        // Stages after the first dataset-wide one were not reached.
        if let barrier = plan.graph.order.firstIndex(where: { $0.rowSet == .barrier }) {
            for i in barrier..<estimates.count where !seen.contains(estimates[i].id) { estimates[i].planned = false }
        }
        return (estimates, newKeys)
    }

    /// The estimates with each stage's requests priced by its engine's `pricing` (the chat engine's
    /// where a stage has several). New requests' output tokens: the mean of the stage's cached
    /// answers where it has some, else `max_tokens` each, the most they could be; embeddings and
    /// reranks have none.
    static func priced(_ estimates: [PlanReport.StageEstimate], plan: RunPlan) -> [PlanReport.StageEstimate] {
        zip(estimates, plan.graph.order).map { estimate, stage in
            guard estimate.planned,
                let use = stage.engineUses.first(where: { $0.task == .chat }) ?? stage.engineUses.first,
                let engine = plan.config.engines.first(where: { $0.name == use.engine }),
                let pricing = engine.tokenPrices
            else { return estimate }
            var priced = estimate
            let maxTokens = stage.config.sampling.maxTokens
            let (tokens, method): (Int, String) =
                if use.task != .chat {
                    (0, "no output tokens")
                } else if estimate.cached > 0, estimate.cachedCompletionTokens > 0 {
                    (
                        Int(
                            (Double(estimate.cachedCompletionTokens) / Double(estimate.cached) * Double(estimate.new))
                                .rounded()),
                        "output tokens: the mean of its \(estimate.cached) cached answers"
                    )
                } else {
                    (estimate.new * maxTokens, "output tokens: max_tokens (\(maxTokens)) each, the most they could be")
                }
            priced.cost = PlanReport.Cost(
                cached: pricing.cost(input: estimate.cachedPromptTokens, output: estimate.cachedCompletionTokens),
                new: pricing.cost(input: estimate.newPromptTokens, output: tokens), newOutputTokens: tokens,
                outputMethod: engine.batch == nil
                    ? method : method + "; batch prices (\(Int((pricing.batchDiscount * 100).rounded()))% off)")
            return priced
        }
    }
}
