import Foundation
import LabelForgeCore
import Logging
import Synchronization

/// One request of a batch, under the id the batch file gives it.
public struct BatchItem: Sendable {
    /// The SHA-256 of the request's path and body (64 hex digits: within Anthropic's 64-character
    /// limit): the same request always has the same id, so a resumed run finds it in a batch it
    /// submitted before.
    public var customID: String
    public var request: EngineRequest

    public init(_ request: EngineRequest) {
        self.request = request
        customID = ContentHash.hex([.string(request.kind.path), request.body] as JSONValue)
    }
}

/// What became of one item of an ended batch.
public enum BatchItemOutcome: Sendable {
    /// Its answer, as the same request online would have had it (an OpenAI chat completion).
    case succeeded(JSONValue)
    /// The provider's error for it (a 4xx or 5xx answer, a refused request).
    case failed(String)
    /// The batch ended (expired, was cancelled or failed as a whole) without answering it.
    case unanswered(String)
}

/// A batch as the provider reports it.
public struct BatchStatus: Sendable {
    /// The provider's word for it (`in_progress`, `completed`, `expired`, `ended`, …).
    public var state: String
    /// Whether it ended, whatever the outcome: its results can be read.
    public var ended: Bool

    public init(state: String, ended: Bool) {
        self.state = state
        self.ended = ended
    }
}

/// A batch API: OpenAI's files and batches, Anthropic's message batches, vLLM's batch files.
public protocol BatchProvider: Sendable {
    /// `openai`, `anthropic` or `vllm-file`, for messages.
    var name: String { get }
    /// The most requests, and the most bytes of request lines, one batch takes.
    var maxRequests: Int { get }
    var maxBytes: Int { get }
    /// The bytes one item takes in the batch it is submitted in (its line, for a JSONL file).
    func size(of item: BatchItem) -> Int
    /// Submits `items` (one request kind) as one batch named `submission`; returns its id.
    func submit(_ items: [BatchItem], submission: String) async throws -> String
    /// The batch submitted as `submission`, if the provider has one (a run killed between creating a
    /// batch and recording its id); nil where the provider cannot tell.
    func find(submission: String) async throws -> String?
    func status(of batch: String) async throws -> BatchStatus
    /// The outcome of each item of an ended batch, by custom id; an item missing is unanswered.
    func results(of batch: String) async throws -> [String: BatchItemOutcome]
    func cancel(_ batch: String) async throws
    /// Why the provider cannot take `item` at all (it fails alone, never batched); nil when it can.
    func refusal(of item: BatchItem) -> String?
}

extension BatchProvider {
    public func refusal(of item: BatchItem) -> String? { nil }
}

/// A batch as the run's manifest records it: first its items, under a submission name, before it
/// is submitted; then its id, once the provider gave one.
public struct BatchEntry: Sendable, Equatable {
    public var engine: String
    public var submission: String
    public var batchID: String?
    /// The items' custom ids (on the first record only).
    public var items: [String]

    public init(engine: String, submission: String, batchID: String? = nil, items: [String] = []) {
        self.engine = engine
        self.submission = submission
        self.batchID = batchID
        self.items = items
    }
}

/// Where a batch engine records its batches as it creates them (the run's manifest), and finds
/// those of the run it resumes.
public protocol BatchLedger: Sendable {
    /// The batches an earlier attempt of this run submitted for `engine`, one entry each (items and
    /// id joined; the id nil where the run stopped before it was recorded).
    func recorded(engine: String) -> [BatchEntry]
    /// Writes `entry` durably before returning.
    func record(_ entry: BatchEntry) throws
}

/// Batches by state, and the items in each, for progress lines and the run's report.
public struct BatchCounts: Sendable, Equatable {
    public var submitted = 0
    public var running = 0
    public var done = 0
    public var failed = 0
    public var itemsSubmitted = 0
    public var itemsSucceeded = 0
    public var itemsFailed = 0
    public var itemsUnanswered = 0
    /// Items submitted again after failing or going unanswered.
    public var itemsResubmitted = 0

    public init() {}

