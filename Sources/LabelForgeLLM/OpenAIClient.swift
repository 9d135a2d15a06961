import AsyncHTTPClient
import Foundation
import LabelForgeCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Where and how to reach one engine over HTTP.
public struct EndpointOptions: Sendable {
    /// One or more base URLs (`http://host:port`); several are data-parallel replicas.
    public var baseURLs: [String]
    /// Sent as `Authorization: Bearer …`; never logged or written to a run file.
    public var apiKey: String?
    public var requestTimeout: Duration
    public var maxRetries: Int
    public var maxInFlight: Int
    /// The first retry waits about this long; each further one twice as long, with full jitter.
    public var retryBaseDelay: Duration
    /// The most requests one replica has in flight; `nil`: only `maxInFlight` bounds them.
    public var maxInFlightPerReplica: Int?

    public init(
        baseURLs: [String], apiKey: String? = nil, requestTimeout: Duration = .seconds(120), maxRetries: Int = 3,
        maxInFlight: Int = 4, retryBaseDelay: Duration = .milliseconds(500), maxInFlightPerReplica: Int? = nil
    ) {
        self.maxInFlightPerReplica = maxInFlightPerReplica
        self.baseURLs = baseURLs
        self.apiKey = apiKey
        self.requestTimeout = requestTimeout
        self.maxRetries = maxRetries
        self.maxInFlight = maxInFlight
        self.retryBaseDelay = retryBaseDelay
    }
}

/// The result of one HTTP exchange, retries included.
public struct EngineReply: Sendable {
    public var body: JSONValue
    public var attempts: Int
    public var latency: Duration
    /// The replica that answered, when the engine has several (never part of a cache key).
    public var replica: String? = nil

    public init(body: JSONValue, attempts: Int = 1, latency: Duration = .zero, replica: String? = nil) {
        self.replica = replica
        self.body = body
        self.attempts = attempts
        self.latency = latency
    }
}

/// An HTTP client for OpenAI-compatible servers (vLLM, llama.cpp, SGLang, …).
///
/// Bounds in-flight requests, spreads them over replicas (least outstanding requests first, each
/// replica up to its own limit), and retries 429, 5xx, timeouts and connection errors with
/// exponential backoff and jitter. Other errors are final. A replica that refuses connections is
/// taken out of rotation and probed (`GET /health`) after 1 s, 2 s, 4 s, … (at most 30 s) until it
/// answers, then takes traffic again.
public final class OpenAIClient: Sendable {
    public let options: EndpointOptions
    private let http: HTTPClient
    private let limiter: ConcurrencyLimiter
    private let replicas: Mutex<[ReplicaState]>
    private let sent = Atomic<Int>(0)
    private let logger: Logger

    struct ReplicaState {
        var baseURL: String
        var inFlight = 0
        /// When an out-of-rotation replica is probed next; `nil` while it is healthy.
        var probeAt: ContinuousClock.Instant? = nil
        /// Failures in a row, for the probe backoff.
        var failures = 0
        var probing = false
    }

