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

/// A run's budget, with the token prices of each engine (by name) it is counted at.
package struct SpendingCap: Sendable {
    package var budget: RunConfig.Budget
    package var prices: [String: RunConfig.Pricing]

    package init(budget: RunConfig.Budget, prices: [String: RunConfig.Pricing]) {
        self.budget = budget
        self.prices = prices
    }

    /// The most tokens a request can take: a token per byte of its texts (no tokenizer makes more),
    /// 2,000 per image, 8 per message; and its `max_completion_tokens` (or `max_tokens`, else 4,096
    /// for a chat request) times its `n`.
    package static func worstCase(_ request: EngineRequest) -> (input: Int, output: Int) {
        var input = 0
        func count(_ value: JSONValue, key: String) {
            switch value {
            case .string(let text): input += key == "url" || text.hasPrefix("data:") ? 2000 : text.utf8.count
            case .array(let items): for item in items { count(item, key: key) }
            case .object(let members): for (name, member) in members where name != "type" { count(member, key: name) }
            default: break
            }
        }
        let body = request.body
        for key in ["messages", "input", "query", "documents", "text_1", "text_2", "prompt"] {
            if let value = body[key] { count(value, key: key) }
        }
        input += (body["messages"]?.arrayValue?.count ?? 0) * 8
        let most =
            body["max_completion_tokens"]?.intValue ?? body["max_tokens"]?.intValue
            ?? (request.kind == .chat ? 4096 : 0)
        return (input, most * max(1, body["n"]?.intValue ?? 1))
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
    private let spending = Mutex(Spending())
    /// The budget and the engines' token prices, when the run has a budget.
    private let cap: SpendingCap?

    /// What each engine (by name) was sent: requests, and the tokens their answers report. Cache
    /// hits and shared flights cost nothing and are not in it.
    package var spent: [String: TokenUsage] { spending.withLock { $0.usage } }

    /// Why the run must stop, once a request could have crossed the budget; requests are refused
    /// from then on (`CancellationError`), and the run stops, resumable.
    package var budgetStop: String? { spending.withLock { $0.stop } }

    /// Usage so far, and the worst cases of the requests in flight.
    private struct Spending {
        var usage: [String: TokenUsage] = [:]
        var reservedUSD = 0.0
        var reservedTokens = 0
        /// Requests holding a reservation (an integer: the dollars' sum may keep a rounding residue).
        var inFlight = 0
        var stop: String?
        /// Requests waiting for requests in flight to finish before they fit (resumed with `.wait`:
        /// look again).
        var waiting: [CheckedContinuation<BudgetDecision, Never>] = []
    }

    private enum BudgetDecision { case reserved, stop, wait }

    /// Requests in flight, with who waits for each; and how many flights have landed, per bucket of
    /// keys, so a caller whose cache lookup raced a landing looks again instead of sending twice.
    private struct Flights {
        static let buckets = 1024
        var waiting: [CacheKey: [CheckedContinuation<ExecutedRequest, any Error>]] = [:]
        var landings = [UInt64](repeating: 0, count: buckets)

        static func bucket(_ key: CacheKey) -> Int { Int(UInt(bitPattern: key.hashValue) % UInt(buckets)) }
    }

    private enum Role { case leader, follower, lookAgain }

    package init(
        cache: any CacheStore, readCache: Bool, offline: Bool, matchEngineVersion: Bool, logger: Logger,
        cap: SpendingCap? = nil
    ) {
        self.cap = cap
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
            let reservation = try await reserve(prepared.request, on: engine.name)
            defer { release(reservation) }
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
        // A chat answer that reports no usage counts at its worst case: a budget never undercounts.
        let unreported = request.kind == .chat && reported?["prompt_tokens"]?.intValue == nil
        let worst = unreported ? SpendingCap.worstCase(request) : (0, 0)
        spending.withLock {
            $0.usage[engine.name, default: TokenUsage()].add(
                input: reported?["prompt_tokens"]?.intValue ?? worst.0,
                output: reported?["completion_tokens"]?.intValue ?? worst.1)
        }
        try await cache.store(
            CacheEntry(
                key: prepared.key, request: prepared.material, response: response, payload: payload,
                engineInfo: engine.info))
        return ExecutedRequest(
            key: prepared.key, response: response, payload: payload, source: .engine, attempts: reply.attempts,
            replica: reply.replica)
    }

    /// Holds `request`'s worst case against the budget while it is in flight. When it fits only once
    /// requests in flight have finished (their worst cases held, their real cost not yet known), it
    /// waits for them; when it would not fit even then, the run must stop.
    /// - Throws: `CancellationError` when it could cross the budget (`budgetStop` says why), or the
    ///   budget was reached before.
    private func reserve(_ request: EngineRequest, on engine: String) async throws -> (usd: Double, tokens: Int) {
        guard let cap else { return (0, 0) }
        let worst = SpendingCap.worstCase(request)
        let usd = cap.prices[engine]?.cost(input: worst.input, output: worst.output) ?? 0
        let tokens = worst.input + worst.output
        while true {
            let decision = await withCheckedContinuation { (continuation: CheckedContinuation<BudgetDecision, Never>) in
                let decision = spending.withLock { spending -> BudgetDecision in
                    if spending.stop != nil { return .stop }
                    let spentUSD = spending.usage.reduce(0.0) { total, entry in
                        total + (cap.prices[entry.key]?.cost(input: entry.value.input, output: entry.value.output) ?? 0)
                    }
                    let spentTokens = spending.usage.values.reduce(0) { $0 + $1.input + $1.output }
                    let overUSD = cap.budget.usd.map { spentUSD + spending.reservedUSD + usd > $0 } ?? false
                    let overTokens =
                        cap.budget.tokens.map { spentTokens + spending.reservedTokens + tokens > $0 } ?? false
                    if !overUSD && !overTokens {
                        spending.reservedUSD += usd
                        spending.reservedTokens += tokens
                        spending.inFlight += 1
                        return .reserved
                    }
                    // Requests in flight hold their worst case: once they finish, this one may fit.
                    if spending.inFlight > 0 {
                        spending.waiting.append(continuation)
                        return .wait
                    }
                    spending.stop =
                        overUSD
                        ? String(
                            format: "budget.usd $%.4f reached: $%.4f spent, and the next request to %@ could cost up "
                                + "to $%.4f", cap.budget.usd!, spentUSD, engine, usd)
                        : "budget.tokens \(cap.budget.tokens!) reached: \(spentTokens) spent, and the next request to "
                            + "\(engine) could take up to \(tokens)"
                    return .stop
                }
                if decision != .wait { continuation.resume(returning: decision) }
            }
            switch decision {
            case .reserved: return (usd, tokens)
            case .stop: throw CancellationError()
            case .wait: continue
            }
        }
    }

    /// Gives back a request's worst case; requests waiting for room try again.
    private func release(_ reservation: (usd: Double, tokens: Int)) {
        guard cap != nil else { return }
        let waiting = spending.withLock { spending in
            spending.reservedUSD -= reservation.usd
            spending.reservedTokens -= reservation.tokens
            spending.inFlight -= 1
            if spending.inFlight == 0 { spending.reservedUSD = 0 }
            defer { spending.waiting = [] }
            return spending.waiting
        }
        for waiter in waiting { waiter.resume(returning: .wait) }
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
