import Foundation
import LabelForgeCore
import Synchronization

/// A transport that sends single-text embeddings requests (and single-document rerank requests of
/// one query) in batches: requests that arrive while
/// earlier batches are on the wire wait, and the next batch takes up to `batchSize` of them as one
/// `POST /v1/embeddings` with several inputs. Each caller gets back a body with its own vector
/// (`index` 0), so every text keeps the cache key of its single-input request whatever batch it
/// travelled in. Other requests pass straight through.
///
/// No timer and no task of its own: the caller that finds fewer than `maxConcurrentBatches`
/// batches on the wire sends at once, with whatever waits, and keeps sending what queues up
/// meanwhile; batches grow with the load.
public final class RequestBatcher: EngineTransport {
    public let base: any EngineTransport
    public let batchSize: Int
    public let maxConcurrentBatches: Int
    private let state = Mutex(State())

    private struct Waiting {
        var request: EngineRequest
        var continuation: CheckedContinuation<EngineReply, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var sending = 0
    }

    public init(base: any EngineTransport, batchSize: Int, maxConcurrentBatches: Int) {
        self.base = base
        self.batchSize = max(1, batchSize)
        self.maxConcurrentBatches = max(1, maxConcurrentBatches)
    }

    public var requestsSent: Int { base.requestsSent }

    /// Requests queued behind the batches on the wire right now.
    public var waiting: Int { state.withLock { $0.queue.count } }

