import AsyncHTTPClient
import Foundation
import LabelForgeCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Where a Ray job's request file and results travel.
public enum RayJobExchange: Sendable {
    /// A directory both the cluster and this machine see (a shared filesystem): the request file
    /// travels in the job's working directory and results come back in
    /// `<directory>/<submission>/results.jsonl`.
    case directory(String)
    /// A bucket both reach (the run's S3 cache): the request file and results are objects under
    /// `<prefix>/<submission>/`, and only the driver goes in the working directory. The cluster
    /// reads and writes them with its own credentials; this machine's never leave it.
    case bucket(any RayJobBucket)
}

/// Objects in a bucket, named relative to the prefix Ray jobs use.
public protocol RayJobBucket: Sendable {
    /// `s3://bucket/<prefix>/<name>`, as the job names the object.
    func url(_ name: String) -> String
    /// The S3 endpoint and region the job's filesystem uses.
    var endpoint: String { get }
    var region: String { get }
    func put(_ name: String, _ data: Data) async throws
    /// The object's bytes, or nil when there is none.
    func get(_ name: String) async throws -> Data?
    func delete(_ name: String) async
}

/// How a Ray job answers requests (`ray.data.llm` processor configs).
public enum RayProcessor: Sendable, Equatable {
    /// `HttpRequestProcessorConfig`: to an OpenAI-compatible endpoint the cluster reaches.
    case http(url: String)
    /// `vLLMEngineProcessorConfig`: vLLM inside the job, on the cluster's GPUs.
    /// - Parameters:
    ///   - modelSource: what vLLM loads (a Hugging Face id or a path on the nodes).
    ///   - engineKwargs: `engine_kwargs`, a JSON object.
    ///   - environment: the job's `runtime_env.env_vars` (vLLM's determinism switches).
    case vllm(modelSource: String, engineKwargs: JSONValue, environment: [String: String])

    /// The processor's driver arguments.
    var arguments: [String] {
        switch self {
        case .http(let url): return ["--url", url]
        case .vllm(let model, let kwargs, _):
            return ["--processor", "vllm", "--model-source", model, "--engine-kwargs", CanonicalJSON.string(kwargs)]
        }
    }

    /// For messages and the manifest: the endpoint, or `vllm:<model>`.
    public var target: String {
        switch self {
        case .http(let url): return url
        case .vllm(let model, _, _): return "vllm:" + model
        }
    }
}

/// Where a Ray cluster is and how its jobs reach the engine (`engines[]` of kind `ray`).
public struct RayJobOptions: Sendable {
    /// The Ray dashboard (Jobs REST API), e.g. `http://head:8265`.
    public var address: String
    /// How the job answers: over HTTP to an endpoint, or with vLLM inside the job.
    public var processor: RayProcessor
    /// The job entrypoint's Python (with `ray[data]`); an absolute path on the cluster's nodes.
    public var python: String
    /// How the request file and results travel.
    public var exchange: RayJobExchange
    public var batchSize: Int
    public var concurrency: Int
    /// Requests per job: the rows in flight gather into one job up to this many.
    public var maxRequestsPerJob: Int
    /// Strict runs: Ray Data keeps row order (`preserve_order`).
    public var preserveOrder: Bool
    /// How long a job may take before it is stopped.
    public var jobTimeout: Duration
    /// The cluster's token when it uses token authentication (`RAY_AUTH_MODE=token`), sent as
    /// `Authorization: Bearer`; never logged or written.
    public var authToken: String?

    public init(
        address: String, processor: RayProcessor, python: String, exchange: RayJobExchange, batchSize: Int = 16,
        concurrency: Int = 1, maxRequestsPerJob: Int = 256, preserveOrder: Bool = false,
        jobTimeout: Duration = .seconds(3600), authToken: String? = nil
    ) {
        self.address = address.hasSuffix("/") ? String(address.dropLast()) : address
        self.processor = processor
        self.python = python
        self.exchange = exchange
        self.batchSize = batchSize
        self.concurrency = concurrency
        self.maxRequestsPerJob = maxRequestsPerJob
        self.preserveOrder = preserveOrder
        self.jobTimeout = jobTimeout
        self.authToken = authToken
    }

