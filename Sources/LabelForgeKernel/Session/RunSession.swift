import Foundation
import LabelForgeCache
import LabelForgeCore
import Logging

/// Runs a `RunSetup` straight through: opens the cache, checks the answers the run must find there,
/// writes the run line, gets the engines the setup names, and streams the rows (`RunExecution`).
package struct RunSession {
    /// `--cache-path`: the cache file instead of the config's.
    package var cachePath: String? = nil
    package let logger: Logger
    package let progress: @Sendable (RunProgress) -> Void
    /// The engines of a setup whose engines are `.live`.
    package let engines: any EngineProvider
    package var environment: RunEnvironment = .live
    /// `report.html` of a finished run, from its directory; none is written when `nil`.
    package var htmlReport: (@Sendable (_ directory: String) throws -> String)? = nil

    package init(
        cachePath: String? = nil, logger: Logger, engines: any EngineProvider, environment: RunEnvironment = .live,
        htmlReport: (@Sendable (_ directory: String) throws -> String)? = nil,
        progress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) {
        self.cachePath = cachePath
        self.logger = logger
        self.engines = engines
        self.environment = environment
        self.htmlReport = htmlReport
        self.progress = progress
    }

    package func run(_ setup: RunSetup) async throws -> RunReport {
        let cache: any CacheStore
        do {
            cache = try await RunCache.open(
                config: setup.plan.config, overridePath: cachePath, logger: logger, environment: environment.variables)
        } catch {
            // Nothing ran: a run that created its directory leaves none behind.
            if setup.createdDirectory { try? FileManager.default.removeItem(atPath: setup.directory.path) }
            throw error
        }
        return try await run(setup, cache: cache)
    }

    /// Runs `setup` on an open cache.
    package func run(_ setup: RunSetup, cache: any CacheStore) async throws -> RunReport {
        if let required = setup.required {
            let missing = try await required.missing(cache)
            if !missing.isEmpty {
                try? FileManager.default.removeItem(atPath: setup.directory.path)
                throw LabelForgeError(
                    .cacheMiss, required.message(missing.count, missing.prefix(required.sample).joined(separator: ", "))
                )
            }
        }
        let manifest = try ManifestWriter(path: setup.directory.manifestPath)
        // The run line is made now, when the run begins (its `created_at`), after the checks.
        let record = setup.runRecord(createdAt: environment.timestamp())
        let interrupted = LabelForgeError(
            .interrupted,
            "Interrupted; the manifest is flushed. Resume with: labelforge run --resume \(setup.directory.path)")
        do {
            switch setup.engines {
            case .recorded(let pins):
                return try await runRecorded(setup, record: record, engines: pins, cache: cache, manifest: manifest)
            case .shared(let engines):
                return try await runLive(setup, record: record, engines: engines, cache: cache, manifest: manifest)
            case .live:
                var started = false
                do {
                    let ledger = ManifestBatchLedger(manifest: manifest, previous: setup.previous?.batches ?? [])
                    return try await engines.withEngines(
                        for: setup.plan, logPath: setup.directory.engineLogPath, ledger: ledger
                    ) {
                        started = true
                        return try await runLive(setup, record: record, engines: $0, cache: cache, manifest: manifest)
                    }
                } catch let error as LabelForgeError where !started {
                    // An engine that could not start: the run line names no engine.
                    if var record {
                        record.engines = []
                        try? manifest.append(.run(record))
                    }
                    try? manifest.append(failureSummary(error))
                    try? manifest.sync()
                    throw Self.recorded(error, in: setup.directory)
                }
            }
        } catch is CancellationError {
            throw interrupted
        } catch let error as LabelForgeError where error.code == .interrupted {
            throw interrupted
        }
    }

    /// No engine: every answer from the cache, the run line naming the engines that made them.
    private func runRecorded(
        _ setup: RunSetup, record: RunRecord?, engines pins: [RunRecord.EnginePin], cache: any CacheStore,
        manifest: ManifestWriter
    ) async throws -> RunReport {
        if var record {
            record.engines = pins
            try manifest.append(.run(record))
        }
        try manifest.flush()
        return try await RecordedEngines().withEngines(for: setup.plan, logPath: setup.directory.engineLogPath) {
            let execution = RunExecution(
                plan: setup.plan, engines: $0,
                engineInfos: Dictionary(pins.map { ($0.name, $0.info) }, uniquingKeysWith: { _, last in last }),
                cache: cache, directory: setup.directory, manifest: manifest, previous: setup.previous, noCache: false,
                offline: true, logger: logger, progress: progress, shard: setup.shard,
                stop: setup.stop, maxFailureRatio: setup.maxFailureRatio, writesPrevious: setup.writesPrevious,
                environment: environment, htmlReport: htmlReport)
            return try await execution.run()
        }
    }

    /// Engines up: checked, asked what they run, recorded on the run line, then the rows.
    private func runLive(
        _ setup: RunSetup, record: RunRecord?, engines: EngineSet, cache: any CacheStore, manifest: ManifestWriter
    ) async throws -> RunReport {
        do {
            try await engines.checkReachable()
        } catch let error as LabelForgeError {
            if var record {
                record.engines = engines.describe(infos: [:])
                try manifest.append(.run(record))
            }
            try manifest.append(failureSummary(error))
            try manifest.sync()
            throw Self.recorded(error, in: setup.directory)
        }
        let infos = await engines.probe()
        if var record {
            record.engines = engines.describe(infos: infos)
            try manifest.append(.run(record))
            try manifest.flush()
        }
        let execution = RunExecution(
            plan: setup.plan, engines: engines, engineInfos: infos, cache: cache, directory: setup.directory,
            manifest: manifest, previous: setup.previous, noCache: setup.noCache, offline: false, logger: logger,
            progress: progress, shard: setup.shard, stop: setup.stop, maxFailureRatio: setup.maxFailureRatio,
            writesPrevious: setup.writesPrevious, environment: environment,
            htmlReport: htmlReport)
        do {
            return try await execution.run()
        } catch let error as LabelForgeError where error.code == .io {
            // A full disk, a file system gone read-only: the manifest holds what finished.
            throw LabelForgeError(
                .io,
                error.message + " The run stopped; what finished is recorded. Free space (or fix the cause), "
                    + "then resume with: labelforge run --resume \(setup.directory.path)")
        }
    }

    /// Why the run could not start, as the manifest's summary line.
    private func failureSummary(_ error: LabelForgeError) -> ManifestRecord {
        .summary(
            SummaryRecord(
                status: "failed", finishedAt: environment.timestamp(),
                error: StageFailure(errorClass: error.code.rawValue, message: error.message)))
    }

    /// The error to throw once the failure is recorded: it names the manifest.
    private static func recorded(_ error: LabelForgeError, in directory: RunDirectory) -> LabelForgeError {
        LabelForgeError(error.code, error.message + " The failure is recorded in \(directory.manifestPath).")
    }
}