    public var line: String {
        "batches: \(submitted) submitted, \(running) running, \(done) done, \(failed) failed; items: "
            + "\(itemsSubmitted) submitted, \(itemsSucceeded) succeeded, \(itemsFailed) failed, "
            + "\(itemsUnanswered) unanswered, \(itemsResubmitted) resubmitted"
    }
}

/// Sends requests through a batch API (`kind: batch`): requests that arrive together are written as
/// one batch (split within the provider's limits), the batches are polled until they end, and each
/// caller gets its answer as the same request online would have had it, so the executor caches it
/// under the same key (a later online run is all hits; replay needs no engine).
///
/// One caller at a time drives (the first that finds nobody driving): it forms batches from what
/// queued up, polls the open ones and hands out answers until nothing is left, with no task of its
/// own, so cancelling the run cancels its remote batches. Items that failed or went unanswered
/// (expired, cancelled, a batch that failed whole) are submitted again, up to `maxRetries` times;
/// those that succeeded never are. Every batch is in the ledger before it is submitted and its id
/// as soon as the provider gives it; a resumed run polls those batches instead of submitting again.
public final class BatchTransport: EngineTransport {
    public struct Options: Sendable {
        public var maxRetries: Int
        /// How often an open batch is polled.
        public var pollInterval: Duration
        /// How long requests gather before they are submitted: a batch forms once no request joined
        /// for this long (or it is full).
        public var gatherWindow: Duration

        public init(maxRetries: Int, pollInterval: Duration, gatherWindow: Duration) {
            self.maxRetries = maxRetries
            self.pollInterval = pollInterval
            self.gatherWindow = gatherWindow
        }
    }

    public let engine: String
    public let provider: any BatchProvider
    public let options: Options
    private let ledger: (any BatchLedger)?
    private let logger: Logger
    private let state: Mutex<State>
    private let sent = Atomic<Int>(0)

    /// Where one caller's answer arrives.
    private final class Answer: Sendable {
        private let slot = Mutex<
            (result: Result<EngineReply, any Error>?, waiter: CheckedContinuation<EngineReply, any Error>?)
        >((nil, nil))

        init(_ result: Result<EngineReply, any Error>? = nil) { slot.withLock { $0.result = result } }

        func fulfil(_ result: Result<EngineReply, any Error>) {
            let waiter = slot.withLock { slot -> CheckedContinuation<EngineReply, any Error>? in
                guard slot.result == nil else { return nil }
                slot.result = result
                defer { slot.waiter = nil }
                return slot.waiter
            }
            waiter?.resume(with: result)
        }

        var value: EngineReply {
            get async throws {
                try await withCheckedThrowingContinuation { continuation in
                    let ready = slot.withLock { slot -> Result<EngineReply, any Error>? in
                        if slot.result == nil { slot.waiter = continuation }
                        return slot.result
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            }
        }
    }

    /// An item queued or in an open batch.
    private struct Pending {
        /// Nil for an item of a batch an earlier attempt submitted, until it is asked for again.
        var item: BatchItem?
        var resubmissions = 0
        var answers: [Answer] = []
        /// The batch it is in now (its id, or an unconfirmed submission's name); only that batch's
        /// outcome counts for it (a resumed run may list it in older batches too).
        var batch: String?
        /// Whether it waits in the queue (never twice: a batch file takes a custom id once).
        var queued = false
    }

    private struct Open {
        var id: String
        var items: [String]
        var lastPolled: ContinuousClock.Instant
        var state = "submitted"
        /// Polls in a row that could not read it.
        var failures = 0
    }

    private struct State {
        var queue: [String] = []
        var pending: [String: Pending] = [:]
        var open: [Open] = []
        /// Answers of a resumed run's batches that nobody asked for yet.
        var answered: [String: EngineReply] = [:]
        /// Recorded submissions without an id, to look up before anything is submitted.
        var unconfirmed: [BatchEntry] = []
        var driving = false
        var counts = BatchCounts()
    }

    public init(
        engine: String, provider: any BatchProvider, options: Options, ledger: (any BatchLedger)?, logger: Logger
    ) {
        self.engine = engine
        self.provider = provider
        self.options = options
        self.ledger = ledger
        self.logger = logger
        var initial = State()
        let now = ContinuousClock.now
        // An item submitted several times counts in its last batch only.
        let entries = ledger?.recorded(engine: engine) ?? []
        var latest: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            for id in entry.items { latest[id] = index }
        }
        for (index, var entry) in entries.enumerated() {
            entry.items = entry.items.filter { latest[$0] == index }
            guard !entry.items.isEmpty else { continue }
            for id in entry.items { initial.pending[id] = Pending(batch: entry.batchID ?? entry.submission) }
            if let batch = entry.batchID {
                initial.open.append(Open(id: batch, items: entry.items, lastPolled: now - .seconds(3600)))
            } else {
                initial.unconfirmed.append(entry)
            }
        }
        state = Mutex(initial)
    }

