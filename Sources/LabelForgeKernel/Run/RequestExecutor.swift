import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import Logging
import Synchronization

/// One engine as the executor sees it: how to key its requests and how to reach it.
package struct EngineEndpoint: Sendable {
    package var name: String
    package var dialect: EngineDialect
    package var modelID: String
    package var modelRevision: String
    package var transport: any EngineTransport
    /// What the engine reported about itself; stored with every entry it answers.
    package var info: JSONValue
    /// The longest input its model takes, in tokens, where known (`EngineHandle.maxInputTokens`).
    package var maxInputTokens: Int? = nil
}

/// A request with its cache key, computed once: the key material hashes the whole body.
package struct PreparedRequest: Sendable {
    package var request: EngineRequest
    /// The canonical document whose hash is `key` (see `CacheKey.material`).
    package var material: JSONValue
    package var key: CacheKey

    package init(_ request: EngineRequest, on engine: EngineEndpoint) {
        self.request = request
        material = CacheKey.material(
            kind: request.kind.name, dialect: engine.dialect.name, modelID: engine.modelID,
            modelRevision: engine.modelRevision, body: request.body)
        key = CacheKey(hex: ContentHash.hex(material))
    }
}

/// A request's answer and where it came from.
package struct ExecutedRequest: Sendable {
    package enum Source: Sendable {
        /// A verified cache entry.
        case cache
        /// This call sent the request.
        case engine
        /// Another caller was already sending the same request; this one shared its answer.
        case shared
    }

    package var key: CacheKey
    package var response: JSONValue
    /// The binary part of the answer (embeddings' vectors), as the cache keeps it.
    package var payload: Data?
    package var source: Source
    /// HTTP attempts this call made (0 unless `source` is `.engine`).
    package var attempts: Int
    /// The replica that answered (engines with several `base_urls`; `.engine` calls only).
    package var replica: String? = nil

    /// Whether no engine request was made for this call.
    package var servedWithoutRequest: Bool { source != .engine }
}

/// Requests sent to an engine and the tokens their answers report.
public struct TokenUsage: Sendable, Equatable {
    public var requests = 0
    public var input = 0
    public var output = 0

    public init() {}

    mutating func add(input: Int, output: Int) {
        requests += 1
        self.input += input
        self.output += output
    }
}

/// What an engine with `pricing` cost a run: its usage, in US dollars.
public struct EngineCost: Sendable {
    public var engine: String
    public var usage: TokenUsage
    public var usd: Double
}

