import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeLLM
import Logging
import Synchronization

/// The streaming part of a run: reads rows, keeps a bounded window of them in flight through each
/// stretch of row-wise stages, runs barriers between stretches, and writes manifest lines and
/// outputs in input order as rows finish.
///
/// Memory holds at most the in-flight window plus rows that finished ahead of a slower one; a
/// barrier's input and result live in hidden row files of the run directory.
package final class RunExecution {
    package let config: RunConfig
    package let graph: StageGraph
    package let processor: RowProcessor
    package let engines: EngineSet
    /// The run's cache store, for the count of entries that failed verification.
    package let store: any CacheStore
    /// The engines' request count when this run began: engines an ablation shares serve several runs.
    package let requestsBefore: Int
    package let directory: RunDirectory
    package let manifest: ManifestWriter
    /// The rows this run reads from the dataset (the plan's, after its limit).
    package let datasetRows: Int
    /// The rows this run labels: `datasetRows`, or the shard's part of them.
    package var totalRows: Int
    /// The rows of a `--shard i/N` run; nil for all.
    package let shard: ShardSpec?
    /// Where the run stops (`RunSetup.StopPoint`); a shard stops before its first dataset-wide
    /// stage, and the summary then names that stage.
    package let stop: RunSetup.StopPoint
    /// `labelforge merge`: the shards' records of each (row, stage) are written to this manifest
    /// as they recorded them (cache status, latency, replica), with the merged output's hash.
    package let writesPrevious: Bool
    private var stoppedBefore: String?
    /// Which row IDs may repeat (from the plan's first pass over the dataset).
    package let repeats: RowIDRepeats
    package let logger: Logger
    package let progress: @Sendable (RunProgress) -> Void

    private var stats: [String: StageStats] = [:]
    /// `outputs/<stage>.npy` of each `embed` stage.
    private var vectorFiles: [String: NpyWriter] = [:]
    private var scores: [String: Agreement] = [:]
    private var budget: FailureBudget
    /// Input rows (by index) with a failed stage anywhere in the pipeline, barriers and the stages
    /// after them included: the summary's `rows_failed`.
    private var failedSources: Set<Int> = []
    private var recordedBarriers: Set<String>
    private let started: ContinuousClock.Instant
    private let executor: RequestExecutor
    /// The clocks (`Timestamp`s, latencies) and environment variables the run reads.
    package let environment: RunEnvironment
    /// Renders `report.html` from the run directory once the summary is written; none when `nil`.
    package let htmlReport: (@Sendable (_ directory: String) throws -> String)?

    /// Row records an interrupted run already wrote, by `ManifestRecovery.key`; those pairs are
    /// not recorded again, and keep their recorded cache status and errors.
    package let previous: [String: RowRecord]

    package init(
        plan: RunPlan, engines: EngineSet, engineInfos: [String: JSONValue], cache: any CacheStore,
        directory: RunDirectory,
        manifest: ManifestWriter, previous: ManifestRecovery.State?, noCache: Bool, offline: Bool, logger: Logger,
        progress: @escaping @Sendable (RunProgress) -> Void, shard: ShardSpec? = nil,
        stop: RunSetup.StopPoint = .end, maxFailureRatio: Double? = nil, writesPrevious: Bool = false,
        environment: RunEnvironment = .live,
        htmlReport: (@Sendable (_ directory: String) throws -> String)? = nil
    ) {
        self.environment = environment
        self.htmlReport = htmlReport
        self.started = environment.clock()
        self.shard = shard
        self.stop = shard != nil && stop == .end ? .beforeFirstBarrier : stop
        self.writesPrevious = writesPrevious
        self.config = plan.config
        self.graph = plan.graph
        let executor = RequestExecutor(
            cache: CoalescingCache(cache), readCache: !noCache, offline: offline,
            matchEngineVersion: plan.config.matchEngineVersion,
            logger: logger,
            cap: plan.config.budget.map { budget in
                SpendingCap(
                    budget: budget,
                    prices: Dictionary(
                        plan.config.engines.compactMap { e in e.tokenPrices.map { (e.name, $0) } },
                        uniquingKeysWith: { first, _ in first }))
            })
        self.executor = executor
        self.previous = previous?.rows ?? [:]
        self.recordedBarriers = previous?.barriers ?? []
        let endpoints = engines.endpoints(infos: engineInfos)
        var services: [String: StageServices] = [:]
        for stage in plan.graph.order {
            var stageEndpoints: [EngineUse.Task: EngineEndpoint] = [:]
            var limits: [EngineUse.Task: Int] = [:]
            for use in stage.engineUses {
                guard var endpoint = endpoints[use.engine] else { continue }
                if let setting = stage.truncation, use.task != .chat {
                    limits[use.task] = Self.truncationLimit(
                        setting, stage: stage.config.id, endpoint: endpoint, logger: logger)
                }
                if let batchSize = use.batchSize {
                    let maxInFlight = plan.config.engines.first { $0.name == use.engine }?.maxInFlight ?? 1
                    endpoint.transport = RequestBatcher(
                        base: endpoint.transport, batchSize: batchSize, maxConcurrentBatches: maxInFlight)
                }
                stageEndpoints[use.task] = endpoint
            }
            services[stage.config.id] = StageServices(
                stageID: stage.config.id, runSeed: plan.config.seed, cachePrompt: plan.config.determinism != .strict,
                pack: plan.pack, executor: executor, endpoints: stageEndpoints, limits: limits, environment: environment
            )
        }
        let processor = RowProcessor(
            graph: plan.graph, services: services, previous: self.previous, environment: environment)
        self.processor = processor
        self.engines = engines
        self.store = cache
        self.requestsBefore = engines.requestsSent
        self.directory = directory
        self.manifest = manifest
        self.totalRows = plan.dataset.rows
        self.datasetRows = plan.dataset.rows
        self.repeats = plan.dataset.repeats
        self.budget = FailureBudget(maxRatio: maxFailureRatio ?? plan.config.maxFailureRatio)
        self.logger = logger
        self.progress = progress
    }

    /// The token limit a stage's requests to `endpoint` carry (`Truncation`), with a warning where
    /// the stage asked for truncation and it cannot happen.
    package static func truncationLimit(_ setting: Truncation, stage: String, endpoint: EngineEndpoint?, logger: Logger)
        -> Int?
    {
        guard let endpoint, setting != .off else { return nil }
        guard TruncatingTransport.truncates(endpoint.dialect) else {
            let message =
                "stage '\(stage)': engine '\(endpoint.name)' (dialect \(endpoint.dialect)) cannot cut texts to the "
                + "model's window; texts are sent whole (set truncate: false to silence this)"
            logger.warning("\(message)")
            return nil
        }
        let limit = setting.limit(model: endpoint.maxInputTokens)
        if limit == nil {
            let message =
                "stage '\(stage)': engine '\(endpoint.name)' reports no maximum input length; texts are sent whole. "
                + "Set truncate: <tokens> to cut them"
            logger.warning("\(message)")
        }
        return limit
    }

    private var stateDirectory: String { directory.path + "/.state" }

    private func rejectedPath(stage: String) -> String { directory.outputsPath + "/\(stage).rejected.jsonl" }

    private func vectorsPath(stage: String) -> String { directory.outputsPath + "/\(stage).npy" }

    /// The files a run writes as rows finish: each stage's outputs, the rejected lines of stages
    /// that drop rows, the vectors, and `dataset.jsonl`.
    private struct OutputFiles {
        package var outputs: [String: JSONLWriter] = [:]
        package var rejected: [String: JSONLWriter] = [:]
        package var joined: JSONLWriter
    }

    /// Streams the dataset through every segment and barrier, commits the summary and writes the
    /// reports.
    package func run() async throws -> RunReport {
        let files = try openOutputFiles()
        do {
            try await runSegments(files)
        } catch {
            let stop = Task.isCancelled ? nil : executor.budgetStop
            let cost = makeReport().cost
            var summary = SummaryRecord(
                status: stop == nil ? "interrupted" : "stopped", counts: counts, finishedAt: environment.timestamp())
            summary.abortReason = stop
            summary.cost = Self.costJSON(cost)
            try? manifest.append(.summary(summary))
            try? manifest.sync()
            if Task.isCancelled { throw CancellationError() }
            if let stop { throw budgetStopped(stop, cost: cost) }
            throw error
        }
        return try finish(files)
    }

    /// Removes what an earlier attempt wrote (outputs are always written whole, in input order; a
    /// resumed run rewrites them) and opens the run's output files.
    private func openOutputFiles() throws -> OutputFiles {
        let stages = graph.order
        let dropsRows = stages.filter(\.rowSet.drops).map(\.config.id)
        for path in stages.map({ directory.outputPath(stage: $0.config.id) }) + dropsRows.map(rejectedPath)
            + [directory.path + "/dataset.jsonl", stateDirectory]
        {
            try? FileManager.default.removeItem(atPath: path)
        }
        var files = OutputFiles(joined: try JSONLWriter(path: directory.path + "/dataset.jsonl"))
        for stage in stages where stage.rowSet != .barrier {
            files.outputs[stage.config.id] = try JSONLWriter(path: directory.outputPath(stage: stage.config.id))
        }
        for id in dropsRows where files.outputs[id] != nil {
            files.rejected[id] = try JSONLWriter(path: rejectedPath(stage: id))
        }
        for stage in stages where stage.writesVectors {
            vectorFiles[stage.config.id] = try NpyWriter(path: vectorsPath(stage: stage.config.id))
        }
        return files
    }

    /// The error a run stopped at its budget ends with: why, what it spent, how to go on.
    private func budgetStopped(_ reason: String, cost: [EngineCost]) -> LabelForgeError {
        let spent = cost.isEmpty ? "" : String(format: " This invocation spent $%.4f.", cost.reduce(0) { $0 + $1.usd })
        return LabelForgeError(
            .budgetReached,
            "Stopped before the budget could be crossed: \(reason).\(spent) The rows that finished are recorded "
                + "and every answer received is cached. Resume with a raised budget: labelforge run --resume "
                + "\(directory.path) --budget-usd <dollars> (or --budget-tokens <tokens>).")
    }

    /// Each segment's rows streamed through its stages into the barrier that ends it (or into
    /// `dataset.jsonl`), the barrier run, and its result the next segment's source.
    private func runSegments(_ files: OutputFiles) async throws {
        if shard != nil { totalRows = try shardRowCount() }
        var source = try datasetSource()
        for (index, segment) in graph.segments.enumerated() {
            let barrierInput = try segment.barrier.map { _ in
                try RowFileWriter(path: stateDirectory + "/segment-\(index).rows.jsonl")
            }
            try await stream(
                source, through: segment.stages, countingInputRows: index == 0, outputs: files.outputs,
                rejected: files.rejected
            ) { row in
                if let barrierInput { try barrierInput.append(row) } else { try self.writeFinal(row, to: files.joined) }
            }
            guard budget.abortReason == nil, let barrier = segment.barrier, let barrierInput else { return }
            if stop == .beforeFirstBarrier {
                stoppedBefore = barrier.config.id
                return
            }
            // `labelforge plan` runs a dataset-wide stage only to look its requests up.
            if stop == .afterFirstBarrierRequests && barrier.engineUses.isEmpty { return }
            try barrierInput.commit()
            CrashPoint.barrierInputCommitted.reach()
            let result = try await runBarrier(barrier, input: barrierInput.path)
            // What follows depends on answers the run does not have.
            if stop == .afterFirstBarrierRequests { return }
            let reader = try RowFileReader(path: result, images: config.dataset.images)
            source = { try reader.next() }
        }
    }

    /// Syncs the files, commits the summary (the run's commit point) and writes the reports.
    private func finish(_ files: OutputFiles) throws -> RunReport {
        for writer in files.outputs.values { try writer.sync() }
        for writer in files.rejected.values { try writer.sync() }
        for writer in vectorFiles.values { try writer.finish() }
        try files.joined.sync()
        if stoppedBefore != nil {
            // The stages from the first barrier on did not run: no empty files stand in for them.
            let notRun = graph.segments.dropFirst().flatMap(\.stages) + graph.segments.compactMap(\.barrier)
            for stage in notRun {
                for path in [directory.outputPath(stage: stage.config.id), rejectedPath(stage: stage.config.id)] {
                    try? FileManager.default.removeItem(atPath: path)
                }
            }
            try? FileManager.default.removeItem(atPath: directory.path + "/dataset.jsonl")
        }
        let views = writeParquetViews()
        var report = makeReport()
        report.parquetViews = views
        var summary = SummaryRecord(
            status: report.status, counts: counts, outputDigests: try outputDigests(),
            engineRequests: report.engineRequests, finishedAt: environment.timestamp(),
            gold: report.scores.map {
                SummaryRecord.Gold(
                    stage: $0.stage, field: $0.field, goldField: $0.goldField, n: $0.agreement.count,
                    accuracy: $0.agreement.accuracy, macroF1: $0.agreement.macroF1, kappa: $0.agreement.kappa,
                    majority: $0.agreement.majorityBaseline, intervals: $0.intervals)
            },
            abortReason: budget.abortReason)
        summary.stoppedBefore = stoppedBefore
        summary.cost = Self.costJSON(report.cost)
        // The summary is the commit point: everything else is done before it, so a run killed
        // after it leaves nothing behind (`--resume` then has nothing to do), and one killed before
        // it is resumed and redoes these steps.
        try? FileManager.default.removeItem(atPath: stateDirectory)
        CrashPoint.beforeSummary.reach()
        try report.markdown.write(toFile: directory.reportPath, atomically: true, encoding: .utf8)
        try manifest.append(.summary(summary))
        try manifest.sync()
        CrashPoint.afterSummary.reach()
        // After the commit point: the HTML report reads the summary; `labelforge report` rebuilds it.
        do {
            try htmlReport?(directory.path).write(toFile: directory.reportHTMLPath, atomically: true, encoding: .utf8)
        } catch {
            logger.warning("could not write \(directory.reportHTMLPath): \(error)")
        }
        return report
    }

    /// One Parquet view: its digest key (its path in the run directory: `outputs/<stage>.parquet`,
    /// `dataset.parquet`), its JSONL, the declared types of its lines, and an embed stage's vectors.
    private struct ParquetView {
        var key: String
        var jsonl: String
        var schema: ColumnType
        var vectors: [ParquetWriter.Vectors] = []
    }

    /// The Parquet views the run has under `outputs: {format: both}`: one per output file written.
    private var parquetViews: [ParquetView] {
        guard config.outputFormat != "jsonl" else { return [] }
        func view(_ jsonl: String, _ schema: ColumnType) -> ParquetView {
            let key = String(RunDirectory.parquetPath(of: jsonl).dropFirst(directory.path.count + 1))
            return ParquetView(key: key, jsonl: jsonl, schema: schema)
        }
        var views = graph.order.map { stage in
            var stageView = view(directory.outputPath(stage: stage.config.id), ColumnType.outputLine(of: stage))
            if vectorFiles[stage.config.id] != nil {
                stageView.vectors = [
                    ParquetWriter.Vectors(npy: vectorsPath(stage: stage.config.id), index: "index", column: "vector")
                ]
            }
            return stageView
        }
        views.append(
            view(
                directory.path + "/dataset.jsonl", ColumnType.datasetLine(stages: graph.order, dataset: config.dataset))
        )
        return views.filter { FileManager.default.fileExists(atPath: $0.jsonl) }
    }

    /// Writes the Parquet views of the outputs (`outputs: {format}`), each from its JSONL, which
    /// stays the source of truth; rewritten whole on `--resume`. A view that cannot be written is a
    /// warning, not a failed run: the run's work is in the JSONL (`labelforge export --format hf`
    /// writes Parquet again from it).
    /// - Returns: the rows written, all views together, and the seconds it took; `nil` without views.
    private func writeParquetViews() -> (rows: Int, seconds: Double)? {
        let views = parquetViews
        guard !views.isEmpty else { return nil }
        let start = ContinuousClock.now
        var rows = 0
        for view in views {
            let path = RunDirectory.parquetPath(of: view.jsonl)
            do {
                let written = try ParquetWriter.write(
                    rows: view.jsonl, to: path, schema: view.schema, vectors: view.vectors)
                rows += written.rows
                if let reason = written.undeclared {
                    logger.warning("Parquet view \(view.key): typed from its values, not as declared (\(reason))")
                }
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                logger.warning("no Parquet view \(view.key): \(error)")
            }
        }
        return (rows, environment.seconds(since: start))
    }

    /// The content hash of every output file written (and of each stage's vectors and Parquet views).
    private func outputDigests() throws -> [String: String] {
        var digests: [String: String] = [:]
        for view in parquetViews {
            let path = RunDirectory.parquetPath(of: view.jsonl)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            digests[view.key] = ContentHash.prefixed(try ContentHash.hexOfFile(atPath: path))
        }
        for stage in graph.order {
            let path = directory.outputPath(stage: stage.config.id)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            digests[stage.config.id] = ContentHash.prefixed(try ContentHash.hexOfFile(atPath: path))
            if vectorFiles[stage.config.id] != nil {
                digests[stage.config.id + ".npy"] = ContentHash.prefixed(
                    try ContentHash.hexOfFile(atPath: vectorsPath(stage: stage.config.id)))
            }
        }
        return digests
    }

    /// The dataset's rows, with IDs assigned and images loaded, up to the run's limit.
    private func datasetSource() throws -> () throws -> PipelineRow? {
        let repeats = self.repeats
        let reader = try config.dataset.reader()
        var assigner = RowIDAssigner(idField: config.dataset.idField, repeats: repeats)
        let images = config.dataset.images
        let idField = config.dataset.idField
        let limit = datasetRows
        var read = 0
        let shard = self.shard
        return {
            while read < limit, let record = try reader.next() {
                let loaded = images.load(record)
                let rowID = assigner.assign(loaded.identity(idField: idField))
                read += 1
                if let shard, !shard.contains(rowID: rowID) { continue }
                return PipelineRow(rowID: rowID, order: [read - 1], source: record, loaded: loaded)
            }
            return nil
        }
    }

    /// How many of the dataset's rows are in this run's shard: a pass of `datasetSource` (a row's ID
    /// may hash its images' bytes, so the rows are read as the run reads them).
    private func shardRowCount() throws -> Int {
        let next = try datasetSource()
        var count = 0
        while try next() != nil { count += 1 }
        return count
    }

    /// Streams rows through a stretch of row-wise stages with bounded concurrency, writing each
    /// source row's emissions in input order and handing the rows that come out to `sink`.
    private func stream(
        _ source: () throws -> PipelineRow?, through stages: [any PipelineStage], countingInputRows: Bool,
        outputs: [String: JSONLWriter], rejected: [String: JSONLWriter], sink: (PipelineRow) throws -> Void
    ) async throws {
        var engineNames: Set<String> = []
        var batches: [Int] = []
        for use in stages.flatMap(\.engineUses) {
            engineNames.insert(use.engine)
            if use.task == .embed, let batchSize = use.batchSize {
                batches.append(batchSize * engines.handle(use.engine).config.maxInFlight)
            }
        }
        let capacity =
            config.determinism == .strict
            ? 1
            : max(1, engineNames.reduce(0) { $0 + engines.handle($1).config.maxInFlight } * 2, batches.max() ?? 0)
        var window = OrderedWindow<SegmentResult>(capacity: capacity)
        let processor = self.processor
        let plans = processor.plans(for: stages)
        func collect(_ index: Int, _ result: SegmentResult) throws {
            for ready in window.complete(index, with: result) {
                for emission in ready.emissions {
                    let stage = emission.outcome.stageID
                    try write(emission, output: outputs[stage], rejected: rejected[stage])
                }
                for row in ready.rows { try sink(row) }
                if ready.failed { failedSources.insert(ready.sourceIndex) }
                if countingInputRows {
                    budget.record(failed: ready.failed)
                    reportProgress()
                }
            }
        }
        try await withThrowingTaskGroup(of: (Int, SegmentResult).self) { group in
            do {
                while budget.abortReason == nil, executor.budgetStop == nil, let row = try source() {
                    let index = window.admit()
                    group.addTask { (index, try await processor.process(row, through: plans)) }
                    // Wait while the window is full, and while finished rows queue up behind a slow
                    // one (they are written in input order), so memory stays bounded either way.
                    while !window.canAdmit, let (index, result) = try await group.next() {
                        try collect(index, result)
                    }
                }
            } catch is CancellationError where executor.budgetStop != nil && !Task.isCancelled {
                // A request could have crossed the budget: the requests in flight finish (their
                // answers are paid for, and cached); the rows before the first one stopped are written.
                try await drain(&group, collect)
            }
            if executor.budgetStop != nil { try await drain(&group, collect) }
            if budget.abortReason != nil {
                // Rows still in flight are abandoned; the manifest records only finished ones.
                group.cancelAll()
                while (try? await group.next()) != nil {}
                return
            }
            while let (index, result) = try await group.next() {
                try collect(index, result)
            }
        }
    }

    /// After a budget stop: waits for the rows in flight, writes those that come in order, and
    /// throws the first write error, else `CancellationError` (the run stops, resumable).
    private func drain(
        _ group: inout ThrowingTaskGroup<(Int, SegmentResult), any Error>,
        _ collect: (Int, SegmentResult) throws -> Void
    ) async throws -> Never {
        var failure: (any Error)?
        while !group.isEmpty {
            do {
                if let (index, result) = try await group.next() { try collect(index, result) }
            } catch is CancellationError {
                continue
            } catch {
                failure = failure ?? error
            }
        }
        throw failure ?? CancellationError()
    }

    /// Runs a barrier over its committed input and commits its result; returns the result's path.
    private func runBarrier(_ barrier: any BarrierStage, input: String) async throws -> String {
        let id = barrier.config.id
        let images = config.dataset.images
        let result = try RowFileWriter(path: stateDirectory + "/\(id).rows.jsonl")
        let outputPath = directory.outputPath(stage: id)
        // A run killed after writing these but before committing them left them behind; the
        // writers append, so start them afresh.
        for path in [outputPath, rejectedPath(stage: id)] { try? FileManager.default.removeItem(atPath: path + ".tmp") }
        let output = try JSONLWriter(path: outputPath + ".tmp")
        let rejectedOutput = try JSONLWriter(path: rejectedPath(stage: id) + ".tmp")
        let reads = graph.reads(of: id)
        var rowsIn = 0
        var ownFailures = 0
        let start = environment.clock()
        let ledger = BarrierLedger()
        let services = barrierServices(stage: id, ledger: ledger)
        try await barrier.run(
            rows: { try RowFileReader(path: input, images: images) },
            context: { $0.context(reading: reads) },
            failure: { self.processor.upstreamFailure(of: id, in: $0) },
            services: services
        ) { row, verdict, requests in
            rowsIn += 1
            let emission = Self.emission(of: row, stage: id, verdict: verdict, requests: requests, ledger: ledger)
            if let failure = emission.outcome.failure {
                failedSources.insert(row.order[0])
                if failure.errorClass != "upstream_failed" { ownFailures += 1 }
            }
            try write(emission, output: output, rejected: rejectedOutput)
            if emission.rejection == nil {
                var row = row
                row.outputs[id] = emission.record
                try result.append(row)
            }
        }
        try commitBarrier(
            id, output: output, rejected: rejectedOutput, result: result, rowsIn: rowsIn, ledger: ledger, start: start)
        budget.record(stage: id, rows: rowsIn, failed: ownFailures)
        return result.path
    }

    /// Commits a barrier's work: its counts, its output and rejected files (renamed into place), its
    /// result row file, and its manifest line (once, however often the barrier runs).
    private func commitBarrier(
        _ id: String, output: JSONLWriter, rejected rejectedOutput: JSONLWriter, result: RowFileWriter, rowsIn: Int,
        ledger: BarrierLedger, start: ContinuousClock.Instant
    ) throws {
        let outputPath = directory.outputPath(stage: id)
        let requests = ledger.totals
        var stat = stats[id, default: StageStats()]
        stat.cacheHits += requests.cacheHits
        stat.cacheMisses += requests.lookups - requests.cacheHits
        stat.tokensIn += requests.tokensIn
        stat.truncated += requests.truncated
        stats[id] = stat
        try output.sync()
        try rejectedOutput.sync()
        CrashPoint.barrierOutputsWritten.reach()
        try result.commit()
        for path in [outputPath, rejectedPath(stage: id)] {
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: path + ".tmp", toPath: path)
        }
        if !recordedBarriers.contains(id) {
            try manifest.append(
                .barrier(
                    BarrierRecord(
                        stage: id, rowsIn: rowsIn, rowsOut: result.count,
                        resultDigest: ContentHash.prefixed(try ContentHash.hexOfFile(atPath: result.path)),
                        latencyMs: environment.milliseconds(since: start),
                        requests: requests.lookups > 0 ? requests : nil, requestKeys: ledger.unattributedKeys)))
            try manifest.sync()
        }
        CrashPoint.barrierCommitted.reach()
    }

    /// What a barrier's verdict on a row writes: its output (or rejection, or failure), and the
    /// requests made for it. The row's line lists them; the stage's counts take each request once,
    /// from the ledger, however many rows share it.
    private static func emission(
        of row: PipelineRow, stage id: String, verdict: BarrierVerdict, requests: [String], ledger: BarrierLedger
    ) -> StageEmission {
        var emission = StageEmission(rowID: row.rowID, outcome: StageOutcome(stageID: id), fields: row.loaded.recorded)
        let cost = ledger.attribute(requests)
        emission.outcome.requestKeys = requests
        emission.outcome.cacheHits = cost.cacheHits
        emission.outcome.attempts = cost.attempts
        emission.outcome.tokensIn = cost.tokensIn
        emission.countsRequests = false
        switch verdict {
        case .keep(let fields): emission.outcome.output = fields
        case .drop(let fields, let reason):
            emission.outcome.output = fields
            emission.rejection = reason
        case .fail(let failure): emission.outcome.failure = failure
        }
        return emission
    }

    /// What the run offers barrier `id`: its engines through the executor (every request into
    /// `ledger`), files of its own in `outputs/`, and the progress line.
    private func barrierServices(stage id: String, ledger: BarrierLedger) -> BarrierServices {
        let stageServices = processor.services[id]!
        let outputs = directory.outputsPath
        let report = barrierProgress(stage: id)
        return BarrierServices(
            runSeed: config.seed,
            embed: { texts, phase in
                try await stageServices.embed(texts, ledger: ledger) { report(phase, $0, texts.count) }
            },
            rerank: { try await stageServices.rerank(query: $0, documents: $1, ledger: ledger) },
            writeOutput: { name, bytes in
                let path = outputs + "/" + name
                try Data(bytes).write(to: URL(fileURLWithPath: path + ".tmp"))
                try? FileManager.default.removeItem(atPath: path)
                try FileManager.default.moveItem(atPath: path + ".tmp", toPath: path)
            },
            progress: report)
    }

    /// Writes one emission: its manifest line (unless an interrupted run recorded it), its output or
    /// rejected line, and its counts.
    private func write(_ emission: StageEmission, output: JSONLWriter?, rejected: JSONLWriter?) throws {
        var outcome = emission.outcome
        let stageID = outcome.stageID
        let recorded = previous[ManifestRecovery.key(row: emission.rowID, stage: stageID)]
        if let recorded {
            // Keep what the interrupted run recorded: its cache status and tokens.
            outcome.attempts = recorded.attempts
            outcome.latencyMs = recorded.latencyMs
            outcome.cacheHits = recorded.cacheHits
            outcome.tokensIn = recorded.tokensIn
            outcome.tokensOut = recorded.tokensOut
            outcome.servedBy = recorded.servedBy
        }
        var record: [String: JSONValue] = ["row_id": .string(emission.rowID)]
        for (key, value) in emission.record { record[key] = value }
        if let vector = outcome.vector, outcome.failure == nil, let vectors = vectorFiles[stageID] {
            record["index"] = .int(Int64(vectors.count))
            try vectors.append(vector)
        }
        var line = RowRecord(
            rowID: emission.rowID, stage: stageID, requestKeys: outcome.requestKeys, cache: outcome.cacheStatus,
            attempts: outcome.attempts, cacheHits: outcome.cacheHits, latencyMs: outcome.latencyMs,
            tokensIn: outcome.tokensIn, tokensOut: outcome.tokensOut, parentRowID: emission.parent,
            sampleIndex: emission.sampleIndex, error: outcome.failure, outputHash: "")
        line.servedBy = outcome.servedBy
        var stat = stats[stageID, default: StageStats()]
        if emission.countsRequests {
            stat.cacheHits += outcome.cacheHits
            stat.cacheMisses += outcome.requestKeys.count - outcome.cacheHits
            stat.tokensIn += outcome.tokensIn
            stat.tokensOut += outcome.tokensOut
            stat.truncated += outcome.truncated
        }
        if let failure = outcome.failure {
            stat.failed += 1
            stat.errorsByClass[failure.errorClass, default: 0] += 1
        } else {
            stat.ok += 1
            if let output = outcome.output { scoreGold(stageID, output: output, row: emission.fields) }
        }
        if let rejection = emission.rejection {
            line.dropped = true
            record["reason"] = .string(rejection)
            stat.dropped += 1
        }
        // The line written is the canonical form the hash is taken over: serialize it once.
        var bytes: [UInt8] = []
        CanonicalJSON.write(.object(record), into: &bytes)
        line.outputHash = ContentHash.prefixed(ContentHash.hex(bytes))
        stats[stageID] = stat
        if recorded == nil || writesPrevious { try manifest.append(.row(line)) }
        try (emission.rejection == nil ? output : rejected)?.append(canonical: bytes)
    }

    /// A row that passed every stage: one line of `dataset.jsonl`, its input and every output.
    private func writeFinal(_ row: PipelineRow, to joined: JSONLWriter) throws {
        var line: [String: JSONValue] = [
            "row_id": .string(row.rowID), "input": .object(row.loaded.recorded),
            "outputs": .object(row.outputs.mapValues(JSONValue.object)),
        ]
        if let parent = row.parent { line["parent_row_id"] = .string(parent) }
        try joined.append(.object(line))
    }

    private func scoreGold(_ stageID: String, output: [String: JSONValue], row: [String: JSONValue]) {
        guard let stage = graph.order.first(where: { $0.config.id == stageID }) else { return }
        for (field, goldField) in stage.goldPairs {
            guard let gold = row[goldField], !gold.isNull, let predicted = output[field] else { continue }
            scores["\(stageID)\u{0}\(field)\u{0}\(goldField)", default: Agreement()].add(
                predicted: predicted.textForm.lowercased(), gold: gold.textForm.lowercased())
        }
    }

    private var counts: SummaryRecord.Counts {
        SummaryRecord.Counts(rows: budget.rows, rowsFailed: failedSources.count, stages: stats)
    }

    private func reportProgress() {
        let hits = stats.values.reduce(0) { $0 + $1.cacheHits }
        let lookups = stats.values.reduce(0) { $0 + $1.cacheHits + $1.cacheMisses }
        progress(
            RunProgress(
                done: budget.rows, total: totalRows, failedRows: failedSources.count, cacheHits: hits,
                cacheLookups: lookups,
                elapsedSeconds: environment.seconds(since: started)))
    }

    /// How a dataset-wide stage reports its own work: each phase's count, rate and ETA on the same
    /// progress line as the rows (which are all in by then).
    private func barrierProgress(stage: String) -> @Sendable (String, Int, Int) -> Void {
        let base = RunProgress(
            done: budget.rows, total: totalRows, failedRows: failedSources.count,
            cacheHits: stats.values.reduce(0) { $0 + $1.cacheHits },
            cacheLookups: stats.values.reduce(0) { $0 + $1.cacheHits + $1.cacheMisses },
            elapsedSeconds: 0)
        let progress = self.progress
        let (started, environment) = (self.started, self.environment)
        let phases = Mutex<[String: ContinuousClock.Instant]>([:])
        return { name, done, total in
            let now = environment.clock()
            let phaseStart = phases.withLock { phases in
                if let start = phases[name] { return start }
                phases[name] = now
                return now
            }
            var update = base
            update.elapsedSeconds = Double((now - started) / .milliseconds(1)) / 1000
            update.phase = RunProgress.Phase(
                stage: stage, name: name, done: done, total: total,
                elapsedSeconds: Double((now - phaseStart) / .milliseconds(1)) / 1000)
            progress(update)
        }
    }

    /// What each dataset-wide stage adds to the report (mining statistics, dedup clusters).
    private func barrierSections() -> [String] {
        graph.order.flatMap { $0.execution.datasetWide?.reportLines(outputs: directory.outputsPath) ?? [] }
    }

    /// The summary's `cost`: nil when nothing priced was sent.
    static func costJSON(_ cost: [EngineCost]) -> JSONValue? {
        guard !cost.isEmpty else { return nil }
        return .array(
            cost.map {
                [
                    "engine": .string($0.engine), "requests": .int(Int64($0.usage.requests)),
                    "tokens_in": .int(Int64($0.usage.input)), "tokens_out": .int(Int64($0.usage.output)),
                    "usd": .double(($0.usd * 1e9).rounded() / 1e9),
                ]
            })
    }

    private func makeReport() -> RunReport {
        let scoreList = scores.keys.sorted().map { key -> GoldScore in
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            let agreement = scores[key]!
            return GoldScore(
                stage: parts[0], field: parts[1], goldField: parts[2], agreement: agreement,
                intervals: agreement.intervals())
        }
        var report = RunReport(
            status: budget.abortReason == nil ? "completed" : "aborted", runDirectory: directory, rows: budget.rows,
            rowsFailed: failedSources.count,
            stages: graph.order.map { ($0.config.id, stats[$0.config.id] ?? StageStats()) },
            engineRequests: engines.requestsSent - requestsBefore, scores: scoreList,
            elapsedSeconds: environment.seconds(since: started),
            abortReason: budget.abortReason, sections: barrierSections(),
            cacheFailedVerification: store.failedVerification, stoppedBefore: stoppedBefore)
        let spent = executor.spent
        report.cost = config.engines.compactMap { engine in
            guard let pricing = engine.tokenPrices, let usage = spent[engine.name] else { return nil }
            return EngineCost(
                engine: engine.name, usage: usage, usd: pricing.cost(input: usage.input, output: usage.output))
        }
        report.batches = config.engines.compactMap { engine in
            guard let batches = engines.handles[engine.name]?.transport as? BatchTransport else { return nil }
            return (engine.name, batches.counts)
        }
        return report
    }
}
