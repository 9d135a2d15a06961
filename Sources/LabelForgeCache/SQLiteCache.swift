import Foundation
import GRDB
import LabelForgeCore
import Logging
import Synchronization

/// The default cache: one SQLite file in WAL mode, so concurrent runs can share it.
///
/// Each row holds the canonical request material, the response (with an optional binary payload),
/// engine info and an integrity hash over them that is checked on every read. Reads never write:
/// hit counts live in the runs' manifests.
public final class SQLiteCache: CacheStore {
    public let path: String
    private let pool: DatabasePool
    private let logger: Logger
    private let failures = Atomic<Int>(0)

    public var failedVerification: Int { failures.load(ordering: .relaxed) }

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
            migrator.registerMigration("v2-payload") { db in
                try db.alter(table: "entries") { t in t.add(column: "payload", .blob) }
            }
            // Processes that open a new file at once (shards, parallel runs) race to switch it to WAL
            // ("database is locked") and to apply a pending migration (one fails): each migration
            // commits with its record, so another pass sees what the other process did.
            var attempt = 0
            while true {
                do {
                    let pool = try DatabasePool(path: path, configuration: config)
                    try migrator.migrate(pool)
                    self.pool = pool
                    break
                } catch  where attempt < 8 {
                    attempt += 1
                    Thread.sleep(forTimeInterval: 0.05 * Double(attempt))
                }
            }
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

    /// A read on the calling thread (GRDB's synchronous `read`). Entries are read this way: a read
    /// of a few rows takes microseconds, less than the two thread hops of GRDB's async `read`
    /// (a fully cached rerun ran a quarter faster). Writes stay async.
    private func readNow<T>(_ block: (Database) throws -> T) throws -> T {
        try pool.read(block)
    }

    public func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        let stored = try readNow { db in
            try Self.inChunks(keys) { marks, arguments in
                // Cached statements: compiling the SQL (and GRDB's authorizer pass) cost more than the read.
                try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT key, kind, request, response, payload, engine_info, integrity, created_at
                            FROM entries WHERE key IN (\(marks))
                            """),
                    arguments: arguments
                ).map {
                    // By index, in the SELECT's order: a lookup by name lowercases the name each time.
                    StoredEntry(
                        key: $0[0], kind: $0[1], request: $0[2], response: $0[3], payload: $0[4], engineInfo: $0[5],
                        integrity: $0[6], createdAt: $0[7])
                }
            }
        }
        var found: [CacheKey: CacheEntry] = [:]
        for stored in stored {
            let key = CacheKey(hex: stored.key)
            guard
                CacheEntry.integrityHash(
                    key: key, request: stored.request, response: stored.response, payload: stored.payload)
                    == stored.integrity,
                let response = try? JSONValue.parse(stored.response)
            else {
                logger.warning("cache entry \(key) failed verification; treating it as a miss")
                failures.add(1, ordering: .relaxed)
                continue
            }
            // A corrupt row fails the integrity hash above; that the request hashes to the key was
            // checked when the entry was stored.
            found[key] = CacheEntry(
                key: key, requestData: stored.request, kind: stored.kind, response: response, payload: stored.payload,
                engineInfoData: stored.engineInfo, createdAt: Date(timeIntervalSince1970: stored.createdAt))
        }
        return found
    }

    public func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> {
        try await pool.read { db in
            Set(
                try Self.inChunks(keys) { marks, arguments in
                    try String.fetchAll(
                        db.cachedStatement(sql: "SELECT key FROM entries WHERE key IN (\(marks))"), arguments: arguments
                    )
                }.map { CacheKey(hex: $0) })
        }
    }

    /// Runs `query` over `keys` in chunks of 500 (SQLite bounds the number of bound parameters),
    /// with the chunk's `?, ?, …` placeholders and arguments, and joins the results.
    private static func inChunks<T>(
        _ keys: [CacheKey], _ query: (_ marks: String, _ arguments: StatementArguments) throws -> [T]
    ) throws -> [T] {
        var results: [T] = []
        for start in stride(from: 0, to: keys.count, by: 500) {
            let chunk = keys[start..<min(start + 500, keys.count)].map(\.hex)
            results += try query(
                Array(repeating: "?", count: chunk.count).joined(separator: ","), StatementArguments(chunk))
        }
        return results
    }

    public func store(_ entries: [CacheEntry]) async throws {
        guard !entries.isEmpty else { return }
        // Checked here, once, rather than on every read: an entry stored under another request's
        // key would otherwise pass its integrity hash forever.
        if let wrong = entries.first(where: { !$0.isConsistent }) {
            throw LabelForgeError(
                .io, "Refusing to cache an entry whose request does not hash to its key \(wrong.key); this is a bug.")
        }
        let rows = entries.map { entry -> StatementArguments in
            let request = entry.requestData
            let response = CanonicalJSON.data(entry.response)
            let integrity = CacheEntry.integrityHash(
                key: entry.key, request: request, response: response, payload: entry.payload)
            return [
                entry.key.hex, entry.kind, request, response, entry.payload, entry.engineInfoData,
                integrity,
                entry.createdAt.timeIntervalSince1970,
            ] as StatementArguments
        }
        try await pool.write { db in
            let insert = try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO entries (key, kind, request, response, payload, engine_info, integrity, created_at, hits)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
                    """)
            for row in rows { try insert.execute(arguments: row) }
        }
    }

    /// Checks every entry's integrity hash (and that its response parses); returns how many were
    /// checked and the keys of those that fail.
    public func verifyAll() async throws -> (checked: Int, failed: [CacheKey]) {
        try await pool.read { db in
            var checked = 0
            var failed: [CacheKey] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT key, request, response, payload, integrity FROM entries")
            while let row = try rows.next() {
                checked += 1
                let key = CacheKey(hex: row[0])
                let response: Data = row[2]
                if CacheEntry.integrityHash(key: key, request: row[1], response: response, payload: row[3]) != row[4]
                    || (try? JSONValue.parse(response)) == nil
                {
                    failed.append(key)
                }
            }
            return (checked, failed)
        }
    }

    public func stats() async throws -> CacheStats {
        let (entries, kinds) = try await pool.read { db -> (Int, [String: Int]) in
            let entries = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entries") ?? 0
            var kinds: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM entries GROUP BY kind") {
                kinds[row["kind"]] = row["n"]
            }
            return (entries, kinds)
        }
        var bytes: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? NSNumber) ?? nil
            bytes += size?.int64Value ?? 0
        }
        return CacheStats(entries: entries, bytes: bytes, byKind: kinds, path: path)
    }

    private struct StoredEntry: Sendable {
        var key: String
        var kind: String
        var request: Data
        var response: Data
        var payload: Data?
        var engineInfo: Data
        var integrity: String
        var createdAt: Double
    }
}
