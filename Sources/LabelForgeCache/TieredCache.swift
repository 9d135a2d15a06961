import Foundation
import LabelForgeCore
import Logging
import Synchronization

/// A local cache in front of a shared one (`cache: {kind: tiered, …}`): reads try the local tier
/// first and copy what the shared tier answers into it, so a rerun on this machine reads locally;
/// writes go to both.
///
/// The shared tier failing (a server stopped mid-run) does not stop the run: its reads become
/// misses and its writes are skipped with one warning, and the local tier keeps every answer.
public final class TieredCache: CacheStore {
    public let local: any CacheStore
    public let shared: any CacheStore
    private let logger: Logger
    /// Whether the shared tier's failure was already reported.
    private let warned = Atomic<Bool>(false)
    /// When the shared tier last failed: for `retryAfter` it is not asked, so a run does not wait
    /// on a server that is down for every request.
    private let failedAt = Mutex<ContinuousClock.Instant?>(nil)
    let retryAfter: Duration = .seconds(30)

    /// Whether the shared tier is worth asking now.
    private var sharedUp: Bool {
        failedAt.withLock { at in at.map { ContinuousClock.now - $0 >= retryAfter } ?? true }
    }

    public var failedVerification: Int { local.failedVerification + shared.failedVerification }

    public init(local: any CacheStore, shared: any CacheStore, logger: Logger) {
        self.local = local
        self.shared = shared
        self.logger = logger
    }

    /// Asks the shared tier, unless it failed less than `retryAfter` ago; on a failure (other
    /// than cancellation) warns once, remembers when, and returns nil.
    private func askShared<T>(_ body: () async throws -> T) async throws -> T? {
        guard sharedUp else { return nil }
        do {
            return try await body()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            failedAt.withLock { $0 = ContinuousClock.now }
            if !warned.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "the shared cache failed (\(error)); answers are kept in the local cache only until it is back")
            }
            return nil
        }
    }

    public func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        var found = try await local.entries(for: keys)
        let missing = keys.filter { found[$0] == nil }
        guard !missing.isEmpty, let remote = try await askShared({ try await shared.entries(for: missing) }) else {
            return found
        }
        if !remote.isEmpty { try await local.store(Array(remote.values)) }
        found.merge(remote) { first, _ in first }
        return found
    }

    public func store(_ entries: [CacheEntry]) async throws {
        try await local.store(entries)
        _ = try await askShared { try await shared.store(entries) }
    }

    public func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> {
        let here = try await local.existing(keys)
        let missing = keys.filter { !here.contains($0) }
        guard !missing.isEmpty, let there = try await askShared({ try await shared.existing(missing) }) else {
            return here
        }
        return here.union(there)
    }

    /// Both tiers, the local one first; a key failing in either is listed once.
    public func verifyAll() async throws -> (checked: Int, failed: [CacheKey]) {
        let local = try await self.local.verifyAll()
        let shared = try await self.shared.verifyAll()
        return (local.checked + shared.checked, Array(Set(local.failed + shared.failed)).sorted { $0.hex < $1.hex })
    }

    public func stats() async throws -> CacheStats {
        let local = try await self.local.stats()
        let shared = try await self.shared.stats()
        return CacheStats(
            entries: shared.entries, bytes: shared.bytes, byKind: local.byKind,
            path: "\(local.path) in front of \(shared.path)")
    }
}
