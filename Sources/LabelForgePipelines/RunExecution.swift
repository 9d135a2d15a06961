import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeLLM
import Logging

/// The streaming part of a run: reads rows, keeps a bounded window of them in flight, and writes
/// manifest lines and outputs in input order as rows finish.
///
/// Memory holds at most the in-flight window plus rows that finished ahead of a slower one.
final class RunExecution {
    let config: RunConfig
    let processor: RowProcessor
    let engines: EngineSet
    let directory: RunDirectory
    let manifest: JSONLWriter
    let totalRows: Int
    let logger: Logger
    let progress: @Sendable (RunProgress) -> Void
    let stages: [any RowStage]

    private var stats: [String: StageStats] = [:]
    private var scores: [String: Agreement] = [:]
    private var done = 0
    private var failedRows = 0
    private var abortReason: String?
    private let started = ContinuousClock.now

    /// Row lines an interrupted run already recorded, by `ManifestRecovery.key`; those pairs are
    /// not recorded again, and keep their recorded cache status and errors.
    let previous: [String: JSONValue]

    init(
        plan: RunPlan, engines: EngineSet, engineInfos: [String: JSONValue], cache: any CacheStore, directory: RunDirectory,
        manifest: JSONLWriter, previous: [String: JSONValue], noCache: Bool, offline: Bool, logger: Logger,
        progress: @escaping @Sendable (RunProgress) -> Void
    ) {
        self.config = plan.config
        self.stages = plan.stages
        let executor = RequestExecutor(
            cache: cache, readCache: !noCache, offline: offline, matchEngineVersion: plan.config.matchEngineVersion,
            logger: logger)
        self.processor = RowProcessor(
            config: plan.config, pack: plan.pack, stages: plan.stages,
            endpoints: engines.endpoints(infos: engineInfos), executor: executor, logger: logger)
        self.engines = engines
        self.directory = directory
        self.manifest = manifest
        self.totalRows = plan.dataset.rows
        self.previous = previous
        self.logger = logger
        self.progress = progress
    }

