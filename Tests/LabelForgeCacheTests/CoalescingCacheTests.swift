import Foundation
import LabelForgeCache
import LabelForgeCore
import Synchronization
import Testing

/// A store that counts its reads and makes each one slow, so concurrent lookups pile up.
final class SlowCountingStore: CacheStore {
    let base = InMemoryCache()
    let reads = Mutex<[Int]>([])

    func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        reads.withLock { $0.append(keys.count) }
        try await Task.sleep(for: .milliseconds(50))
        return try await base.entries(for: keys)
    }
    func store(_ entries: [CacheEntry]) async throws { try await base.store(entries) }
    func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> { try await base.existing(keys) }
    func stats() async throws -> CacheStats { try await base.stats() }
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
        let slow = SlowCountingStore()
        let stored = (0..<64).map { Self.entry("text \($0)") }
        try await slow.store(stored.filter { $0.response != "text 7" })
        let cache = CoalescingCache(slow)
        let answers = try await withThrowingTaskGroup(of: (Int, CacheEntry?).self) { group in
            for (index, entry) in stored.enumerated() {
                group.addTask { (index, try await cache.lookup(entry.key)) }
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
        #expect(reads.reduce(0, +) == 64)
        #expect(reads.count < 64 / 4, "\(reads.count) reads for 64 lookups: \(reads)")
    }
}
