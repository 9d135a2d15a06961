import Foundation
import GRDB
import LabelForgeCache
import LabelForgeCore
import Logging
import Testing

@Suite struct SQLiteCacheTests {
    func entry(_ text: String) -> CacheEntry {
        let material = CacheKey.material(
            kind: "chat", dialect: "vllm", modelID: "m", modelRevision: "r", body: ["text": .string(text)])
        return CacheEntry(
            key: CacheKey(hex: ContentHash.hex(material)), request: material,
            response: ["answer": .string(text.uppercased())],
            engineInfo: ["version": "0.12.0"])
    }

    @Test("eight opens of one new file at once (shards starting together) all succeed and share the entries")
    func concurrentCreation() async throws {
        for round in 0..<5 {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "lf-race-\(round)-\(UUID().uuidString).sqlite"
            ).path
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            let caches = try await withThrowingTaskGroup(of: SQLiteCache.self) { group in
                for _ in 0..<8 {
                    group.addTask { try SQLiteCache(path: path, logger: Logger(label: "race")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await caches[0].store([entry("x")])
            #expect(try await caches[7].lookup(entry("x").key)?.response == entry("x").response)
        }
    }

    @Test("entries round-trip through a real SQLite file; a hit writes nothing")
    func roundTrip() async throws {
        let dir = NSTemporaryDirectory() + "lf-cache-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = try SQLiteCache(path: dir + "/cache.sqlite", logger: Logger(label: "t"))
        let e = entry("hello")
        #expect(try await cache.lookup(e.key) == nil)
        try await cache.store(e)
        let found = try #require(try await cache.lookup(e.key))
        #expect(found.response == ["answer": "HELLO"])
        #expect(found.engineInfo["version"] == "0.12.0")
        let stats = try await cache.stats()
        #expect(stats.entries == 1)
        let hits = try await DatabaseQueue(path: dir + "/cache.sqlite").read { db in
            try Int.fetchOne(db, sql: "SELECT SUM(hits) FROM entries")
        }
        #expect(hits == 0)
        #expect(stats.bytes > 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/cache.sqlite"))
    }

    @Test("a corrupt entry is a miss, never a wrong answer")
    func corruptIsMiss() async throws {
        let dir = NSTemporaryDirectory() + "lf-cache-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = try SQLiteCache(path: dir + "/cache.sqlite", logger: Logger(label: "t"))
        let e = entry("world")
        try await cache.store(e)
        // Another process rewrites the stored response without fixing its integrity hash.
        try await DatabaseQueue(path: dir + "/cache.sqlite").write { db in
            try db.execute(
                sql: "UPDATE entries SET response = ? WHERE key = ?", arguments: [Data("{}".utf8), e.key.hex])
        }
        #expect(try await cache.lookup(e.key) == nil)
    }

    @Test("two handles on one file see each other's writes (WAL, shared by concurrent runs)")
    func sharedFile() async throws {
        let dir = NSTemporaryDirectory() + "lf-cache-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try SQLiteCache(path: dir + "/cache.sqlite", logger: Logger(label: "t"))
        let b = try SQLiteCache(path: dir + "/cache.sqlite", logger: Logger(label: "t"))
        try await a.store(entry("one"))
        #expect(try await b.lookup(entry("one").key) != nil)
    }

    @Test("binary payloads round-trip and are covered by the integrity hash")
    func payload() async throws {
        let dir = NSTemporaryDirectory() + "lf-cache-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = try SQLiteCache(path: dir + "/cache.sqlite", logger: Logger(label: "t"))
        var stored = entry("vector")
        stored.payload = Data([0, 0, 128, 63, 0, 0, 0, 64])
        let e = stored
        try await cache.store(e)
        #expect(try await cache.lookup(e.key)?.payload == e.payload)
        try await DatabaseQueue(path: dir + "/cache.sqlite").write { db in
            try db.execute(
                sql: "UPDATE entries SET payload = ? WHERE key = ?",
                arguments: [Data([0, 0, 128, 63, 0, 0, 0, 65]), e.key.hex])
        }
        #expect(try await cache.lookup(e.key) == nil)
    }

    @Test("batch reads return only the keys present, and the in-memory store behaves the same")
    func batch() async throws {
        let dir = NSTemporaryDirectory() + "lf-cache-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stores: [any CacheStore] = [
            try SQLiteCache(path: dir + "/cache.sqlite", logger: Logger(label: "t")), InMemoryCache(),
        ]
        for cache in stores {
            let stored = (0..<700).map { entry("text \($0)") }
            try await cache.store(stored)
            let asked = stored.map(\.key) + [entry("absent").key]
            let found = try await cache.entries(for: asked)
            #expect(found.count == 700)
            #expect(found[stored[650].key]?.response == ["answer": "TEXT 650"])
            #expect(try await cache.existing(asked).count == 700)
            #expect(try await cache.stats().entries == 700)
        }
    }
}
