import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeTesting
import Synchronization
import Testing

/// A store that counts its reads and holds the first one until `release` says so, so concurrent
/// lookups pile up behind it whatever the machine's load.
final class SlowCountingStore: CacheStore {
    let base = InMemoryCache()
    let reads = Mutex<[Int]>([])
    let release: @Sendable () -> Bool

    init(release: @escaping @Sendable () -> Bool = { true }) { self.release = release }

    func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        let first = reads.withLock {
            $0.append(keys.count)
            return $0.count == 1
        }
        if first { try await Waiting.until(every: .milliseconds(1), release) }
        return try await base.entries(for: keys)
    }
    func store(_ entries: [CacheEntry]) async throws { try await base.store(entries) }
    func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> { try await base.existing(keys) }
    func stats() async throws -> CacheStats { try await base.stats() }
}

/// A value set after the closures that read it were made.
final class Later<Value: Sendable>: Sendable {
    private let stored = Mutex<Value?>(nil)
    var value: Value? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}

@Suite struct CoalescingCacheTests {
    static func entry(_ text: String) -> CacheEntry {
        let material = CacheKey.material(
            kind: "chat", dialect: "vllm", modelID: "m", modelRevision: "r", body: ["t": .string(text)])
        return CacheEntry(
            key: CacheKey(hex: ContentHash.hex(material)), request: material, response: .string(text), engineInfo: .null
        )
    }

    @Test("64 concurrent lookups are answered by a few batched reads, each caller getting its own entries")
    func coalesces() async throws {
        let cache = Later<CoalescingCache>()
        // The first read returns once the 63 other lookups wait behind it.
        let slow = SlowCountingStore { cache.value?.waiting == 63 }
        let stored = (0..<64).map { Self.entry("text \($0)") }
        try await slow.store(stored.filter { $0.response != "text 7" })
        let coalescing = CoalescingCache(slow)
        cache.value = coalescing
        let answers = try await withThrowingTaskGroup(of: (Int, CacheEntry?).self) { group in
            for (index, entry) in stored.enumerated() {
                group.addTask { (index, try await coalescing.lookup(entry.key)) }
            }
            return try await group.reduce(into: [Int: CacheEntry?]()) { $0[$1.0] = $1.1 }
        }
        for (index, entry) in stored.enumerated() {
            let answer = try #require(answers[index])
            if index == 7 {
                #expect(answer == nil, "lookup 7 is a miss")
            } else {
                #expect(answer?.response == entry.response, "lookup \(index)")
            }
        }
        let reads = slow.reads.withLock { $0 }
        // One read for the first lookup, one for the 63 that queued behind it.
        #expect(reads == [1, 63], "\(reads.count) reads for 64 lookups: \(reads)")
    }
}