    public var requestsSent: Int { sent.load(ordering: .relaxed) }

    /// Batches and items by state so far.
    public var counts: BatchCounts { state.withLock { $0.counts } }

    public func send(_ request: EngineRequest) async throws -> EngineReply {
        let item = BatchItem(request)
        if let refusal = provider.refusal(of: item) {
            // What the provider cannot take at all fails alone, before it is batched with others.
            throw LabelForgeError(.invalidConfig, "\(engine) (\(provider.name) batches): \(refusal)")
        }
        let (answer, drive) = state.withLock { state -> (Answer, Bool) in
            if let reply = state.answered.removeValue(forKey: item.customID) { return (Answer(.success(reply)), false) }
            let answer = Answer()
            if var pending = state.pending[item.customID] {
                pending.item = pending.item ?? item
                pending.answers.append(answer)
                state.pending[item.customID] = pending
            } else {
                state.pending[item.customID] = Pending(item: item, answers: [answer], queued: true)
                state.queue.append(item.customID)
            }
            defer { state.driving = true }
            return (answer, !state.driving)
        }
        if drive { await driveBatches() }
        return try await answer.value
    }

    /// Forms, submits and polls batches until nothing is queued or open.
    private func driveBatches() async {
        var lastQueued = -1
        do {
            while true {
                try await confirmRecorded()
                try await Task.sleep(for: options.gatherWindow)
                let formed = state.withLock { state -> [String]? in
                    if state.queue.isEmpty && state.open.isEmpty && state.unconfirmed.isEmpty {
                        state.driving = false
                        return nil
                    }
                    // A batch forms once the queue stopped growing, or holds a full batch.
                    guard !state.queue.isEmpty,
                        state.queue.count == lastQueued || state.queue.count >= provider.maxRequests
                    else {
                        lastQueued = state.queue.count
                        return []
                    }
                    lastQueued = -1
                    defer { state.queue.removeAll() }
                    for id in state.queue { state.pending[id]?.queued = false }
                    return state.queue
                }
                guard let formed else { return }
                try await submit(formed)
                try await pollOpen()
            }
        } catch is CancellationError {
            await abandon(CancellationError(), cancellingBatches: true)
        } catch {
            // The ledger could not be written: the callers fail; the batches go on at the provider,
            // and the manifest lists those it could record.
            await abandon(error, cancellingBatches: false)
        }
    }

    /// A resumed run's submissions whose id was never recorded: the provider is asked for them by
    /// name (a kill between creating a batch and recording it); one it has is polled, one it lacks
    /// was never created and its items are submitted when asked for.
    private func confirmRecorded() async throws {
        let unconfirmed = state.withLock { state in
            defer { state.unconfirmed = [] }
            return state.unconfirmed
        }
        for entry in unconfirmed {
            let found: String?
            do {
                found = try await provider.find(submission: entry.submission)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("\(engine): could not look up batch \(entry.submission) (\(error)); trying again")
                state.withLock { $0.unconfirmed.append(entry) }
                continue
            }
            if let id = found {
                try ledger?.record(BatchEntry(engine: engine, submission: entry.submission, batchID: id))
                logger.notice("batch \(id) (\(engine)): found by its submission \(entry.submission); polling it")
                state.withLock {
                    $0.open.append(Open(id: id, items: entry.items, lastPolled: .now - .seconds(3600)))
                }
            } else {
                requeue(entry.items)
            }
        }
    }