    public func send(_ request: EngineRequest) async throws -> EngineReply {
        guard Self.batchable(request) else { return try await base.send(request) }
        while true {
            let lead = state.withLock { state in
                guard state.sending < maxConcurrentBatches else { return false }
                state.sending += 1
                return true
            }
            if lead { return try await sendAsLeader(request) }
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    let queued = state.withLock { state in
                        // Every sender may have finished between the two locks: then nobody would
                        // take this request, so its caller tries to become a sender instead.
                        guard state.sending > 0 else { return false }
                        state.queue.append(Waiting(request: request, continuation: continuation))
                        return true
                    }
                    if !queued { continuation.resume(throwing: BecomeSender()) }
                }
            } catch is BecomeSender {
                continue
            }
        }
    }

    private struct BecomeSender: Error {}

    /// Sends `own` in the first batch with whatever waits, then keeps sending what queues up
    /// until nothing waits; no task is spawned.
    private func sendAsLeader(_ own: EngineRequest) async throws -> EngineReply {
        var result: Result<EngineReply, any Error>?
        while true {
            let batch = state.withLock { state -> [Waiting] in
                let room = result == nil ? batchSize - 1 : batchSize
                // Only requests that differ in their one text travel together (rerank: one query).
                let group = Self.groupKey(result == nil ? own : state.queue.first?.request)
                var batch: [Waiting] = []
                var rest: [Waiting] = []
                for waiting in state.queue {
                    if batch.count < room && Self.groupKey(waiting.request) == group {
                        batch.append(waiting)
                    } else {
                        rest.append(waiting)
                    }
                }
                state.queue = rest
                if batch.isEmpty && result != nil { state.sending -= 1 }
                return batch
            }
            if result != nil && batch.isEmpty { return try result!.get() }
            let requests = (result == nil ? [own] : []) + batch.map(\.request)
            var replies = await sendIsolatingFailures(requests)
            if result == nil { result = replies.removeFirst() }
            for (waiter, reply) in zip(batch, replies) { waiter.continuation.resume(with: reply) }
        }
    }

    /// Single-text embeddings requests, and rerank requests for one document.
    static func batchable(_ request: EngineRequest) -> Bool {
        switch request.kind {
        case .embeddings: return request.body["input"]?.arrayValue?.count == 1
        case .rerank: return request.body["documents"]?.arrayValue?.count == 1
        case .score: return request.body["text_2"]?.arrayValue?.count == 1
        default: return false
        }
    }

    /// What requests of one batch share: the body without its one text.
    static func groupKey(_ request: EngineRequest?) -> JSONValue? {
        guard let request, var body = request.body.objectValue else { return nil }
        body["input"] = nil
        body["documents"] = nil
        body["top_n"] = nil
        body["text_2"] = nil
        return [.string(request.kind.name), .object(body)]
    }

    /// The replies to `requests`, sent as one batch. When the engine refuses the batch for what one
    /// of its texts is (a 4xx, or a 500 such as llama.cpp's for a text over its window, or an answer
    /// it cannot give), each request is sent again alone, so only the requests that fail alone get the
    /// failure. An overloaded or unreachable engine (408, 429, 502–504, a timeout, no connection)
    /// fails the whole batch: resending it text by text would only add load.
    private func sendIsolatingFailures(_ requests: [EngineRequest]) async -> [Result<EngineReply, any Error>] {
        do {
            return try await send(requests).map { .success($0) }
        } catch let error as LabelForgeError where requests.count > 1 && Self.concernsTheTexts(error) {
            return await withTaskGroup(of: (Int, Result<EngineReply, any Error>).self) { group in
                for (index, request) in requests.enumerated() {
                    group.addTask {
                        do {
                            return (index, .success(try await self.base.send(request)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var replies = [Result<EngineReply, any Error>?](repeating: nil, count: requests.count)
                for await (index, reply) in group { replies[index] = reply }
                return replies.map { $0! }
            }
        } catch {
            return requests.map { _ in .failure(error) }
        }
    }

    /// Whether a refused batch may be the fault of one of its texts rather than of the engine's state.
    /// A miss (a transport that answers nothing, as `labelforge plan`'s) is each text's own: sent
    /// alone, each says what it would have cost.
    static func concernsTheTexts(_ error: LabelForgeError) -> Bool {
        if error.code == .invalidResponse || error.code == .cacheMiss { return true }
        guard error.code == .engineHTTP, let status = error.httpStatus else { return false }
        return ![408, 429, 502, 503, 504].contains(status)
    }

    /// One request for several single-text requests, split back into one reply each.
    private func send(_ requests: [EngineRequest]) async throws -> [EngineReply] {
        guard requests.count > 1 else { return [try await base.send(requests[0])] }
        var body = requests[0].body.objectValue ?? [:]
        let kind = requests[0].kind
        if kind == .score {
            body["text_2"] = .array(requests.map { $0.body["text_2"]?.arrayValue?.first ?? .null })
            let reply = try await base.send(EngineRequest(kind: .score, body: .object(body)))
            return try Self.splitRerank(reply, count: requests.count, key: "data")
        }
        if kind == .rerank {
            body["documents"] = .array(requests.map { $0.body["documents"]?.arrayValue?.first ?? .null })
            body["top_n"] = .int(Int64(requests.count))
            let reply = try await base.send(EngineRequest(kind: .rerank, body: .object(body)))
            return try Self.splitRerank(reply, count: requests.count)
        }
        body["input"] = .array(requests.map { $0.body["input"]?.arrayValue?.first ?? .null })
        let reply = try await base.send(EngineRequest(kind: .embeddings, body: .object(body)))
        return try Self.split(reply, count: requests.count)
    }

    /// One rerank body per document, each with its result as index 0.
    static func splitRerank(_ reply: EngineReply, count: Int, key: String = "results") throws -> [EngineReply] {
        var byIndex: [Int: JSONValue] = [:]
        for result in reply.body[key]?.arrayValue ?? [] {
            if let index = result["index"]?.intValue { byIndex[index] = result }
        }
        return try (0..<count).map { index in
            guard var result = byIndex[index]?.objectValue else {
                throw LabelForgeError(
                    .invalidResponse, "The engine's rerank response has no result for document \(index).")
            }
            result["index"] = 0
            result["document"] = nil
            var body = reply.body.objectValue ?? [:]
            body[key] = [.object(result)]
            body["usage"] = nil
            return EngineReply(body: .object(body), attempts: reply.attempts, latency: reply.latency)
        }
    }

    /// One body per input, each with its vector as `data[0]` (index 0) and a share of the prompt
    /// tokens (engines count them per batch only).
    static func split(_ reply: EngineReply, count: Int) throws -> [EngineReply] {
        guard let data = reply.body["data"]?.arrayValue, data.count == count else {
            throw LabelForgeError(
                .invalidResponse,
                "The engine answered \(reply.body["data"]?.arrayValue?.count ?? 0) embeddings for \(count) inputs.")
        }
        var byIndex: [Int: JSONValue] = [:]
        for (offset, item) in data.enumerated() { byIndex[item["index"]?.intValue ?? offset] = item }
        let tokens = reply.body["usage"]?["prompt_tokens"]?.intValue ?? 0
        return try (0..<count).map { index in
            guard var item = byIndex[index]?.objectValue else {
                throw LabelForgeError(
                    .invalidResponse, "The engine's embeddings response has no item with index \(index).")
            }
            item["index"] = 0
            var body = reply.body.objectValue ?? [:]
            body["data"] = [.object(item)]
            let share = tokens / count + (index < tokens % count ? 1 : 0)
            body["usage"] = ["prompt_tokens": .int(Int64(share)), "total_tokens": .int(Int64(share))]
            return EngineReply(body: .object(body), attempts: reply.attempts, latency: reply.latency)
        }
    }
}