    public init(options: EndpointOptions, logger: Logger) {
        self.options = options
        var configuration = HTTPClient.Configuration()
        // A dead engine should fail fast into our own retry policy, not wait out the request timeout.
        configuration.timeout.connect = .seconds(3)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, options.maxInFlight)
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.limiter = ConcurrencyLimiter(limit: options.maxInFlight)
        self.replicas = Mutex(options.baseURLs.map { ReplicaState(baseURL: Self.trimmed($0)) })
        self.logger = logger
    }

    /// Runs `body` with a new client and shuts the client down when `body` returns or throws.
    public static func withClient<T: Sendable>(
        options: EndpointOptions, logger: Logger, _ body: (OpenAIClient) async throws -> T
    ) async throws -> T {
        let client = OpenAIClient(options: options, logger: logger)
        do {
            let value = try await body(client)
            await client.shutdown()
            return value
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Closes connections. Call once, when the client is no longer used.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// How many HTTP requests this client has sent, retries included.
    public var requestsSent: Int { sent.load(ordering: .relaxed) }

    /// POSTs a JSON body to `path` on the least-loaded replica, with retries.
    /// - Throws: `LabelForgeError` with code `engineHTTP`, `engineUnavailable`, `timeout` or
    ///   `invalidResponse` after the last attempt.
    public func post(path: String, body: JSONValue) async throws -> EngineReply {
        try await limiter.withSlot {
            try await self.withRetries { baseURL in
                try await self.send(method: .POST, url: baseURL + path, body: CanonicalJSON.wire(body))
            }
        }
    }

    /// GETs a JSON document from every replica's `path` and returns the first replica's.
    public func get(path: String, timeout: Duration = .seconds(10)) async throws -> JSONValue {
        let baseURL = replicas.withLock { $0[0].baseURL }
        do {
            return try await send(method: .GET, url: baseURL + path, body: nil, timeout: timeout)
        } catch let failure as RequestFailure {
            throw failure.error(attempts: 1)
        }
    }

    /// Checks that every replica answers; returns the first failure as a readable error.
    public func checkReachable(path: String = "/v1/models") async throws {
        for baseURL in replicas.withLock({ $0.map(\.baseURL) }) {
            do {
                _ = try await send(method: .GET, url: baseURL + path, body: nil, timeout: .seconds(10))
            } catch let failure as RequestFailure {
                throw failure.error(attempts: 1)
            }
        }
    }

    private func withRetries(_ attempt: @Sendable (String) async throws -> JSONValue) async throws -> EngineReply {
        let start = ContinuousClock.now
        var attempts = 0
        while true {
            attempts += 1
            await probeDueReplicas()
            let index = try await pickReplica()
            let (baseURL, several) = replicas.withLock { ($0[index].baseURL, $0.count > 1) }
            do {
                defer { replicas.withLock { $0[index].inFlight -= 1 } }
                let body = try await attempt(baseURL)
                return EngineReply(
                    body: body, attempts: attempts, latency: ContinuousClock.now - start,
                    replica: several ? baseURL : nil)
            } catch let failure as RequestFailure {
                if failure.isConnectionError { markFailed(index) }
                guard failure.isRetryable, attempts <= options.maxRetries else {
                    throw failure.error(attempts: attempts)
                }
                let delay = backoff(attempt: attempts, retryAfter: failure.retryAfter)
                logger.debug("retrying after \(delay): \(failure.error(attempts: attempts))")
                try await Task.sleep(for: delay)
            }
        }
    }

    /// The healthy replica with the fewest requests outstanding and room under its own limit,
    /// waiting while every healthy one is full. With none healthy, the one probed soonest (so a
    /// request still gets its retries, against the replica most likely back first).
    private func pickReplica() async throws -> Int {
        while true {
            let chosen: Int? = replicas.withLock { states in
                let limit = options.maxInFlightPerReplica ?? Int.max
                let healthy = states.indices.filter { states[$0].probeAt == nil }
                let candidates =
                    healthy.isEmpty
                    ? [states.indices.min { states[$0].probeAt! < states[$1].probeAt! }!]
                    : healthy.filter { states[$0].inFlight < limit }
                guard let chosen = candidates.min(by: { states[$0].inFlight < states[$1].inFlight }) else { return nil }
                states[chosen].inFlight += 1
                return chosen
            }
            if let chosen { return chosen }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Takes a replica out of rotation until a probe finds it healthy. Only the first failure
    /// counts: the other requests it had in flight fail with it, and must not lengthen the wait.
    private func markFailed(_ index: Int) {
        replicas.withLock { states in
            guard states[index].probeAt == nil else { return }
            states[index].failures += 1
            states[index].probeAt = .now + Self.probeDelay(failures: states[index].failures)
        }
    }

    static func probeDelay(failures: Int) -> Duration { .seconds(min(30, 1 << min(failures - 1, 5))) }

    /// Probes (`GET /health`) the out-of-rotation replicas whose time has come; one that answers
    /// 200 takes traffic again, one that does not waits twice as long for its next probe.
    private func probeDueReplicas() async {
        let due: [(Int, String)] = replicas.withLock { states in
            let now = ContinuousClock.now
            var due: [(Int, String)] = []
            for index in states.indices {
                guard let at = states[index].probeAt, at <= now, !states[index].probing else { continue }
                states[index].probing = true
                due.append((index, states[index].baseURL))
            }
            return due
        }
        for (index, baseURL) in due {
            let healthy = await isHealthy(baseURL)
            replicas.withLock { states in
                states[index].probing = false
                if healthy {
                    states[index].probeAt = nil
                    states[index].failures = 0
                } else {
                    states[index].failures += 1
                    states[index].probeAt = .now + Self.probeDelay(failures: states[index].failures)
                }
            }
            if healthy { logger.info("replica \(baseURL) is healthy again") }
        }
    }

    private func backoff(attempt: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return retryAfter }
        let ceiling = options.retryBaseDelay * Int(1 << min(attempt - 1, 6))
        let ms = ceiling.components.seconds * 1000 + ceiling.components.attoseconds / 1_000_000_000_000_000
        return .milliseconds(Int64.random(in: (ms / 2)...max(ms / 2, ms)))
    }

    /// Whether `GET /health` gets an answer within 2 s that is not a 5xx (vLLM answers 200 with an
    /// empty body; a server without the route answers 404, which still says it is back).
    private func isHealthy(_ baseURL: String) async -> Bool {
        var request = HTTPClientRequest(url: baseURL + "/health")
        if let apiKey = options.apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        guard let response = try? await http.execute(request, timeout: .seconds(2)) else { return false }
        _ = try? await response.body.collect(upTo: 1 << 20)
        return response.status.code < 500
    }

    private func send(method: HTTPMethod, url: String, body: Data?, timeout: Duration? = nil) async throws -> JSONValue
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let apiKey = options.apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            sent.add(1, ordering: .relaxed)
        }
        let limit = timeout ?? options.requestTimeout
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .milliseconds(Int64(limit / .milliseconds(1))))
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw RequestFailure(url: url, status: nil, detail: Self.describe(error), timeout: limit, underlying: error)
        }
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
            throw RequestFailure(
                url: url, status: Int(response.status.code),
                detail: Redaction.redact(Self.errorMessage(in: data), secrets: options.apiKey.map { [$0] } ?? []),
                timeout: limit,
                retryAfter: retryAfter)
        }
        do {
            return try JSONValue.parse(data)
        } catch {
            // A body cut short or garbled on the way (a proxy, a dying server): worth another try.
            throw RequestFailure(
                url: url, status: Int(response.status.code),
                detail: "a body that is not JSON (\((error as? LabelForgeError)?.message ?? "\(error)"))",
                timeout: limit,
                malformed: true)
        }
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        if url.hasSuffix("/v1") { url.removeLast(3) }
        return url
    }

    private static func errorMessage(in data: Data) -> String {
        if let json = try? JSONValue.parse(data) {
            if let message = json["error"]?["message"]?.stringValue ?? json["message"]?.stringValue
                ?? json["detail"]?.stringValue ?? json["error"]?.stringValue
            {
                return message
            }
        }
        return String(decoding: data.prefix(300), as: UTF8.self)
    }

    private static func describe(_ error: Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .readTimeout, .deadlineExceeded: return "request timed out"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return String(describing: error)
            }
        }
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") || text.contains("ECONNREFUSED") {
            return "connection refused"
        }
        return text
    }
}