    func run() async throws -> RunReport {
        // Outputs are always written whole, in input order; a resumed run rewrites them.
        for path in stages.map({ directory.outputPath(stage: $0.config.id) }) + [directory.path + "/dataset.jsonl"] {
            try? FileManager.default.removeItem(atPath: path)
        }
        let outputs = try Dictionary(
            uniqueKeysWithValues: stages.map { ($0.config.id, try JSONLWriter(path: directory.outputPath(stage: $0.config.id))) })
        let joined = try JSONLWriter(path: directory.path + "/dataset.jsonl")
        let reader = try DatasetReader(path: config.dataset.path, format: config.dataset.format)
        var assigner = RowIDAssigner(idField: config.dataset.idField)
        let imageFields = config.dataset.images
        let window =
            config.determinism == "strict"
            ? 1 : max(1, Set(stages.map(\.config.engine)).reduce(0) { $0 + engines.handle($1).config.maxInFlight } * 2)
        var pending: [Int: RowResult] = [:]
        var nextToWrite = 0

        func write(_ result: RowResult) throws {
            var joinedOutputs: [String: JSONValue] = [:]
            var rowFailed = false
            for var outcome in result.outcomes {
                let recorded = previous[ManifestRecovery.key(row: result.rowID, stage: outcome.stageID)]
                if let recorded {
                    // Keep what the interrupted run recorded: its cache status, tokens and errors.
                    outcome.cacheHits =
                        recorded["cache_hits"]?.intValue ?? (recorded["cache"] == "hit" ? outcome.requestKeys.count : 0)
                    outcome.tokensIn = recorded["tokens_in"]?.intValue ?? outcome.tokensIn
                    outcome.tokensOut = recorded["tokens_out"]?.intValue ?? outcome.tokensOut
                    if let error = recorded["error"] {
                        outcome.output = nil
                        outcome.failure = StageFailure(
                            errorClass: error["class"]?.stringValue ?? "unknown", message: error["message"]?.stringValue ?? "")
                    }
                }
                var record: [String: JSONValue] = ["row_id": .string(result.rowID)]
                var line: [String: JSONValue] = [
                    "type": "row", "row_id": .string(result.rowID), "stage": .string(outcome.stageID),
                    "request_keys": .array(outcome.requestKeys.map(JSONValue.string)),
                    "cache": .string(outcome.cacheStatus),
                    "attempts": .int(Int64(outcome.attempts)), "cache_hits": .int(Int64(outcome.cacheHits)),
                    "latency_ms": .int(Int64(outcome.latencyMs)), "tokens_in": .int(Int64(outcome.tokensIn)),
                    "tokens_out": .int(Int64(outcome.tokensOut)),
                ]
                var stat = stats[outcome.stageID, default: StageStats()]
                stat.cacheHits += outcome.cacheHits
                stat.cacheMisses += outcome.requestKeys.count - outcome.cacheHits
                stat.tokensIn += outcome.tokensIn
                stat.tokensOut += outcome.tokensOut
                if let output = outcome.output {
                    for (key, value) in output { record[key] = value }
                    stat.ok += 1
                    scoreGold(outcome.stageID, output: output, row: result.fields)
                } else {
                    let failure = outcome.failure ?? StageFailure(errorClass: "unknown", message: "no output")
                    record["error"] = ["class": .string(failure.errorClass), "message": .string(failure.message)]
                    line["error"] = record["error"]
                    stat.failed += 1
                    stat.errorsByClass[failure.errorClass, default: 0] += 1
                    rowFailed = true
                }
                line["output_hash"] = .string(ContentHash.prefixed(ContentHash.hex(.object(record))))
                stats[outcome.stageID] = stat
                if recorded == nil { try manifest.append(.object(line)) }
                try outputs[outcome.stageID]!.append(.object(record))
                record.removeValue(forKey: "row_id")
                joinedOutputs[outcome.stageID] = .object(record)
            }
            try joined.append(["row_id": .string(result.rowID), "input": .object(result.fields), "outputs": .object(joinedOutputs)])
            done += 1
            if rowFailed { failedRows += 1 }
            if done >= 10 && Double(failedRows) / Double(done) > config.maxFailureRatio && abortReason == nil {
                abortReason = "\(failedRows) of the first \(done) rows failed, above max_failure_ratio \(config.maxFailureRatio)"
            }
            reportProgress()
        }

        do {
            try await withThrowingTaskGroup(of: RowResult.self) { group in
                var inFlight = 0
                var read = 0
                func collect(_ result: RowResult) throws {
                    pending[result.index] = result
                    while let next = pending.removeValue(forKey: nextToWrite) {
                        try write(next)
                        nextToWrite += 1
                    }
                }
                while abortReason == nil, read < totalRows, let record = try reader.next() {
                    let loaded = imageFields.load(record)
                    let rowID = assigner.assign(loaded.identity(idField: config.dataset.idField))
                    let processor = self.processor
                    let index = read
                    group.addTask { try await processor.process(index: index, rowID: rowID, record: loaded) }
                    read += 1
                    inFlight += 1
                    // Wait while the window is full, and while finished rows queue up behind a slow
                    // one (they are written in input order), so memory stays bounded either way.
                    while inFlight >= window || pending.count >= window * 4, let result = try await group.next() {
                        inFlight -= 1
                        try collect(result)
                    }
                }
                if abortReason != nil {
                    // Rows still in flight are abandoned; the manifest records only finished ones.
                    group.cancelAll()
                    while let _ = try? await group.next() {}
                    return
                }
                while let result = try await group.next() {
                    try collect(result)
                }
            }
        } catch {
            try? manifest.append([
                "type": "summary", "status": "interrupted", "counts": countsJSON(), "finished_at": .string(Timestamp.now()),
            ])
            try? manifest.sync()
            if Task.isCancelled { throw CancellationError() }
            throw error
        }

        for writer in outputs.values { try writer.sync() }
        try joined.sync()
        let report = makeReport()
        var digests: [String: JSONValue] = [:]
        for stage in stages {
            let path = directory.outputPath(stage: stage.config.id)
            digests[stage.config.id] = .string(ContentHash.prefixed(try ContentHash.hexOfFile(atPath: path)))
        }
        var summary: [String: JSONValue] = [
            "type": "summary", "status": .string(report.status), "counts": countsJSON(),
            "output_digests": .object(digests), "engine_requests": .int(Int64(report.engineRequests)),
            "finished_at": .string(Timestamp.now()),
            "gold": .array(
                report.scores.map {
                    [
                        "stage": .string($0.stage), "field": .string($0.field), "gold_field": .string($0.goldField),
                        "n": .int(Int64($0.agreement.count)), "accuracy": .double($0.agreement.accuracy),
                        "macro_f1": .double($0.agreement.macroF1),
                    ]
                }),
        ]
        if let abortReason { summary["abort_reason"] = .string(abortReason) }
        try manifest.append(.object(summary))
        try manifest.sync()
        try report.markdown.write(toFile: directory.reportPath, atomically: true, encoding: .utf8)
        return report
    }

    private func scoreGold(_ stageID: String, output: [String: JSONValue], row: [String: JSONValue]) {
        guard let stage = stages.first(where: { $0.config.id == stageID }) else { return }
        for (field, goldField) in stage.goldPairs {
            guard let gold = row[goldField], !gold.isNull, let predicted = output[field] else { continue }
            scores["\(stageID)\u{0}\(field)\u{0}\(goldField)", default: Agreement()].add(
                predicted: predicted.textForm.lowercased(), gold: gold.textForm.lowercased())
        }
    }

    private func countsJSON() -> JSONValue {
        [
            "rows": .int(Int64(done)), "rows_failed": .int(Int64(failedRows)),
            "stages": .object(stats.mapValues(\.json)),
        ]
    }

    private func reportProgress() {
        let hits = stats.values.reduce(0) { $0 + $1.cacheHits }
        let lookups = stats.values.reduce(0) { $0 + $1.cacheHits + $1.cacheMisses }
        progress(
            RunProgress(
                done: done, total: totalRows, failedRows: failedRows, cacheHits: hits, cacheLookups: lookups,
                elapsedSeconds: Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000))
    }

    private func makeReport() -> RunReport {
        let scoreList = scores.keys.sorted().map { key -> GoldScore in
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            return GoldScore(stage: parts[0], field: parts[1], goldField: parts[2], agreement: scores[key]!)
        }
        return RunReport(
            status: abortReason == nil ? "completed" : "aborted", runDirectory: directory, rows: done,
            rowsFailed: failedRows, stages: stages.map { ($0.config.id, stats[$0.config.id] ?? StageStats()) },
            engineRequests: engines.requestsSent, scores: scoreList,
            elapsedSeconds: Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000, abortReason: abortReason)
    }
}