/// The one path every engine call takes: verified cache lookup → single flight per cache key →
/// transport → cache store.
///
/// Two callers asking for the same key at the same moment send one request: the first sends it,
/// the others wait for its answer. Nothing here knows about stages or rows.
package final class RequestExecutor: Sendable {
    package let cache: any CacheStore
    /// Whether cache entries are read (`--no-cache` and `--recompute` skip reads, not writes).
    package let readCache: Bool
    /// Replay from cache only: a miss is an error, never an engine call.
    package let offline: Bool
    /// Serve an entry only when the engine that answered it reported the same version.
    package let matchEngineVersion: Bool
    private let logger: Logger
    private let flights = Mutex(Flights())
    private let usage = Mutex<[String: TokenUsage]>([:])

    /// What each engine (by name) was sent: requests, and the tokens their answers report. Cache
    /// hits and shared flights cost nothing and are not in it.
    package var spent: [String: TokenUsage] { usage.withLock { $0 } }

    /// Requests in flight, with who waits for each; and how many flights have landed, per bucket of
    /// keys, so a caller whose cache lookup raced a landing looks again instead of sending twice.
    private struct Flights {
        static let buckets = 1024
        var waiting: [CacheKey: [CheckedContinuation<ExecutedRequest, any Error>]] = [:]
        var landings = [UInt64](repeating: 0, count: buckets)

        static func bucket(_ key: CacheKey) -> Int { Int(UInt(bitPattern: key.hashValue) % UInt(buckets)) }
    }

    private enum Role { case leader, follower, lookAgain }

    package init(cache: any CacheStore, readCache: Bool, offline: Bool, matchEngineVersion: Bool, logger: Logger) {
        self.cache = cache
        self.readCache = readCache
        self.offline = offline
        self.matchEngineVersion = matchEngineVersion
        self.logger = logger
    }

    /// Answers a request from the cache, a request already in flight, or the engine.
    /// - Throws: `LabelForgeError` with code `cacheMiss` when offline and the cache lacks it; the
    ///   transport's errors; `CancellationError`.
    package func execute(_ request: EngineRequest, on engine: EngineEndpoint) async throws -> ExecutedRequest {
        try await execute(PreparedRequest(request, on: engine), on: engine)
    }

    /// Answers a prepared request; see `execute(_:on:)`.
    package func execute(_ prepared: PreparedRequest, on engine: EngineEndpoint) async throws -> ExecutedRequest {
        let key = prepared.key
        let bucket = Flights.bucket(key)
        while true {
            // A flight that lands after this lookup missed and before the check below would
            // otherwise leave its answer unseen, and the request would go to the engine again
            // (a second answer, which for embeddings may differ in the last bits).
            let landings = flights.withLock { $0.landings[bucket] }
            if readCache, let entry = try await cache.lookup(key), accepts(entry, from: engine) {
                return ExecutedRequest(
                    key: key, response: entry.response, payload: entry.payload, source: .cache, attempts: 0)
            }
            if offline {
                throw LabelForgeError(
                    .cacheMiss, "no cached response for \(key); replay without --allow-engine reads the cache only")
            }
            let role = flights.withLock { flights -> Role in
                if flights.waiting[key] != nil { return .follower }
                if readCache && flights.landings[bucket] != landings { return .lookAgain }
                flights.waiting[key] = []
                return .leader
            }
            if role == .leader { break }
            if role == .lookAgain { continue }
            do {
                var answer = try await withCheckedThrowingContinuation { continuation in
                    let joined = flights.withLock { flights in
                        guard flights.waiting[key] != nil else { return false }
                        flights.waiting[key]!.append(continuation)
                        return true
                    }
                    if !joined { continuation.resume(throwing: FlightLanded()) }
                }
                answer.source = .shared
                answer.attempts = 0
                return answer
            } catch is FlightLanded {
                // The flight landed between the two locks: its answer is in the cache now.
                continue
            }
        }
        let result: Result<ExecutedRequest, any Error>
        do {
            result = .success(try await send(prepared, to: engine))
        } catch {
            result = .failure(error)
        }
        let waiters = flights.withLock { flights in
            flights.landings[bucket] &+= 1
            return flights.waiting.removeValue(forKey: key) ?? []
        }
        for waiter in waiters { waiter.resume(with: result) }
        return try result.get()
    }

    /// Callers waiting on a flight for `key` right now (for tests of single flight).
    package func waiters(for key: CacheKey) -> Int {
        flights.withLock { $0.waiting[key]?.count ?? 0 }
    }

    private func send(_ prepared: PreparedRequest, to engine: EngineEndpoint) async throws -> ExecutedRequest {
        let request = prepared.request
        let reply = try await engine.transport.send(request)
        var response = reply.body
        var payload: Data?
        if request.kind == .embeddings {
            (response, payload) = try EmbeddingsResponse.split(reply.body)
        }
        let reported = response["usage"]
        usage.withLock {
            $0[engine.name, default: TokenUsage()].add(
                input: reported?["prompt_tokens"]?.intValue ?? 0, output: reported?["completion_tokens"]?.intValue ?? 0)
        }
        try await cache.store(
            CacheEntry(
                key: prepared.key, request: prepared.material, response: response, payload: payload,
                engineInfo: engine.info))
        return ExecutedRequest(
            key: prepared.key, response: response, payload: payload, source: .engine, attempts: reply.attempts,
            replica: reply.replica)
    }

    private func accepts(_ entry: CacheEntry, from engine: EngineEndpoint) -> Bool {
        guard matchEngineVersion else { return true }
        return !["build_info", "version"].contains { entry.engineInfo[$0] != engine.info[$0] }
    }

    private struct FlightLanded: Error {}
}

extension ExecutedRequest {
    /// The one vector of a single-text embeddings answer (fresh or from the cache's payload), its
    /// prompt tokens, and whether its text was cut to the model's window.
    package func singleVector() throws -> (vector: [Float], promptTokens: Int, truncated: Bool) {
        let answer =
            try payload.map { try EmbeddingsResponse(json: response, payload: $0) }
            ?? EmbeddingsResponse(raw: response)
        guard answer.vectors.count == 1, let vector = answer.vectors.first, !vector.isEmpty else {
            throw LabelForgeError(.invalidResponse, "expected one vector for one text, got \(answer.vectors.count)")
        }
        return (vector, answer.promptTokens, answer.truncatedCount > 0)
    }
}
