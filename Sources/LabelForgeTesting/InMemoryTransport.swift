import LabelForgeCore
import LabelForgeLLM
import NIOConcurrencyHelpers

/// An engine transport that answers in memory, so the kernel's orchestration (cache, single
/// flight, retries, fan-out) is tested without HTTP.
///
/// Records every request it is sent. An optional gate holds answers back until the test opens
/// it, so tests can line up concurrent callers deterministically.
public final class InMemoryTransport: EngineTransport {
    private let answer: @Sendable (EngineRequest) throws -> JSONValue
    private let state = NIOLockedValueBox(State())

    struct State {
        var requests: [EngineRequest] = []
        var gateOpen = true
        var held: [CheckedContinuation<Void, Never>] = []
    }

    /// - Parameters:
    ///   - gated: when true, every answer waits for `open()`.
    ///   - answer: the response body for a request; throw to simulate an engine error.
    public init(
        gated: Bool = false, answer: @escaping @Sendable (EngineRequest) throws -> JSONValue = InMemoryTransport.echo
    ) {
        self.answer = answer
        state.withLockedValue { $0.gateOpen = !gated }
    }

    public var requestsSent: Int { state.withLockedValue { $0.requests.count } }

    /// Requests received, in arrival order.
    public var requests: [EngineRequest] { state.withLockedValue { $0.requests } }

    public func send(_ request: EngineRequest) async throws -> EngineReply {
        await withCheckedContinuation { continuation in
            let proceed = state.withLockedValue { state -> Bool in
                state.requests.append(request)
                if state.gateOpen { return true }
                state.held.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
        return EngineReply(body: try answer(request))
    }

    /// Lets every held and future request through.
    public func open() {
        let held = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.gateOpen = true
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }

    /// A chat completion whose content says which request it answers, embeddings of the input's
    /// lengths, and rerank scores that prefer shorter documents.
    @Sendable public static func echo(_ request: EngineRequest) throws -> JSONValue {
        switch request.kind {
        case .embeddings:
            let inputs = request.body["input"]?.arrayValue ?? []
            return [
                "object": "list",
                "data": .array(
                    inputs.enumerated().map { index, text in
                        let length = Double(text.stringValue?.count ?? 0)
                        return [
                            "object": "embedding", "index": .int(Int64(index)),
                            "embedding": [.double(length), 1.0, -0.5],
                        ]
                    }),
                "usage": ["prompt_tokens": .int(Int64(inputs.count)), "total_tokens": .int(Int64(inputs.count))],
            ]
        case .rerank:
            let documents = request.body["documents"]?.arrayValue ?? []
            return [
                "results": .array(
                    documents.enumerated().map { index, text in
                        [
                            "index": .int(Int64(index)),
                            "relevance_score": .double(1.0 / Double(1 + (text.stringValue?.count ?? 0))),
                        ]
                    })
            ]
        default:
            return chatCompletion(content: "seed \(request.body["seed"]?.intValue ?? 0)")
        }
    }

    /// A chat-completion body in the OpenAI/vLLM shape with this content.
    public static func chatCompletion(content: String, finishReason: String = "stop") -> JSONValue {
        [
            "id": "chatcmpl-memory", "object": "chat.completion", "model": "memory",
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string(content)],
                    "finish_reason": .string(finishReason),
                ]
            ],
            "usage": ["prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5],
        ]
    }
}