    /// Items of a recorded batch that will never answer: asked for already, they are queued;
    /// otherwise forgotten, to be queued when asked for.
    private func requeue(_ ids: [String]) {
        state.withLock { state in
            for id in ids {
                guard var pending = state.pending[id] else { continue }
                if pending.item == nil {
                    state.pending[id] = nil
                } else if !pending.queued {
                    pending.batch = nil
                    pending.queued = true
                    state.pending[id] = pending
                    state.queue.append(id)
                }
            }
        }
    }

    /// Submits `ids` as batches of one request kind each, within the provider's limits.
    private func submit(_ ids: [String]) async throws {
        let items = state.withLock { state in ids.compactMap { state.pending[$0]?.item } }
        var groups: [String: [BatchItem]] = [:]
        var order: [String] = []
        for item in items {
            if groups[item.request.kind.path] == nil { order.append(item.request.kind.path) }
            groups[item.request.kind.path, default: []].append(item)
        }
        for path in order {
            var chunk: [BatchItem] = []
            var bytes = 0
            for item in groups[path]! {
                let size = provider.size(of: item)
                if !chunk.isEmpty && (chunk.count >= provider.maxRequests || bytes + size > provider.maxBytes) {
                    try await submitBatch(chunk)
                    chunk = []
                    bytes = 0
                }
                chunk.append(item)
                bytes += size
            }
            if !chunk.isEmpty { try await submitBatch(chunk) }
        }
    }

    private func submitBatch(_ items: [BatchItem]) async throws {
        let submission = "labelforge-" + UUID().uuidString.lowercased()
        let ids = items.map(\.customID)
        try ledger?.record(BatchEntry(engine: engine, submission: submission, items: ids))
        let id: String
        do {
            id = try await provider.submit(items, submission: submission)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // Refused before it existed (a file the provider would not take, a network failure): its
            // items count as failed once, and go again while retries are left.
            logger.warning("batch of \(items.count) request(s) for \(engine) could not be submitted: \(error)")
            settle(ids.map { ($0, .failed("the batch could not be submitted: \(error)")) }, batch: "(not submitted)")
            return
        }
        try ledger?.record(BatchEntry(engine: engine, submission: submission, batchID: id))
        sent.add(items.count, ordering: .relaxed)
        let line = state.withLock { state in
            for item in ids { state.pending[item]?.batch = id }
            state.open.append(Open(id: id, items: ids, lastPolled: .now))
            state.counts.submitted += 1
            state.counts.running += 1
            state.counts.itemsSubmitted += items.count
            return state.counts.line
        }
        logger.notice("batch \(id) (\(engine), \(provider.name)): \(items.count) request(s) submitted; \(line)")
    }

    /// Polls the open batches due for it; hands out the answers of those that ended.
    private func pollOpen() async throws {
        let due = state.withLock { state in
            state.open.filter { ContinuousClock.now - $0.lastPolled >= options.pollInterval }
        }
        for batch in due {
            let status: BatchStatus
            let outcomes: [String: BatchItemOutcome]
            do {
                status = try await provider.status(of: batch.id)
                outcomes = status.ended ? try await provider.results(of: batch.id) : [:]
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // A poll that failed (the network, the provider's hiccup) is tried again at the next;
                // a batch the provider no longer has (404), or that fails ten polls in a row, is given
                // up: its items go again.
                let failures = state.withLock { state -> Int in
                    guard let i = state.open.firstIndex(where: { $0.id == batch.id }) else { return 0 }
                    state.open[i].lastPolled = .now
                    state.open[i].failures += 1
                    return state.open[i].failures
                }
                let gone = (error as? LabelForgeError)?.httpStatus == 404 || failures >= 10
                let next = gone ? "its items go again" : "polling again"
                logger.warning("batch \(batch.id) (\(engine)) could not be read: \(error); \(next)")
                if gone {
                    state.withLock { state in
                        state.open.removeAll { $0.id == batch.id }
                        state.counts.running = max(0, state.counts.running - 1)
                        state.counts.failed += 1
                    }
                    settle(
                        batch.items.map { ($0, .unanswered("batch \(batch.id) could not be read: \(error)")) },
                        batch: batch.id)
                }
                continue
            }
            state.withLock { state in
                guard let i = state.open.firstIndex(where: { $0.id == batch.id }) else { return }
                state.open[i].lastPolled = .now
                state.open[i].state = status.state
            }
            guard status.ended else { continue }
            let answered = outcomes.values.filter { if case .succeeded = $0 { true } else { false } }.count
            state.withLock { state in
                state.open.removeAll { $0.id == batch.id }
                state.counts.running = max(0, state.counts.running - 1)
                if answered == 0 { state.counts.failed += 1 } else { state.counts.done += 1 }
            }
            settle(
                batch.items.map { ($0, outcomes[$0] ?? .unanswered("batch \(batch.id) ended \(status.state)")) },
                batch: batch.id)
            let line = state.withLock { $0.counts.line }
            logger.notice(
                "batch \(batch.id) (\(engine)): \(status.state), \(answered) of \(batch.items.count) answered; \(line)")
        }
    }