    /// The token Ray's own clients would send, found where they look: `RAY_AUTH_TOKEN`, the file
    /// `RAY_AUTH_TOKEN_PATH` names, else `~/.ray/auth_token`; nil when there is none.
    /// - Throws: `LabelForgeError` when `RAY_AUTH_TOKEN_PATH` names a file that cannot be read.
    public static func authToken(environment: [String: String]) throws -> String? {
        if let token = environment["RAY_AUTH_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines),
            !token.isEmpty
        {
            return token
        }
        if let path = environment["RAY_AUTH_TOKEN_PATH"], !path.isEmpty {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                case let token = text.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty
            else {
                throw LabelForgeError(
                    .fileNotFound,
                    "RAY_AUTH_TOKEN_PATH names \(path), which cannot be read or is empty; point it at the Ray "
                        + "cluster's token file, or unset it.")
            }
            return token
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let token = (try? String(contentsOfFile: home + "/.ray/auth_token", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return token?.isEmpty == false ? token : nil
    }
}

/// Sends requests as Ray Data LLM batch jobs through the Ray Jobs REST API.
///
/// Requests that arrive together (a stretch of rows in flight) go out as one job: their bodies,
/// exactly as they would go over HTTP, are zipped with `scripts/ray_driver.py` into a working
/// directory uploaded to the cluster as `ray job submit --working-dir` does
/// (`PUT /api/packages/gcs/<name>.zip`, then `runtime_env.working_dir: gcs://<name>.zip`); the job
/// is submitted (`POST /api/jobs/`), polled (`GET /api/jobs/<id>`), stopped on cancellation
/// (`POST /api/jobs/<id>/stop`), and its answers are read from `<output_dir>/<submission_id>/
/// results.jsonl`, or, when the exchange is a bucket, the request file and the answers are
/// objects under `<prefix>/<submission_id>/`. Requests arriving while a job runs form the next one
/// (a validation retry is the next round). Each caller gets its own answer as if it came over HTTP, so the executor caches
/// it under the same key: a later HTTP run is all hits.
public final class RayJobTransport: EngineTransport {
    public let options: RayJobOptions
    /// The driver script's bytes (shipped in the working directory).
    private let driver: Data
    private let logger: Logger
    private let state = Mutex(State())
    private let sent = Atomic<Int>(0)
    /// How long the first request of a job waits for others to join it.
    let gatherWindow: Duration = .milliseconds(300)

    private struct Waiting {
        var request: EngineRequest
        var continuation: CheckedContinuation<EngineReply, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var running = false
    }

    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public init(options: RayJobOptions, driver: Data, logger: Logger) {
        self.options = options
        self.driver = driver
        self.logger = logger
    }

    public var requestsSent: Int { sent.load(ordering: .relaxed) }

    /// The first caller while no job runs leads: it runs jobs until nothing waits (no task of its
    /// own, so cancelling the run cancels the job); the others wait for their answers.
    public func send(_ request: EngineRequest) async throws -> EngineReply {
        while true {
            let lead = state.withLock { state -> Bool in
                guard !state.running else { return false }
                state.running = true
                return true
            }
            if lead { return try await leadJobs(own: request) }
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    let queued = state.withLock { state -> Bool in
                        // The leader may have finished between the two locks: then lead instead.
                        guard state.running else { return false }
                        state.queue.append(Waiting(request: request, continuation: continuation))
                        return true
                    }
                    if !queued { continuation.resume(throwing: BecomeLeader()) }
                }
            } catch is BecomeLeader {
                continue
            }
        }
    }

    private struct BecomeLeader: Error {}

    /// Runs jobs while requests wait, each with what queued up after a short gathering window;
    /// returns the leader's own answer once the queue is empty.
    private func leadJobs(own: EngineRequest) async throws -> EngineReply {
        var ownResult: Result<EngineReply, any Error>?
        while true {
            do {
                try await Task.sleep(for: gatherWindow)
            } catch {
                throw stopLeading()
            }
            let includeOwn = ownResult == nil
            let batch = state.withLock { state -> [Waiting] in
                let batch = Array(state.queue.prefix(options.maxRequestsPerJob - (includeOwn ? 1 : 0)))
                state.queue.removeFirst(batch.count)
                if batch.isEmpty && !includeOwn { state.running = false }
                return batch
            }
            if batch.isEmpty && !includeOwn { return try ownResult!.get() }
            let requests = (includeOwn ? [own] : []) + batch.map(\.request)
            var results: [Result<EngineReply, any Error>]
            do {
                results = try await runJob(requests)
            } catch {
                results = requests.map { _ in .failure(error) }
            }
            if includeOwn { ownResult = results.removeFirst() }
            for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
            if Task.isCancelled {
                throw stopLeading()
            }
        }
    }

    /// Ends leading after a cancellation: every waiting caller gets `CancellationError`, which the
    /// leader throws too.
    private func stopLeading() -> CancellationError {
        let waiting = state.withLock { state -> [Waiting] in
            state.running = false
            defer { state.queue.removeAll() }
            return state.queue
        }
        for waiter in waiting { waiter.continuation.resume(throwing: CancellationError()) }
        return CancellationError()
    }

    /// One job for `requests`; an answer (or a failure) per request, in order. The job's files are
    /// removed afterwards, whatever happened (from a task of its own: this one may be cancelled).
    func runJob(_ requests: [EngineRequest]) async throws -> [Result<EngineReply, any Error>] {
        let submission = "labelforge-\(UUID().uuidString.lowercased())"
        let cleanUp = { [exchange = options.exchange] in await Task { await Self.cleanUp(exchange, submission) }.value }
        do {
            let results = try await runJob(requests, submission: submission)
            await cleanUp()
            return results
        } catch {
            await cleanUp()
            throw error
        }
    }

    private func runJob(_ requests: [EngineRequest], submission: String) async throws
        -> [Result<EngineReply, any Error>]
    {
        let started = ContinuousClock.now
        var lines = Data()
        for (index, request) in requests.enumerated() {
            lines.append(
                CanonicalJSON.data(
                    ["id": .int(Int64(index)), "path": .string(request.kind.path), "body": request.body]))
            lines.append(0x0A)
        }
        // Where the request file is (for the driver), and where the answers come back.
        var files: [(name: String, data: Data)] = [("labelforge_ray_driver.py", driver)]
        let requestsArgument: String
        let output: String
        var storage: [String] = []
        switch options.exchange {
        case .directory(let directory):
            files.append(("requests.jsonl", lines))
            requestsArgument = "requests.jsonl"
            output = directory + "/" + submission
        case .bucket(let bucket):
            try await bucket.put(submission + "/requests.jsonl", lines)
            requestsArgument = bucket.url(submission + "/requests.jsonl")
            output = bucket.url(submission)
            storage = ["--s3-endpoint", bucket.endpoint, "--s3-region", bucket.region]
        }
        let archive = StoredZip.archive(files)
        let package = "_ray_pkg_\(ContentHash.hex(archive).prefix(16)).zip"
        let exists = try await call(.GET, "/api/packages/gcs/\(package)")
        if exists.status == 404 {
            let upload = try await call(.PUT, "/api/packages/gcs/\(package)", body: archive)
            guard upload.status == 200 else { throw failure("upload the job's working directory", upload) }
        } else if exists.status != 200 {
            throw failure("look up the job's working directory", exists)
        }
        var entrypoint =
            [
                options.python, "labelforge_ray_driver.py", "--requests", requestsArgument, "--output", output,
                "--batch-size", String(options.batchSize), "--concurrency", String(options.concurrency),
            ] + options.processor.arguments + storage
        if options.preserveOrder { entrypoint.append("--preserve-order") }
        var runtimeEnvironment: [String: JSONValue] = ["working_dir": .string("gcs://\(package)")]
        if case .vllm(_, _, let variables) = options.processor, !variables.isEmpty {
            runtimeEnvironment["env_vars"] = .object(variables.mapValues(JSONValue.string))
        }
        let job: JSONValue = [
            "entrypoint": .string(entrypoint.map(VLLMLaunch.quoted).joined(separator: " ")),
            "submission_id": .string(submission),
            "runtime_env": .object(runtimeEnvironment),
            "metadata": ["labelforge_requests": .string(String(requests.count))],
        ]
        let submitted = try await call(.POST, "/api/jobs/", body: CanonicalJSON.data(job))
        guard submitted.status == 200 else { throw failure("submit a job", submitted) }
        sent.add(requests.count, ordering: .relaxed)
        logger.info("ray job \(submission): \(requests.count) request(s)")
        let status = try await waitForJob(submission)
        guard status.state == "SUCCEEDED" else {
            let logs = try? await call(.GET, "/api/jobs/\(submission)/logs")
            let tail =
                logs.flatMap { try? JSONValue.parse($0.body)["logs"]?.stringValue }.map {
                    String($0.suffix(800))
                } ?? ""
            throw LabelForgeError(
                .engineFailed,
                "Ray job \(submission) at \(options.address) ended \(status.state)"
                    + (status.message.isEmpty ? "" : ": \(status.message)")
                    + (tail.isEmpty ? "" : "\nlast log lines:\n\(tail)"))
        }
        let text = try await results(of: submission, in: output)
        var answers: [Int: JSONValue] = [:]
        for line in text.split(separator: "\n") {
            let value = try JSONValue.parse(String(line))
            if let id = value["id"]?.intValue, let response = value["response"] { answers[id] = response }
        }
        let latency = ContinuousClock.now - started
        return requests.indices.map { index in
            guard let answer = answers[index] else {
                return .failure(
                    LabelForgeError(.invalidResponse, "Ray job \(submission) wrote no answer for request \(index)."))
            }
            // The HTTP processor hands back the body of any non-retryable status: vLLM's errors are
            // `{"object": "error", "message": …}` or `{"error": {…}}`.
            if answer["object"] == "error" || answer["error"] != nil {
                let message =
                    answer["message"]?.stringValue ?? answer["error"]?["message"]?.stringValue ?? answer.textForm
                return .failure(
                    LabelForgeError(
                        .engineHTTP, "\(options.processor.target) (through Ray job \(submission)): \(message)"))
            }
            return .success(EngineReply(body: answer, attempts: 1, latency: latency))
        }
    }

    /// The job's `results.jsonl`.
    private func results(of submission: String, in output: String) async throws -> String {
        switch options.exchange {
        case .directory:
            let path = output + "/results.jsonl"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw LabelForgeError(
                    .engineFailed,
                    "Ray job \(submission) succeeded but \(path) is not readable here: output_dir must be a directory "
                        + "both the cluster and this machine see (a shared filesystem).")
            }
            return text
        case .bucket(let bucket):
            guard let data = try await bucket.get(submission + "/results.jsonl") else {
                throw LabelForgeError(
                    .engineFailed, "Ray job \(submission) succeeded but wrote no \(output)/results.jsonl.")
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Removes a job's files once its answers are in (or it failed).
    private static func cleanUp(_ exchange: RayJobExchange, _ submission: String) async {
        switch exchange {
        case .directory(let directory): try? FileManager.default.removeItem(atPath: directory + "/" + submission)
        case .bucket(let bucket):
            await bucket.delete(submission + "/requests.jsonl")
            await bucket.delete(submission + "/results.jsonl")
        }
    }

    /// Polls a job until it ends; stops it when the run is cancelled or the job runs too long.
    private func waitForJob(_ submission: String) async throws -> (state: String, message: String) {
        let deadline = ContinuousClock.now + options.jobTimeout
        while true {
            do {
                try await Task.sleep(for: .milliseconds(500))
            } catch {
                // From a task of its own: this one is cancelled, and the HTTP client would drop
                // a request made from it before sending.
                await Task { _ = try? await self.call(.POST, "/api/jobs/\(submission)/stop") }.value
                logger.info("ray job \(submission) stopped: the run was interrupted")
                throw CancellationError()
            }
            let reply = try await call(.GET, "/api/jobs/\(submission)")
            guard reply.status == 200, let status = try? JSONValue.parse(reply.body) else {
                throw failure("read job \(submission)", reply)
            }
            let state = status["status"]?.stringValue ?? "UNKNOWN"
            if ["SUCCEEDED", "FAILED", "STOPPED"].contains(state) {
                return (state, status["message"]?.stringValue ?? "")
            }
            if ContinuousClock.now > deadline {
                _ = try? await call(.POST, "/api/jobs/\(submission)/stop")
                return ("STOPPED", "it ran longer than \(options.jobTimeout)")
            }
        }
    }

    /// The dashboard answers (with the token, if any); the engine behind it is the cluster's to reach.
    public func checkReachable() async throws { _ = try await version() }

    /// What the job runs with: the processor (HTTP to an engine, or vLLM in the job with its
    /// settings), where the job files go, and the cluster's Ray version.
    public func selfReport(dialect: EngineDialect) async -> JSONValue {
        var info: [String: JSONValue] = [
            "dialect": .string(dialect.name), "engine_url": .string(options.processor.target),
        ]
        switch options.processor {
        case .http: info["processor"] = "http"
        case .vllm(_, let kwargs, let environment):
            info["processor"] = "vllm"
            info["engine_kwargs"] = kwargs
            info["env_vars"] = .object(environment.mapValues(JSONValue.string))
        }
        if case .bucket(let bucket) = options.exchange { info["job_files"] = .string(bucket.url("")) }
        if let version = try? await version() {
            info["ray_version"] = version["ray_version"] ?? .null
            info["ray_commit"] = version["ray_commit"] ?? .null
        }
        return .object(info)
    }

    /// The cluster's version (`GET /api/version`), for the manifest.
    public func version() async throws -> JSONValue {
        let reply = try await call(.GET, "/api/version")
        guard reply.status == 200 else { throw failure("read the version", reply) }
        return try JSONValue.parse(reply.body)
    }

    struct Reply {
        var status: Int
        var body: Data
    }

    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: options.address + path)
        request.method = method
        if let token = options.authToken { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(
                name: "Content-Type", value: path.hasSuffix(".zip") ? "application/zip" : "application/json")
        }
        do {
            let response = try await Self.http.execute(request, timeout: .seconds(60))
            let bytes = try await response.body.collect(upTo: 64 << 20)
            return Reply(status: Int(response.status.code), body: Data(bytes.readableBytesView))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw LabelForgeError(
                .engineUnavailable,
                "The Ray dashboard at \(options.address) did not answer \(method.rawValue) \(path) (\(error)). Check "
                    + "engines[].address (the dashboard's Jobs API, port 8265 by default) and that the cluster is up.")
        }
    }

    private func failure(_ what: String, _ reply: Reply) -> LabelForgeError {
        if reply.status == 401 || reply.status == 403 {
            return LabelForgeError(
                .engineHTTP,
                "The Ray dashboard at \(options.address) refused to \(what) (HTTP \(reply.status)): the cluster uses token "
                    + "authentication and "
                    + (options.authToken == nil
                        ? "no token was found. Set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, or put it in ~/.ray/auth_token."
                        : "the token found (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) is not its token.")
            )
        }
        return LabelForgeError(
            .engineHTTP,
            "The Ray dashboard at \(options.address) could not \(what): HTTP \(reply.status) "
                + String(String(decoding: reply.body, as: UTF8.self).prefix(400)))
    }

}

/// A zip archive of stored (uncompressed) files: what Ray's working directories need, without a
/// zip library.
enum StoredZip {
    static func archive(_ files: [(name: String, data: Data)]) -> Data {
        /// Little-endian fields, each a value and its width in bytes.
        func put(_ fields: [(UInt32, Int)], _ data: inout Data) {
            for (value, width) in fields {
                for byte in 0..<width { data.append(UInt8(truncatingIfNeeded: value >> (8 * byte))) }
            }
        }
        var out = Data()
        var central = Data()
        for (name, data) in files {
            let offset = UInt32(out.count)
            let nameBytes = Data(name.utf8)
            let size = UInt32(data.count)
            // Shared by both headers: no flags, stored, a fixed DOS time (1980-01-01), CRC, sizes,
            // the name's length and no extra field.
            let shared: [(UInt32, Int)] = [
                (0, 2), (0, 2), (0, 2), (0x21, 2), (crc32(data), 4), (size, 4), (size, 4),
                (UInt32(nameBytes.count), 2), (0, 2),
            ]
            // Local file header (version 2.0 needed), then the file.
            put([(0x0403_4b50, 4), (20, 2)] + shared, &out)
            out.append(nameBytes)
            out.append(data)
            // Central directory entry: made by 2.0, no comment, disk 0, no internal attributes,
            // a regular file's mode, the local header's offset.
            put(
                [(0x0201_4b50, 4), (20, 2), (20, 2)] + shared + [
                    (0, 2), (0, 2), (0, 2), (0o100644 << 16, 4), (offset, 4),
                ], &central)
            central.append(nameBytes)
        }
        let centralOffset = UInt32(out.count)
        out.append(central)
        // End of central directory.
        let count = UInt32(files.count)
        put(
            [
                (0x0605_4b50, 4), (0, 2), (0, 2), (count, 2), (count, 2), (UInt32(central.count), 4),
                (centralOffset, 4), (0, 2),
            ], &out)
        return out
    }

    /// CRC-32 (IEEE 802.3), as zip wants it.
    static func crc32(_ data: Data) -> UInt32 {
        var table = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[i] = c
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
