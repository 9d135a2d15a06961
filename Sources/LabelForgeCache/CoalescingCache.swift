import Foundation
import LabelForgeCore
import Synchronization

/// A cache store whose reads from many concurrent callers are answered by one batched read of the
/// store it wraps: while one read is running, lookups queue up, and the next read takes them all.
///
/// A run with 128 rows in flight then asks SQLite once per batch instead of once per request; each
/// read of the wrapped store costs far more than a key in it. No task is spawned: the caller that
/// finds no read running performs the reads until the queue is empty.
public final class CoalescingCache: CacheStore {
    public let base: any CacheStore
    private let state = Mutex(State())

    private struct State {
        var reading = false
        var waiting: [(keys: [CacheKey], continuation: CheckedContinuation<[CacheKey: CacheEntry], any Error>)] = []
    }

    private struct BecomeReader: Error {}

    public init(_ base: any CacheStore) { self.base = base }

    /// Lookups queued behind the read in progress right now.
    public var waiting: Int { state.withLock { $0.waiting.count } }

    public func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        while true {
            let lead = state.withLock { state in
                if state.reading { return false }
                state.reading = true
                return true
            }
            if lead { return try await read(keys) }
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    let queued = state.withLock { state in
                        guard state.reading else { return false }
                        state.waiting.append((keys, continuation))
                        return true
                    }
                    // The reader finished between the two locks: try to become the reader.
                    if !queued { continuation.resume(throwing: BecomeReader()) }
                }
            } catch is BecomeReader {
                continue
            }
        }
    }

    /// Reads `own` plus everything queued, round after round, until nobody waits.
    private func read(_ own: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        var result: [CacheKey: CacheEntry] = [:]
        var batch: [(keys: [CacheKey], continuation: CheckedContinuation<[CacheKey: CacheEntry], any Error>)] = []
        var first = true
        while true {
            let keys = (first ? own : []) + batch.flatMap(\.keys)
            do {
                let found = try await base.entries(for: Array(Set(keys)))
                // Each caller's share, by lookup: filtering `found` per caller costs batch² work.
                func share(_ keys: [CacheKey]) -> [CacheKey: CacheEntry] {
                    var entries: [CacheKey: CacheEntry] = [:]
                    for key in keys { entries[key] = found[key] }
                    return entries
                }
                if first { result = share(own) }
                for waiter in batch { waiter.continuation.resume(returning: share(waiter.keys)) }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
                let rest = state.withLock { state in
                    defer {
                        state.waiting = []
                        state.reading = false
                    }
                    return state.waiting
                }
                for waiter in rest { waiter.continuation.resume(throwing: error) }
                throw error
            }
            first = false
            batch = state.withLock { state in
                defer { state.waiting = [] }
                if state.waiting.isEmpty { state.reading = false }
                return state.waiting
            }
            if batch.isEmpty { return result }
        }
    }

    public func store(_ entries: [CacheEntry]) async throws { try await base.store(entries) }

    public func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> { try await base.existing(keys) }

    public func stats() async throws -> CacheStats { try await base.stats() }
}