    /// Hands out answers; queues again what failed while retries are left.
    private func settle(_ outcomes: [(String, BatchItemOutcome)], batch: String) {
        var deliveries: [(Answer, Result<EngineReply, any Error>)] = []
        state.withLock { state in
            for (id, outcome) in outcomes {
                // Only the batch an item is in now decides it (a resumed run may list it in older ones).
                guard var pending = state.pending[id], pending.batch == nil || pending.batch == batch else { continue }
                switch outcome {
                case .succeeded(let body):
                    state.pending[id] = nil
                    state.counts.itemsSucceeded += 1
                    let reply = EngineReply(body: body)
                    if pending.answers.isEmpty {
                        state.answered[id] = reply
                    } else {
                        deliveries += pending.answers.map { ($0, .success(reply)) }
                    }
                case .failed(let message), .unanswered(let message):
                    if case .failed = outcome {
                        state.counts.itemsFailed += 1
                    } else {
                        state.counts.itemsUnanswered += 1
                    }
                    guard pending.item != nil else {
                        // Nobody asked for it yet: queued when asked for.
                        state.pending[id] = nil
                        continue
                    }
                    if pending.resubmissions < options.maxRetries {
                        pending.resubmissions += 1
                        pending.batch = nil
                        if !pending.queued {
                            pending.queued = true
                            state.queue.append(id)
                        }
                        state.pending[id] = pending
                        state.counts.itemsResubmitted += 1
                    } else {
                        state.pending[id] = nil
                        let error = LabelForgeError(
                            .engineHTTP,
                            "\(engine) (\(provider.name) batch \(batch)): \(message); submitted \(pending.resubmissions + 1) "
                                + "time(s) (max_retries \(options.maxRetries)). Resume the run to try it again.")
                        deliveries += pending.answers.map { ($0, .failure(error)) }
                    }
                }
            }
        }
        for (answer, result) in deliveries { answer.fulfil(result) }
    }

    /// The run was interrupted (or its ledger could not be written): every caller gets `error`;
    /// when interrupted, the open batches are cancelled at the provider (from a task of its own,
    /// since this one is cancelled).
    private func abandon(_ error: any Error, cancellingBatches: Bool) async {
        let (open, answers) = state.withLock { state -> ([Open], [Answer]) in
            defer {
                state.open = []
                state.queue = []
                state.pending = [:]
                state.unconfirmed = []
                state.driving = false
            }
            return (cancellingBatches ? state.open : [], state.pending.values.flatMap(\.answers))
        }
        await Task { [provider, logger, engine] in
            for batch in open {
                do {
                    try await provider.cancel(batch.id)
                    logger.notice("batch \(batch.id) (\(engine)): cancelled, the run was interrupted")
                } catch {
                    logger.warning("batch \(batch.id) (\(engine)) could not be cancelled: \(error)")
                }
            }
        }.value
        for answer in answers { answer.fulfil(.failure(error)) }
    }

    /// The provider and its limits, for the manifest and the cache entries it answers.
    public func selfReport(dialect: EngineDialect) async -> JSONValue {
        [
            "dialect": .string(dialect.name), "batch_provider": .string(provider.name),
        ]
    }
}
