import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Everything the CLI writes to the terminal: data to stdout, progress and errors to stderr.
enum Terminal {
    static let stderrIsTTY = isatty(2) == 1

    static func logger(verbose: Bool) -> Logger {
        var logger = Logger(label: "labelforge") { StreamLogHandler.standardError(label: $0) }
        // Notices: what a batch engine's batches are doing (docs/batch.md), hours apart.
        logger.logLevel = verbose ? .debug : .notice
        return logger
    }

    /// One `warning:` line on stderr.
    static func warn(_ message: String) {
        FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    }

    /// Maps a library error to one stderr line and the documented exit code.
    static func exit(for error: Error) -> ExitCode {
        if error is CancellationError || Task.isCancelled {
            printError("interrupted; the manifest was flushed.")
            return ExitCode(130)
        }
        guard let error = error as? LabelForgeError else {
            printError(String(describing: error))
            return ExitCode(1)
        }
        printError(error.message)
        if error.code == .interrupted { return ExitCode(130) }
        // EX_TEMPFAIL: stopped at its budget, resumable.
        if error.code == .budgetReached { return ExitCode(75) }
        if error.isUsageError { return ExitCode(64) }
        if error.code == .engineUnavailable { return ExitCode(69) }
        return ExitCode(1)
    }

    /// Runs a pipeline (`run`, `merge`) with a progress line, prints its summary, and exits 1 unless
    /// it completed.
    static func runAndSummarize(_ options: RunOptions, logger: Logger) async throws {
        let bar = ProgressLine()
        let runner = Runner(options: options, logger: logger) { bar.update($0) }
        let report: RunReport
        do {
            report = try await interruptible { try await runner.run() }
        } catch {
            bar.finish()
            throw exit(for: error)
        }
        bar.finish()
        print(summary: report)
        if report.status != "completed" { throw ExitCode(1) }
    }

    /// Runs `body`, cancelling it on SIGINT or SIGTERM so in-flight requests stop, the manifest is
    /// flushed and the local engine is stopped.
    static func interruptible<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    static func print(summary report: RunReport) {
        var lines = [
            "run:            \(report.runDirectory.path)",
            "status:         \(report.status)" + (report.abortReason.map { " (\($0))" } ?? "")
                + (report.stopNote.map { "; \($0)" } ?? ""),
            "rows labeled:   \(report.rows - report.rowsFailed)/\(report.rows)"
                + (report.rowsFailed > 0 ? " (\(report.rowsFailed) failed; see manifest.jsonl)" : ""),
            "cache hit rate: \(String(format: "%.1f%%", report.cacheHitRate * 100)) (\(report.cacheHits)/\(report.cacheLookups))",
            "engine requests sent: \(report.engineRequests)",
            "time:           "
                + String(
                    format: "%.1f s (%.1f rows/s; from the first row to the last output)", report.elapsedSeconds,
                    report.elapsedSeconds > 0 ? Double(report.rows) / report.elapsedSeconds : 0),
        ]
        if report.cacheFailedVerification > 0 {
            lines.append("cache entries that failed verification (refetched): \(report.cacheFailedVerification)")
        }
        let cut = report.stages.filter { $0.stats.truncated > 0 }
        if !cut.isEmpty {
            lines.append(
                "texts cut to the model's window: "
                    + cut.map { "\($0.stats.truncated) in \($0.id)" }.joined(separator: ", ")
                    + " (truncate: false sends them whole)")
        }
        for score in report.scores {
            let a = score.agreement
            lines.append(
                "accuracy \(score.stage).\(score.field) vs \(score.goldField): "
                    + "\(RunReport.percent(a.accuracy, score.intervals?.accuracy)) (n=\(a.count), "
                    + "macro-F1 \(RunReport.decimal(a.macroF1, score.intervals?.macroF1)); "
                    + "chance \(RunReport.percent(a.majorityBaseline)): always the most common gold label)")
        }
        for (engine, counts) in report.batches {
            lines.append("batches (\(engine)): " + counts.line.dropFirst("batches: ".count))
        }
        if !report.cost.isEmpty {
            let total = report.cost.reduce(0) { $0 + $1.usd }
            let parts = report.cost.map {
                "\($0.engine): \($0.usage.requests) requests, \($0.usage.input) tokens in, \($0.usage.output) out"
            }
            lines.append(
                "cost:           " + String(format: "$%.4f", total) + " (" + parts.joined(separator: "; ")
                    + "; the usage the engines reported, at their pricing)")
        }
        lines.append("outputs:        \(report.runDirectory.outputsPath)/")
        if let views = report.parquetViews {
            lines.append(
                "parquet views:  \(views.rows) rows in " + String(format: "%.1f s", views.seconds)
                    + " (outputs/*.parquet, dataset.parquet)")
        }
        lines.append("report:         \(report.runDirectory.reportPath)")
        if FileManager.default.fileExists(atPath: report.runDirectory.reportHTMLPath) {
            lines.append("html report:    \(report.runDirectory.reportHTMLPath)")
        }
        Swift.print(lines.joined(separator: "\n"))
    }
}

/// A one-line progress bar on a terminal; a plain log line every 10 s otherwise.
final class ProgressLine: @unchecked Sendable {
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var drewBar = false

    func update(_ p: RunProgress) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        let interval = Terminal.stderrIsTTY ? 0.1 : 10
        // A dataset-wide stage's phase moves while the rows stand still: its own count, rate and ETA.
        let (done, total) = p.phase.map { ($0.done, $0.total) } ?? (p.done, p.total)
        guard now.timeIntervalSince(lastDraw) >= interval || (p.phase == nil && p.done == p.total) else { return }
        lastDraw = now
        let text: String
        if let phase = p.phase {
            let rate = phase.elapsedSeconds > 0 ? Double(phase.done) / phase.elapsedSeconds : 0
            let eta = rate > 0 ? Double(phase.total - phase.done) / rate : 0
            text =
                "\(phase.stage): \(phase.done)/\(phase.total) \(phase.name)  "
                + String(format: "%.1f/s  ETA %.0fs", rate, eta)
                + "  (rows \(p.done)/\(p.total), failed \(p.failedRows))"
        } else {
            let rate = p.elapsedSeconds > 0 ? Double(p.done) / p.elapsedSeconds : 0
            let eta = rate > 0 ? Double(p.total - p.done) / rate : 0
            let hitRate = p.cacheLookups == 0 ? 0 : Double(p.cacheHits) / Double(p.cacheLookups) * 100
            text = String(
                format: "%d/%d rows  %.1f rows/s  ETA %.0fs  cache %.0f%%  failed %d", p.done, p.total, rate, eta,
                hitRate, p.failedRows)
        }
        if Terminal.stderrIsTTY {
            let width = 24
            let filled = total == 0 ? width : width * done / total
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[2K[\(bar)] \(text)".utf8))
            drewBar = true
        } else {
            FileHandle.standardError.write(Data("progress: \(text)\n".utf8))
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drewBar { FileHandle.standardError.write(Data("\n".utf8)) }
        drewBar = false
    }
}
