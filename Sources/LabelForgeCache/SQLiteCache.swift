import Foundation
import GRDB
import LabelForgeCore
import Logging

/// The default cache: one SQLite file in WAL mode, so concurrent runs can share it.
///
/// Each row holds the canonical request material, the response, engine info and an integrity
/// hash over all three that is checked on every read.
public final class SQLiteCache: CacheStore {
    public let path: String
    private let pool: DatabasePool
    private let logger: Logger

    /// Opens (creating when missing) the cache at `path`.
    /// - Throws: `LabelForgeError.cache` when the file cannot be opened or migrated.
    public init(path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            var config = Configuration()
            config.busyMode = .timeout(30)
            pool = try DatabasePool(path: path, configuration: config)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.create(table: "entries") { t in
                    t.primaryKey("key", .text)
                    t.column("kind", .text).notNull()
                    t.column("request", .blob).notNull()
                    t.column("response", .blob).notNull()
                    t.column("engine_info", .blob).notNull()
                    t.column("integrity", .text).notNull()
                    t.column("created_at", .double).notNull()
                    t.column("hits", .integer).notNull().defaults(to: 0)
                }
            }
            try migrator.migrate(pool)
        } catch {
            throw LabelForgeError(.cache, "Cannot open the cache at \(path): \(error). Check the path and permissions.")
        }
    }

    /// The cache path LabelForge uses by default: `$LABELFORGE_CACHE_DIR/cache.sqlite`, else
    /// `~/.cache/labelforge/cache.sqlite`.
    public static func defaultPath() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let dir = environment["LABELFORGE_CACHE_DIR"], !dir.isEmpty { return dir + "/cache.sqlite" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.cache/labelforge/cache.sqlite"
    }

    public func lookup(_ key: CacheKey) async throws -> CacheEntry? {
        let stored = try await pool.read { db -> StoredEntry? in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT request, response, engine_info, integrity, created_at FROM entries WHERE key = ?",
                    arguments: [key.hex])
            else { return nil }
            return StoredEntry(
                request: row["request"], response: row["response"], engineInfo: row["engine_info"],
                integrity: row["integrity"], createdAt: row["created_at"])
        }
        guard let stored else { return nil }
        let request = stored.request
        let response = stored.response
        let integrity = stored.integrity
        guard CacheEntry.integrityHash(key: key, request: request, response: response) == integrity,
            let requestJSON = try? JSONValue.parse(request), ContentHash.hex(requestJSON) == key.hex,
            let responseJSON = try? JSONValue.parse(response)
        else {
            logger.warning("cache entry \(key) failed verification; treating it as a miss")
            return nil
        }
        try await pool.write { db in
            try db.execute(sql: "UPDATE entries SET hits = hits + 1 WHERE key = ?", arguments: [key.hex])
        }
        let engineInfo = (try? JSONValue.parse(stored.engineInfo)) ?? .null
        return CacheEntry(
            key: key, request: requestJSON, response: responseJSON, engineInfo: engineInfo,
            createdAt: Date(timeIntervalSince1970: stored.createdAt))
    }

    /// Whether an entry exists for `key` (without verifying it or counting a hit).
    public func contains(_ key: CacheKey) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM entries WHERE key = ?)", arguments: [key.hex]) ?? false
        }
    }

    public func store(_ entry: CacheEntry) async throws {
        let request = CanonicalJSON.data(entry.request)
        let response = CanonicalJSON.data(entry.response)
        let integrity = CacheEntry.integrityHash(key: entry.key, request: request, response: response)
        let kind = entry.request["kind"]?.stringValue ?? "chat"
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO entries (key, kind, request, response, engine_info, integrity, created_at, hits)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 0)
                    """,
                arguments: [
                    entry.key.hex, kind, request, response, CanonicalJSON.data(entry.engineInfo), integrity,
                    entry.createdAt.timeIntervalSince1970,
                ])
        }
    }

    public func stats() async throws -> CacheStats {
        let (entries, hits, kinds) = try await pool.read { db -> (Int, Int, [String: Int]) in
            let entries = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entries") ?? 0
            let hits = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(hits), 0) FROM entries") ?? 0
            var kinds: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM entries GROUP BY kind") {
                kinds[row["kind"]] = row["n"]
            }
            return (entries, hits, kinds)
        }
        var bytes: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? NSNumber) ?? nil
            bytes += size?.int64Value ?? 0
        }
        return CacheStats(entries: entries, bytes: bytes, hits: hits, byKind: kinds, path: path)
    }

    private struct StoredEntry: Sendable {
        var request: Data
        var response: Data
        var engineInfo: Data
        var integrity: String
        var createdAt: Double
    }
}
