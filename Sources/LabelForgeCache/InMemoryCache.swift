import Foundation
import LabelForgeCore
import Synchronization

/// A cache that lives in memory and dies with the process: for tests and for `--no-cache`-like
/// runs that should still share answers between rows.
public final class InMemoryCache: CacheStore {
    private let storage = Mutex<[CacheKey: CacheEntry]>([:])

    public init() {}

    public func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        storage.withLock { stored in
            var found: [CacheKey: CacheEntry] = [:]
            for key in keys { if let entry = stored[key], entry.isConsistent { found[key] = entry } }
            return found
        }
    }

    public func store(_ entries: [CacheEntry]) async throws {
        storage.withLock { stored in
            for entry in entries { stored[entry.key] = entry }
        }
    }

    public func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> {
        storage.withLock { stored in Set(keys.filter { stored[$0] != nil }) }
    }

    public func stats() async throws -> CacheStats {
        storage.withLock { stored in
            var kinds: [String: Int] = [:]
            var bytes: Int64 = 0
            for entry in stored.values {
                kinds[entry.kind, default: 0] += 1
                bytes += Int64(CanonicalJSON.data(entry.response).count + (entry.payload?.count ?? 0))
            }
            return CacheStats(entries: stored.count, bytes: bytes, byKind: kinds, path: ":memory:")
        }
    }
}
