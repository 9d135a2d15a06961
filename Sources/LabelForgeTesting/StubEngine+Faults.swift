import Foundation
import LabelForgeCore

/// One kind of fault the stub can inject into a chat completion.
public enum StubFault: String, Sendable, CaseIterable, Comparable {
    /// HTTP 500 in vLLM's error shape.
    case http500 = "http_500"
    /// HTTP 503, what vLLM answers while it is overloaded or starting.
    case http503 = "http_503"
    /// HTTP 429 with a `Retry-After` header (seconds).
    case http429 = "http_429"
    /// A correct answer that comes later than the client's timeout.
    case slow
    /// The response head and half the body, then the connection is closed.
    case droppedMidBody = "dropped_mid_body"
    /// HTTP 200 whose JSON body is cut in half.
    case truncatedJSON = "truncated_json"
    /// HTTP 200 whose message content holds bytes that are not UTF-8.
    case invalidUTF8 = "invalid_utf8"
    /// HTTP 200 whose content ignores the request's choice or schema (only requests that have one).
    case ignoresSchema = "ignores_schema"

    public static func < (a: StubFault, b: StubFault) -> Bool { a.rawValue < b.rawValue }
}

/// Which faults the stub injects, and how often: each chat request draws at most one fault,
/// `rate` of them in all, spread evenly over `kinds`. Draws come from a seeded generator in
/// arrival order, so a run's faults are reproducible up to the order requests arrive in.
public struct StubFaults: Sendable {
    /// The fraction of chat requests that get a fault, 0…1.
    public var rate: Double
    public var kinds: [StubFault]
    public var seed: UInt64
    /// How late a `slow` answer comes (make it longer than the engine's `timeout_s`).
    public var slowDelay: Duration
    /// The `Retry-After` of a 429, in seconds.
    public var retryAfterSeconds: Int

    public init(
        rate: Double, kinds: [StubFault] = StubFault.allCases, seed: UInt64 = 1, slowDelay: Duration = .seconds(3),
        retryAfterSeconds: Int = 1
    ) {
        self.rate = rate
        self.kinds = kinds
        self.seed = seed
        self.slowDelay = slowDelay
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// What the stub saw of a run under faults.
public struct StubFaultReport: Sendable {
    /// Faults injected, by kind.
    public var injected: [StubFault: Int] = [:]
    /// Chat requests whose exact body had arrived before: the client's retries.
    public var resent = 0
    /// Requests that came back before the `Retry-After` of the 429 they got had passed.
    public var retryAfterViolations = 0
    /// Distinct chat request bodies whose last arrival got a fault (other than `ignoresSchema`):
    /// requests whose retries ran out.
    public var neverRetried = 0

    public var totalInjected: Int { injected.values.reduce(0, +) }
}

/// The stub's bookkeeping of faults, kept under its state lock.
struct FaultLedger: Sendable {
    var generator: SplitMix64
    var report = StubFaultReport()
    /// Request bodies seen (by hash), with the fault each one's last arrival got.
    var lastFault: [String: StubFault?] = [:]
    /// When each body that got a 429 may come back.
    var notBefore: [String: ContinuousClock.Instant] = [:]

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// Records one arrival of `bodyHash` and draws its fault; `ignoresSchema` only for a request
    /// that has a constraint to ignore.
    mutating func arrival(of bodyHash: String, constrained: Bool, faults: StubFaults) -> StubFault? {
        let now = ContinuousClock.now
        if lastFault[bodyHash] != nil {
            report.resent += 1
            if let due = notBefore[bodyHash], now < due { report.retryAfterViolations += 1 }
        }
        var fault: StubFault?
        if !faults.kinds.isEmpty, Double(generator.next() >> 11) / Double(1 << 53) < faults.rate {
            fault = faults.kinds[Int(generator.next() % UInt64(faults.kinds.count))]
            if fault == .ignoresSchema && !constrained { fault = nil }
        }
        lastFault[bodyHash] = .some(fault)
        if let fault { report.injected[fault, default: 0] += 1 }
        notBefore[bodyHash] = fault == .http429 ? now + .seconds(faults.retryAfterSeconds) : nil
        return fault
    }

    var finalReport: StubFaultReport {
        var report = report
        // A validation retry of an answer that ignored the schema is a new request (a new seed).
        report.neverRetried = lastFault.values.filter { $0 != nil && $0 != .ignoresSchema }.count
        return report
    }
}

extension StubEngine {
    /// What the stub injected and saw so far.
    public var faultReport: StubFaultReport { state.withLockedValue { $0.faults.finalReport } }

    /// A chat completion body whose message content holds the bytes 0xFF 0xFE, which no UTF-8
    /// text contains.
    static func invalidUTF8Completion(model: String) -> [UInt8] {
        let marker = "@@INVALID@@"
        let reply: JSONValue = [
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": .string(model),
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string(marker)],
                    "finish_reason": "stop",
                ]
            ],
            "usage": ["prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2],
        ]
        let text = CanonicalJSON.string(reply)
        let parts = text.components(separatedBy: marker)
        return Array(parts[0].utf8) + [0xFF, 0xFE] + Array(parts[1].utf8)
    }
}
