import Foundation
import LabelForgeCore
import Synchronization

/// Where vLLM batch files travel.
public enum BatchFileExchange: Sendable {
    /// A directory this machine and the one running vLLM both see.
    case directory(String)
    /// A bucket both reach (the run's S3 cache): the files are objects there, named by `url`.
    case bucket(any RayJobBucket)
}

/// Batches as files for `vllm run-batch` (the OpenAI batch file format, in and out), exchanged
/// through a directory or a bucket (`BatchFileExchange`): `<submission>.input.jsonl` is written, then
/// answered as `<submission>.output.jsonl`, by `command` when the config gives one (started here with
/// the files' paths or `s3://` URLs; its output in `<submission>.log`, its process id in
/// `<submission>.pid`), else by whatever watches the directory or bucket (a cluster job). A batch has
/// ended when its command exited, or, with no command, when its output file is there.
public final class VLLMBatchFiles: BatchProvider {
    public var name: String { "vllm-file" }
    public let maxRequests: Int
    public let maxBytes: Int
    public let exchange: BatchFileExchange
    public let command: [String]?
    public let model: String
    /// Where the commands' logs and process ids go (this machine's).
    private let localDirectory: String
    private let processes = Mutex<[String: Process]>([:])
    /// Output files read from a bucket, kept until their results are read.
    private let fetched = Mutex<[String: Data]>([:])

    public init(
        exchange: BatchFileExchange, localDirectory: String, command: [String]?, model: String, maxRequests: Int,
        maxBytes: Int
    ) {
        self.exchange = exchange
        self.localDirectory = localDirectory
        self.command = command
        self.model = model
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
    }

    private func path(_ batch: String, _ suffix: String) -> String { localDirectory + "/" + batch + suffix }

    /// Where a batch file is, as its command is told.
    private func location(_ batch: String, _ suffix: String) -> String {
        switch exchange {
        case .directory(let directory): directory + "/" + batch + suffix
        case .bucket(let bucket): bucket.url(batch + suffix)
        }
    }

    private func write(_ data: Data, _ batch: String, _ suffix: String) async throws {
        switch exchange {
        case .directory(let directory):
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let file = directory + "/" + batch + suffix
            try data.write(to: URL(fileURLWithPath: file + ".tmp"))
            guard rename(file + ".tmp", file) == 0 else {
                throw LabelForgeError(.io, "Cannot write \(file): \(String(cString: strerror(errno))).")
            }
        case .bucket(let bucket):
            try await bucket.put(batch + suffix, data)
        }
    }

    private func read(_ batch: String, _ suffix: String) async throws -> Data? {
        switch exchange {
        case .directory(let directory): FileManager.default.contents(atPath: directory + "/" + batch + suffix)
        case .bucket(let bucket): try await bucket.get(batch + suffix)
        }
    }

    public func size(of item: BatchItem) -> Int { OpenAIBatchLines.line(item).count }

    public func submit(_ items: [BatchItem], submission: String) async throws -> String {
        var lines = Data()
        for item in items { lines.append(OpenAIBatchLines.line(item)) }
        try await write(lines, submission, ".input.jsonl")
        if command != nil { try start(submission) }
        return submission
    }

    /// Runs the command for `batch`, its output to `<batch>.log`.
    private func start(_ batch: String) throws {
        guard let command else { return }
        let arguments = command.map {
            $0.replacingOccurrences(of: "{input}", with: location(batch, ".input.jsonl"))
                .replacingOccurrences(of: "{output}", with: location(batch, ".output.jsonl"))
                .replacingOccurrences(of: "{model}", with: model)
        }
        try FileManager.default.createDirectory(atPath: localDirectory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        FileManager.default.createFile(atPath: path(batch, ".log"), contents: nil)
        let log = FileHandle(forWritingAtPath: path(batch, ".log"))
        process.standardOutput = log
        process.standardError = log
        do {
            try process.run()
        } catch {
            throw LabelForgeError(.engineFailed, "Cannot run \(arguments.joined(separator: " ")): \(error).")
        }
        try? String(process.processIdentifier).write(toFile: path(batch, ".pid"), atomically: true, encoding: .utf8)
        processes.withLock { $0[batch] = process }
    }

    public func find(submission: String) async throws -> String? {
        try await read(submission, ".input.jsonl") != nil ? submission : nil
    }

    /// The process id a run wrote for `batch`, when that process still runs.
    private func livePID(_ batch: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path(batch, ".pid"), encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    public func status(of batch: String) async throws -> BatchStatus {
        if let process = processes.withLock({ $0[batch] }) {
            if process.isRunning { return BatchStatus(state: "in_progress", ended: false) }
            if process.terminationStatus == 0 { return BatchStatus(state: "completed", ended: true) }
            let log = (try? String(contentsOfFile: path(batch, ".log"), encoding: .utf8)) ?? ""
            return BatchStatus(
                state: "failed (\(command?.first ?? "command") exited \(process.terminationStatus): "
                    + "\(log.suffix(400).trimmingCharacters(in: .whitespacesAndNewlines)))", ended: true)
        }
        if let output = try await read(batch, ".output.jsonl") {
            fetched.withLock { $0[batch] = output }
            return BatchStatus(state: "completed", ended: true)
        }
        // A resumed run: the command an earlier attempt started may still run; if it died, run it again.
        if command != nil && livePID(batch) == nil { try start(batch) }
        return BatchStatus(
            state: command == nil ? "waiting for \(location(batch, ".output.jsonl"))" : "in_progress", ended: false)
    }

    public func results(of batch: String) async throws -> [String: BatchItemOutcome] {
        var data = fetched.withLock { $0.removeValue(forKey: batch) }
        if data == nil { data = try await read(batch, ".output.jsonl") }
        guard let data else { return [:] }
        var outcomes: [String: BatchItemOutcome] = [:]
        try OpenAIBatchLines.outcomes(data, into: &outcomes)
        return outcomes
    }

    public func cancel(_ batch: String) async throws {
        if let process = processes.withLock({ $0.removeValue(forKey: batch) }), process.isRunning {
            process.terminate()
        } else if let pid = livePID(batch) {
            kill(pid, SIGTERM)
        }
    }
}