/// One failed HTTP attempt, classified for the retry policy.
struct RequestFailure: Error {
    var url: String
    var status: Int?
    var detail: String
    var timeout: Duration
    var retryAfter: Duration? = nil
    var underlying: Error? = nil
    /// A 2xx answer whose body is not JSON (truncated, or not UTF-8).
    var malformed = false

    var isConnectionError: Bool { status == nil && !isTimeout }
    var isTimeout: Bool { detail.contains("timed out") }
    var isRetryable: Bool {
        guard let status, !malformed else { return true }
        return status == 429 || status == 408 || status >= 500
    }

    func error(attempts: Int) -> LabelForgeError {
        let tries = attempts == 1 ? "" : " (after \(attempts) attempts)"
        if malformed {
            return LabelForgeError(.invalidResponse, "\(url) answered with \(detail)\(tries).")
        }
        if let status {
            // vLLM refuses `top_logprobs` above its `--max-logprobs` (default 20) with a 400.
            let hint =
                status == 400 && detail.lowercased().contains("logprobs")
                ? " Lower the stage's sampling.top_logprobs, or start vLLM with a higher --max-logprobs." : ""
            return LabelForgeError(
                .engineHTTP, "\(url) answered HTTP \(status)\(tries): \(detail)\(hint)", httpStatus: status)
        }
        if isTimeout {
            return LabelForgeError(.timeout, "\(url): \(detail) after \(timeout)\(tries).")
        }
        return LabelForgeError(
            .engineUnavailable, "Cannot reach the engine at \(url): \(detail)\(tries). Is the server running?")
    }
}
