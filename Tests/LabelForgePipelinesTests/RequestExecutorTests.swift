import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Logging
import Synchronization
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// The executor with an in-memory cache and transport: no HTTP, no SQLite.
@Suite struct RequestExecutorTests {
    static func endpoint(_ transport: InMemoryTransport, info: JSONValue = ["version": "1"]) -> EngineEndpoint {
        EngineEndpoint(
            name: "memory", dialect: .vllm, modelID: "m", modelRevision: "r1", transport: transport, info: info)
    }

    static func chat(_ text: String, seed: UInt32 = 1) -> EngineRequest {
        EngineRequest(
            kind: .chat,
            body: EngineDialect.vllm.body(
                for: ChatRequest(
                    messages: [ChatMessage(role: "user", text: text)], sampling: SamplingParams(seed: seed)),
                modelID: "m"))
    }

    static func executor(_ cache: any CacheStore = InMemoryCache(), readCache: Bool = true, offline: Bool = false)
        -> RequestExecutor
    {
        RequestExecutor(
            cache: cache, readCache: readCache, offline: offline, matchEngineVersion: false, logger: Logger(label: "t"))
    }

    @Test("8 callers asking the same key at the same moment send one request and share its answer")
    func singleFlight() async throws {
        let transport = InMemoryTransport(gated: true)
        let executor = Self.executor()
        let engine = Self.endpoint(transport)
        let request = Self.chat("same prompt")
        let key = PreparedRequest(request, on: engine).key
        let answers = try await withThrowingTaskGroup(of: ExecutedRequest.self) { group in
            for _ in 0..<8 { group.addTask { try await executor.execute(request, on: engine) } }
            // Hold the one request until the other seven have joined its flight.
            while executor.waiters(for: key) < 7 { try await Task.sleep(for: .milliseconds(5)) }
            transport.open()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(transport.requestsSent == 1)
        #expect(answers.filter { $0.source == .engine }.count == 1)
        #expect(answers.filter { $0.source == .shared }.count == 7)
        #expect(Set(answers.map(\.response)).count == 1)
        #expect(Set(answers.map(\.key)) == [key])
    }

    /// A cache whose second lookup reads at once but answers only when released: a caller that
    /// missed the cache just before a flight landed.
    final class StallingCache: CacheStore {
        let inner = InMemoryCache()
        let state = Mutex((lookups: 0, stalled: false, released: false))

        func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
            let found = try await inner.entries(for: keys)
            let stall = state.withLock { state in
                state.lookups += 1
                if state.lookups == 2 { state.stalled = true }
                return state.lookups == 2
            }
            while stall && !state.withLock({ $0.released }) { try await Task.sleep(for: .milliseconds(5)) }
            return found
        }

        func store(_ entries: [CacheEntry]) async throws { try await inner.store(entries) }
        func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> { try await inner.existing(keys) }
        func stats() async throws -> CacheStats { try await inner.stats() }
    }

    @Test(
        "a caller whose cache lookup missed just before a flight landed reads the cache again instead of sending twice")
    func lookupRacingALanding() async throws {
        let transport = InMemoryTransport(gated: true)
        let cache = StallingCache()
        let executor = Self.executor(cache)
        let engine = Self.endpoint(transport)
        let request = Self.chat("one prompt")
        let leader = Task { try await executor.execute(request, on: engine) }
        while transport.requestsSent < 1 { try await Task.sleep(for: .milliseconds(5)) }
        let late = Task { try await executor.execute(request, on: engine) }
        // The late caller has read the cache (a miss) and waits to return it; the flight lands.
        while !cache.state.withLock({ $0.stalled }) { try await Task.sleep(for: .milliseconds(5)) }
        transport.open()
        let first = try await leader.value
        cache.state.withLock { $0.released = true }
        let second = try await late.value
        #expect(transport.requestsSent == 1)
        #expect(first.source == .engine && second.source == .cache)
        #expect(second.response == first.response)
    }

    @Test("a stored answer is served from the cache on the next call; different requests do not share")
    func cacheThenDistinct() async throws {
        let transport = InMemoryTransport()
        let cache = InMemoryCache()
        let executor = Self.executor(cache)
        let engine = Self.endpoint(transport)
        let first = try await executor.execute(Self.chat("a"), on: engine)
        let again = try await executor.execute(Self.chat("a"), on: engine)
        let other = try await executor.execute(Self.chat("a", seed: 2), on: engine)
        #expect(first.source == .engine)
        #expect(again.source == .cache)
        #expect(again.response == first.response)
        #expect(other.source == .engine)
        #expect(transport.requestsSent == 2)
        #expect(try await cache.stats().entries == 2)
    }

    @Test("offline execution of a missing key is a cache_miss error and sends nothing")
    func offlineMiss() async throws {
        let transport = InMemoryTransport()
        let executor = Self.executor(offline: true)
        await #expect(throws: LabelForgeError.self) {
            _ = try await executor.execute(Self.chat("never cached"), on: Self.endpoint(transport))
        }
        #expect(transport.requestsSent == 0)
    }

    @Test("an engine error reaches every caller of the flight, and nothing is cached")
    func errorsShared() async throws {
        let transport = InMemoryTransport { _ in throw LabelForgeError(.engineHTTP, "HTTP 500") }
        let cache = InMemoryCache()
        let executor = Self.executor(cache)
        await #expect(throws: LabelForgeError.self) {
            _ = try await executor.execute(Self.chat("x"), on: Self.endpoint(transport))
        }
        #expect(try await cache.stats().entries == 0)
    }

    @Test("embeddings are typed end to end: the cache keeps vectors as little-endian float32")
    func embeddingsPayload() async throws {
        let transport = InMemoryTransport()
        let cache = InMemoryCache()
        let executor = Self.executor(cache)
        let engine = Self.endpoint(transport)
        let request = EngineRequest(
            kind: .embeddings, body: EmbeddingsRequest(input: ["abc", "hello"]).body(modelID: "m"))
        let sent = try await executor.execute(request, on: engine)
        let cached = try await executor.execute(request, on: engine)
        #expect(cached.source == .cache)
        let payload = try #require(cached.payload)
        #expect(payload.count == 2 * 3 * 4)
        #expect(sent.payload == payload)
        let vectors = try EmbeddingsResponse(json: cached.response, payload: payload).vectors
        #expect(vectors == [[3, 1, -0.5], [5, 1, -0.5]])
        let entry = try #require(try await cache.lookup(cached.key))
        #expect(entry.kind == "embeddings")
        // The chat key of the same body under another kind is another key.
        let asChat = PreparedRequest(EngineRequest(kind: .chat, body: request.body), on: engine).key
        #expect(asChat != cached.key)
    }

    @Test("rerank responses map scores back to documents by index")
    func rerank() async throws {
        let transport = InMemoryTransport()
        let executor = Self.executor()
        let request = RerankRequest(query: "q", documents: ["long document", "short"])
        let answer = try await executor.execute(
            EngineRequest(kind: .rerank, body: request.body(modelID: "m")), on: Self.endpoint(transport))
        let scores = try RerankResponse(raw: answer.response, documents: 2).scores
        #expect(scores[1] > scores[0])
        #expect(transport.requests.first?.kind.path == "/v1/rerank")
    }
}
