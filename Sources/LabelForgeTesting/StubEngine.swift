import Foundation
import LabelForgeCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// What the stub answers to one chat-completion request.
public enum StubAnswer: Sendable {
    /// A 200 response whose message content is this text.
    case content(String)
    /// An error response in vLLM's error shape.
    case error(status: Int, message: String)
}

/// An HTTP server that speaks vLLM's OpenAI-compatible wire format, for what no real engine here
/// can do: a VLM (`StubEngine.vision()`), faults on demand, and servers that ignore `response_format`.
///
/// Binds `127.0.0.1:0`; read `baseURL` for the port. Routes: `POST /v1/chat/completions`,
/// `POST /v1/embeddings`, `POST /v1/rerank`, `POST /tokenize`, `GET /v1/models`, `GET /version`, `GET /health`. Validates messages and image parts as vLLM does
/// and answers errors in vLLM's shape, `{"error": {message, type, param, code}}`. Counts every chat
/// request it receives.
public final class StubEngine: Sendable {
    public let model: String
    private let channel: NIOLockedValueBox<Channel>
    let state: NIOLockedValueBox<State>
    /// The port the stub listens on (the same after `restart(after:)`).
    public let port: Int
    private let bind: @Sendable (Int) async throws -> Channel

    struct State {
        var chatRequests = 0
        /// Chat completions answered with a 200 whose bytes all went out.
        var chatAnswered = 0
        var authorizations: [String] = []
        var bodies: [JSONValue] = []
        var embeddingInputs: [[String]] = []
        /// The `truncate_prompt_tokens` of each `/v1/embeddings` request (nil where absent).
        var embeddingLimits: [Int?] = []
        var tokenizeRequests = 0
        var rerankRequests: [[String]] = []
        var faults = FaultLedger(seed: 0)
        /// Every connection accepted, so a restart can close them as a stopped server would.
        var connections: [Channel] = []
        /// What `GET /server_info` answers (vLLM with VLLM_SERVER_DEV_MODE=1); 404 when nil.
        var serverInfo: JSONValue? = nil
        /// Chat requests past this count are answered only on `releaseHeld()`.
        var holdFrom: Int? = nil
        var held: [@Sendable () -> Void] = []
    }

    /// Holds back the answers to chat requests after the next `count` until `releaseHeld()`, so a
    /// test can act at a known point of a run (kill it mid-run) whatever the machine's load.
    public func holdAnswers(after count: Int) {
        state.withLockedValue { $0.holdFrom = $0.chatRequests + count }
    }

    /// Answers every held request (to connections that may be gone) and stops holding.
    public func releaseHeld() {
        let held = state.withLockedValue { state in
            defer {
                state.held = []
                state.holdFrom = nil
            }
            return state.held
        }
        for answer in held { answer() }
    }

    /// Makes `GET /server_info` answer `info`, as vLLM does in dev mode:
    /// `{"vllm_config": {…}, "vllm_env": {"VLLM_…": …}, "system_env": {…}}`.
    public func serveServerInfo(_ info: JSONValue) { state.withLockedValue { $0.serverInfo = info } }

    /// The documents of each `/v1/rerank` request received, in arrival order.
    public var rerankRequests: [[String]] { state.withLockedValue { $0.rerankRequests } }

    /// How many `/tokenize` requests arrived.
    public var tokenizeRequests: Int { state.withLockedValue { $0.tokenizeRequests } }

    /// The inputs of each `/v1/embeddings` request received, in arrival order.
    public var embeddingRequests: [[String]] { state.withLockedValue { $0.embeddingInputs } }

    /// The `truncate_prompt_tokens` of each `/v1/embeddings` request, in arrival order (nil: none).
    public var embeddingLimits: [Int?] { state.withLockedValue { $0.embeddingLimits } }

    /// The stub's embedding of a text: 8 dimensions derived from its SHA-256, L2-normalized, so
    /// equal texts get equal vectors and different texts (almost surely) different ones.
    public static func embedding(of text: String) -> [Float] {
        let digest = Array(ContentHash.hex(Data(text.utf8)).utf8)
        let raw = (0..<8).map { Float(Int(digest[$0 * 2]) - 80) + Float(Int(digest[$0 * 2 + 1]) % 7) / 7 }
        let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return raw.map { $0 / norm }
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// Chat requests received so far.
    public var chatRequests: Int { state.withLockedValue { $0.chatRequests } }
    /// Chat completions answered so far (HTTP 200, written in full): a request that arrived but
    /// whose answer a stop or a fault cut off is not counted.
    public var chatAnswered: Int { state.withLockedValue { $0.chatAnswered } }
    /// `Authorization` header values received (tests use this to prove the key was sent).
    public var authorizations: [String] { state.withLockedValue { $0.authorizations } }
    /// Request bodies received, in arrival order.
    public var bodies: [JSONValue] { state.withLockedValue { $0.bodies } }

    /// Starts the stub.
    /// - Parameter answer: decides the reply to each chat request from its body; the default
    ///   follows the request's constraint (first choice, or an object that fits the schema).
    /// - Parameter imageLimit: images allowed per prompt, like vLLM's `--limit-mm-per-prompt`.
    /// - Parameter faults: faults to inject into chat completions (`StubEngine+Faults.swift`).
    /// - Parameter port: the port to bind; 0 picks a free one.
    /// - Parameter apiKey: when set, chat requests without `Authorization: Bearer <apiKey>` get a
    ///   401 whose message echoes the token they sent, as OpenAI's API does.
    /// - Parameter maxModelLen: the longest embedding input or rerank pair, in the stub's tokens
    ///   (`StubEngine.tokens`, plus 2 special tokens a text and 3 a pair), as vLLM enforces
    ///   `max_model_len`: a longer one is a 400 unless the request's `truncate_prompt_tokens` cuts it.
    public static func start(
        model: String = "stub-model", delay: Duration = .zero, imageLimit: Int = 4, faults: StubFaults? = nil,
        port: Int = 0, apiKey: String? = nil, maxModelLen: Int = 4096,
        answer: @escaping @Sendable (JSONValue) -> StubAnswer = StubEngine.followConstraint
    ) async throws -> StubEngine {
        let state = NIOLockedValueBox(State())
        if let faults { state.withLockedValue { $0.faults = FaultLedger(seed: faults.seed) } }
        let bind: @Sendable (Int) async throws -> Channel = { port in
            try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    state.withLockedValue { $0.connections.append(channel) }
                    return channel.pipeline.configureHTTPServerPipeline().flatMap {
                        channel.pipeline.addHandler(
                            StubHandler(
                                model: model, delay: delay, imageLimit: imageLimit, faults: faults, apiKey: apiKey,
                                maxModelLen: maxModelLen, state: state, answer: answer))
                    }
                }
                .bind(host: "127.0.0.1", port: port).get()
        }
        let channel = try await bind(port)
        return StubEngine(model: model, channel: channel, state: state, bind: bind)
    }

    private init(
        model: String, channel: Channel, state: NIOLockedValueBox<State>,
        bind: @escaping @Sendable (Int) async throws -> Channel
    ) {
        self.model = model
        self.port = channel.localAddress!.port!
        self.channel = NIOLockedValueBox(channel)
        self.state = state
        self.bind = bind
    }

    public func stop() async {
        try? await channel.withLockedValue { $0 }.close()
        for connection in state.withLockedValue({ $0.connections }) { try? await connection.close() }
    }

    /// Stops serving (closing the listening socket and every open connection, as a crashed
    /// server would), waits `downtime`, and serves again on the same port.
    public func restart(after downtime: Duration) async throws {
        await stop()
        state.withLockedValue { $0.connections.removeAll() }
        try await Task.sleep(for: downtime)
        let fresh = try await bind(port)
        channel.withLockedValue { $0 = fresh }
    }

    /// Answers the way a compliant server would: the first allowed choice, or the simplest
    /// object that satisfies the `response_format` schema.
    @Sendable public static func followConstraint(_ body: JSONValue) -> StubAnswer {
        if let choices = body["structured_outputs"]?["choice"]?.arrayValue, let first = choices.first?.stringValue {
            return .content(first)
        }
        if let schema = schema(in: body) {
            return .content(CanonicalJSON.string(example(of: schema)))
        }
        return .content("ok")
    }

    /// Follows the constraint like `followConstraint`, but picks among the allowed values by the
    /// request's seed, so different rows get different, reproducible answers.
    @Sendable public static func followConstraintBySeed(_ body: JSONValue) -> StubAnswer {
        let pick = body["seed"]?.intValue ?? 0
        if let choices = body["structured_outputs"]?["choice"]?.arrayValue, !choices.isEmpty {
            return .content(choices[pick % choices.count].stringValue ?? "")
        }
        if let schema = schema(in: body) {
            return .content(CanonicalJSON.string(example(of: schema, pick: pick)))
        }
        return .content("answer \(pick)")
    }

    /// Follows the constraint, picking among the allowed values by the request's messages, so the
    /// answer stays the same when only the seed changes (a validation retry gets the answer the
    /// first try would have got from a well-behaved server).
    @Sendable public static func followConstraintByContent(_ body: JSONValue) -> StubAnswer {
        let digest = ContentHash.hex(CanonicalJSON.data(body["messages"] ?? nil))
        let pick = Int(digest.prefix(6), radix: 16) ?? 0
        if let choices = body["structured_outputs"]?["choice"]?.arrayValue, !choices.isEmpty {
            return .content(choices[pick % choices.count].stringValue ?? "")
        }
        if let schema = schema(in: body) {
            return .content(CanonicalJSON.string(example(of: schema, pick: pick)))
        }
        return .content("answer \(pick % 97)")
    }

    /// Whether a request constrains its answer (a choice or a schema).
    static func isConstrained(_ body: JSONValue) -> Bool {
        body["structured_outputs"] != nil || body["response_format"] != nil
    }

    /// The JSON schema a request constrains its answer to, in either of vLLM's forms:
    /// `structured_outputs.json` or `response_format` json_schema.
    public static func schema(in body: JSONValue) -> JSONValue? {
        body["structured_outputs"]?["json"] ?? body["response_format"]?["json_schema"]?["schema"]
    }

    /// The simplest value that satisfies a schema; `pick` chooses among enum values.
    public static func example(of schema: JSONValue, pick: Int = 0) -> JSONValue {
        if let values = schema["enum"]?.arrayValue, !values.isEmpty { return values[pick % values.count] }
        switch schema["type"]?.stringValue {
        case "object":
            var object: [String: JSONValue] = [:]
            for (name, sub) in schema["properties"]?.objectValue ?? [:] { object[name] = example(of: sub, pick: pick) }
            return .object(object)
        case "array": return .array([example(of: schema["items"] ?? [:], pick: pick)])
        case "boolean": return .bool(pick % 2 == 1)
        case "integer", "number": return .int(Int64(schema["minimum"]?.intValue ?? 0))
        default: return "x"
        }
    }
}

private final class StubHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let model: String
    let delay: Duration
    let imageLimit: Int
    let maxModelLen: Int
    let faults: StubFaults?
    let apiKey: String?
    let state: NIOLockedValueBox<StubEngine.State>
    let answer: @Sendable (JSONValue) -> StubAnswer
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(
        model: String, delay: Duration, imageLimit: Int, faults: StubFaults?, apiKey: String?, maxModelLen: Int,
        state: NIOLockedValueBox<StubEngine.State>, answer: @escaping @Sendable (JSONValue) -> StubAnswer
    ) {
        self.maxModelLen = maxModelLen
        self.apiKey = apiKey
        self.model = model
        self.delay = delay
        self.imageLimit = imageLimit
        self.faults = faults
        self.state = state
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            var fault: StubFault?
            if let faults, head.method == .POST, head.uri == "/v1/chat/completions" {
                let bytes = Data(body.readableBytesView)
                let constrained = (try? JSONValue.parse(bytes)).map(StubEngine.isConstrained) ?? false
                fault = state.withLockedValue {
                    $0.faults.arrival(of: ContentHash.hex(bytes), constrained: constrained, faults: faults)
                }
            }
            var (status, reply) = route(head, fault: fault)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            var contentLength = reply.count
            var closeAfter = false
            switch fault {
            case .http429?: headers.add(name: "Retry-After", value: String(faults!.retryAfterSeconds))
            case .truncatedJSON?:
                reply = Array(reply.prefix(reply.count / 2))
                contentLength = reply.count
            case .droppedMidBody?:
                reply = Array(reply.prefix(reply.count / 2))
                closeAfter = true
            case .invalidUTF8?:
                if status == 200 { reply = StubEngine.invalidUTF8Completion(model: model) }
                contentLength = reply.count
            default: break
            }
            headers.add(name: "Content-Length", value: String(contentLength))
            let responseHead = HTTPResponseHead(
                version: head.version, status: .init(statusCode: status), headers: headers)
            let respond = {
                context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
                if closeAfter {
                    let channel = context.channel
                    context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply)))))
                        .whenComplete { _ in channel.close(promise: nil) }
                    return
                }
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply)))), promise: nil)
                let answered = status == 200 && head.uri == "/v1/chat/completions" && fault == nil
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenSuccess {
                    if answered { self.state.withLockedValue { $0.chatAnswered += 1 } }
                }
            }
            let loop = context.eventLoop
            let bound = NIOLoopBound(respond, eventLoop: loop)
            let held = state.withLockedValue { state -> Bool in
                guard head.uri == "/v1/chat/completions", let from = state.holdFrom, state.chatRequests > from else {
                    return false
                }
                state.held.append { loop.execute { bound.value() } }
                return true
            }
            if held { return }
            let wait = fault == .slow ? faults!.slowDelay : (head.method == .POST ? delay : .zero)
            if wait == .zero {
                respond()
            } else {
                let nanoseconds = Int64(wait / .nanoseconds(1))
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) { respond() }
            }
        }
    }

    private func route(_ head: HTTPRequestHead, fault: StubFault?) -> (Int, [UInt8]) {
        switch fault {
        case .http500?: return error(500, "EngineCore encountered an issue.", type: "InternalServerError")
        case .http503?: return error(503, "The server is overloaded; try again later.", type: "ServiceUnavailableError")
        case .http429?: return error(429, "Too many requests.", type: "RateLimitError")
        default: break
        }
        if head.method == .GET, head.uri.hasPrefix("/server_info"),
            let info = state.withLockedValue({ $0.serverInfo })
        {
            return (200, Array(CanonicalJSON.data(info)))
        }
        switch (head.method, head.uri) {
        case (.GET, "/health"):
            return (200, [])
        case (.GET, "/version"):
            return (200, Array(#"{"version":"0.12.0"}"#.utf8))
        case (.GET, "/v1/models"):
            let models: JSONValue = [
                "object": "list",
                "data": [
                    [
                        "id": .string(model), "object": "model", "created": 0, "owned_by": "vllm",
                        "root": .string(model), "parent": nil, "max_model_len": .int(Int64(maxModelLen)),
                        "permission": [],
                    ]
                ],
            ]
            return (200, Array(CanonicalJSON.data(models)))
        case (.POST, "/v1/chat/completions"):
            return chat(head, ignoringConstraint: fault == .ignoresSchema)
        case (.POST, "/v1/embeddings"):
            return embeddings()
        case (.POST, "/v1/rerank"), (.POST, "/rerank"):
            return rerank()
        case (.POST, "/score"), (.POST, "/v1/score"):
            return score()
        case (.POST, "/tokenize"):
            return tokenize()
        default:
            return error(404, "Not Found", type: "NotFoundError")
        }
    }

    private func chat(_ head: HTTPRequestHead, ignoringConstraint: Bool = false) -> (Int, [UInt8]) {
        let data = Data(body.readableBytesView)
        guard let request = try? JSONValue.parse(data), request.objectValue != nil else {
            return error(400, "Expecting value: line 1 column 1 (char 0)", type: "BadRequestError")
        }
        state.withLockedValue {
            $0.chatRequests += 1
            $0.bodies.append(request)
            if let auth = head.headers.first(name: "Authorization") { $0.authorizations.append(auth) }
        }
        if let apiKey, head.headers.first(name: "Authorization") != "Bearer \(apiKey)" {
            let sent = head.headers.first(name: "Authorization") ?? "(none)"
            return error(
                401, "Incorrect API key provided: \(sent). You can find your API key at https://example.invalid/keys.",
                type: "AuthenticationError")
        }
        guard let messages = request["messages"]?.arrayValue, !messages.isEmpty else {
            return error(400, "messages: Field required", type: "BadRequestError")
        }
        if request["guided_json"] != nil || request["guided_choice"] != nil {
            // vLLM ≥ 0.12 ignores these silently; the stub refuses them so no test can rely on them.
            return error(400, "guided_* fields were removed in vLLM 0.12", type: "BadRequestError")
        }
        do {
            try StubEngine.validateMessages(messages, imageLimit: imageLimit)
        } catch {
            return self.error(error.status, error.message, type: "BadRequestError")
        }
        // vLLM refuses a prompt longer than the model's context (max_model_len 4096 here); the
        // stub counts a token per 4 bytes of message text.
        let textBytes = messages.reduce(0) { total, message in
            total
                + (message["content"]?.stringValue?.utf8.count
                    ?? (message["content"]?.arrayValue ?? []).reduce(0) {
                        $0 + ($1["text"]?.stringValue?.utf8.count ?? 0)
                    })
        }
        if textBytes / 4 > 4096 {
            return error(
                400,
                "This model's maximum context length is 4096 tokens. However, your request has \(textBytes / 4) "
                    + "input tokens. Please reduce the length of the input messages.", type: "BadRequestError")
        }
        switch ignoringConstraint ? .content("Sure! Here is my answer, in prose rather than JSON.") : answer(request) {
        case .error(let status, let message):
            let type =
                [400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"][status] ?? "InternalServerError"
            return error(status, message, type: type)
        case .content(let text):
            return (200, Array(CanonicalJSON.data(StubEngine.completion(for: request, text: text, model: model))))
        }
    }

    /// vLLM's `/v1/embeddings`: `input` a string or a non-empty list of strings, `model` the
    /// served one; the answer lists one `embedding` per input with its `index`.
    /// vLLM's `/tokenize`: `{model, messages}` (or `{model, prompt}`) → `{count, max_model_len,
    /// tokens}`. The stub's tokens are those of `StubEngine.tokens` over the messages' texts.
    private func tokenize() -> (Int, [UInt8]) {
        guard let request = try? JSONValue.parse(Data(body.readableBytesView)), request.objectValue != nil else {
            return error(400, "Expecting value: line 1 column 1 (char 0)", type: "BadRequestError")
        }
        guard request["model"]?.stringValue == model else {
            return error(404, "The model `\(request["model"]?.textForm ?? "")` does not exist.", type: "NotFoundError")
        }
        var text = request["prompt"]?.stringValue ?? ""
        for message in request["messages"]?.arrayValue ?? [] {
            if let content = message["content"]?.stringValue { text += content + "\n" }
            for part in message["content"]?.arrayValue ?? [] { text += (part["text"]?.stringValue ?? "") + "\n" }
        }
        state.withLockedValue { $0.tokenizeRequests += 1 }
        // A prompt gets the model's 2 special tokens unless add_special_tokens is false.
        let specials = request["prompt"] != nil && request["add_special_tokens"]?.boolValue != false ? 2 : 0
        let tokens = StubEngine.tokens(text) + Array(repeating: "", count: specials)
        let reply: JSONValue = [
            "count": .int(Int64(tokens.count)), "max_model_len": .int(Int64(maxModelLen)),
            "tokens": .array(tokens.indices.map { .int(Int64($0)) }),
        ]
        return (200, Array(CanonicalJSON.data(reply)))
    }

    private func embeddings() -> (Int, [UInt8]) {
        let data = Data(body.readableBytesView)
        guard let request = try? JSONValue.parse(data), request.objectValue != nil else {
            return error(400, "Expecting value: line 1 column 1 (char 0)", type: "BadRequestError")
        }
        guard request["model"]?.stringValue == model else {
            return error(404, "The model `\(request["model"]?.textForm ?? "")` does not exist.", type: "NotFoundError")
        }
        var inputs: [String]
        if let text = request["input"]?.stringValue {
            inputs = [text]
        } else if let items = request["input"]?.arrayValue, !items.isEmpty, items.allSatisfy({ $0.stringValue != nil })
        {
            inputs = items.compactMap(\.stringValue)
        } else {
            return error(400, "input: Input should be a valid string or list of strings", type: "BadRequestError")
        }
        if let format = request["encoding_format"]?.stringValue, !["float", "base64"].contains(format) {
            return error(400, "encoding_format: Input should be 'float' or 'base64'", type: "BadRequestError")
        }
        state.withLockedValue {
            $0.embeddingInputs.append(inputs)
            $0.embeddingLimits.append(request["truncate_prompt_tokens"]?.intValue)
        }
        var cut: [String] = []
        for text in inputs {
            switch fit(text, specials: 2, truncate: request["truncate_prompt_tokens"]?.intValue, kind: "embedding") {
            case .success(let text): cut.append(text)
            case .failure(let refusal): return refusal.reply
            }
        }
        inputs = cut
        let tokens = Int64(inputs.reduce(0) { $0 + StubEngine.tokens($1).count })
        let reply: JSONValue = [
            "id": "embd-stub", "object": "list", "created": 0, "model": .string(model),
            "data": .array(
                inputs.enumerated().map { index, text in
                    [
                        "index": .int(Int64(index)), "object": "embedding",
                        "embedding": .array(StubEngine.embedding(of: text).map { .double(Double($0)) }),
                    ]
                }),
            "usage": [
                "prompt_tokens": .int(tokens), "total_tokens": .int(tokens), "completion_tokens": 0,
                "prompt_tokens_details": nil,
            ],
        ]
        return (200, Array(CanonicalJSON.data(reply)))
    }

    /// vLLM's `/v1/rerank`: `query` a string, `documents` a non-empty list of strings; results
    /// `{index, document: {text}, relevance_score}` sorted by score, best first (top_n of them).
    /// The score is the cosine of the stub's embeddings of query and document.
    private func rerank() -> (Int, [UInt8]) {
        let data = Data(body.readableBytesView)
        guard let request = try? JSONValue.parse(data), request.objectValue != nil else {
            return error(400, "Expecting value: line 1 column 1 (char 0)", type: "BadRequestError")
        }
        guard request["model"]?.stringValue == model else {
            return error(404, "The model `\(request["model"]?.textForm ?? "")` does not exist.", type: "NotFoundError")
        }
        guard let query = request["query"]?.stringValue, let documents = request["documents"]?.arrayValue,
            !documents.isEmpty, documents.allSatisfy({ $0.stringValue != nil })
        else {
            return error(400, "query and documents: a string and a non-empty list of strings", type: "BadRequestError")
        }
        var texts = documents.compactMap(\.stringValue)
        state.withLockedValue { $0.rerankRequests.append(texts) }
        var cut: [String] = []
        for text in texts {
            let queryTokens = StubEngine.tokens(query).count
            switch fit(
                text, specials: 3 + queryTokens, truncate: request["truncate_prompt_tokens"]?.intValue, kind: "score")
            {
            case .success(let text): cut.append(text)
            case .failure(let refusal): return refusal.reply
            }
        }
        texts = cut
        let q = StubEngine.embedding(of: query)
        let scored = texts.enumerated().map { index, text in
            (index, text, Double(zip(q, StubEngine.embedding(of: text)).reduce(Float(0)) { $0 + $1.0 * $1.1 }))
        }.sorted { $0.2 > $1.2 }
        let topN = request["top_n"]?.intValue ?? texts.count
        let reply: JSONValue = [
            "id": "rerank-stub", "model": .string(model), "usage": ["total_tokens": .int(Int64(texts.count * 8))],
            "results": .array(
                scored.prefix(topN).map { index, text, score in
                    [
                        "index": .int(Int64(index)), "document": ["text": .string(text)],
                        "relevance_score": .double(score),
                    ]
                }),
        ]
        return (200, Array(CanonicalJSON.data(reply)))
    }

    private struct Refusal: Error {
        var reply: (Int, [UInt8])
    }

    /// A text as vLLM fits it to `max_model_len`: cut to `truncate` tokens (−1: the model's maximum)
    /// when asked, else refused with vLLM's 400 when over. `specials` are the tokens around it.
    private func fit(_ text: String, specials: Int, truncate: Int?, kind: String) -> Result<String, Refusal> {
        let tokens = StubEngine.tokens(text)
        let count = tokens.count + specials
        if let truncate {
            let limit = truncate == -1 ? maxModelLen : truncate
            guard limit <= maxModelLen else {
                return .failure(
                    Refusal(
                        reply: error(
                            400,
                            "truncate_prompt_tokens value (\(truncate)) is greater than max_model_len "
                                + "(\(maxModelLen)). Please request a smaller truncation size.",
                            type: "BadRequestError")))
            }
            return .success(count > limit ? tokens.prefix(max(0, limit - specials)).joined() : text)
        }
        guard count <= maxModelLen else {
            return .failure(
                Refusal(
                    reply: error(
                        400,
                        "This model's maximum context length is \(maxModelLen) tokens. However, you requested \(count) "
                            + "tokens in the input for \(kind) generation. Please reduce the length of the input.",
                        type: "BadRequestError")))
        }
        return .success(text)
    }

    /// vLLM's `/score`: `text_1` a string, `text_2` a string or a list; `data[] {index, object:
    /// "score", score}` in `text_2`'s order. Same scores as `/v1/rerank`.
    private func score() -> (Int, [UInt8]) {
        let data = Data(body.readableBytesView)
        guard let request = try? JSONValue.parse(data), request["model"]?.stringValue == model,
            let query = request["text_1"]?.stringValue
        else {
            return error(400, "text_1: Field required", type: "BadRequestError")
        }
        let texts =
            request["text_2"]?.arrayValue?.compactMap(\.stringValue) ?? request["text_2"]?.stringValue.map { [$0] }
            ?? []
        guard !texts.isEmpty else { return error(400, "text_2: Field required", type: "BadRequestError") }
        state.withLockedValue { $0.rerankRequests.append(texts) }
        let q = StubEngine.embedding(of: query)
        let reply: JSONValue = [
            "id": "score-stub", "object": "list", "created": 0, "model": .string(model),
            "data": .array(
                texts.enumerated().map { index, text in
                    [
                        "index": .int(Int64(index)), "object": "score",
                        "score": .double(
                            Double(zip(q, StubEngine.embedding(of: text)).reduce(Float(0)) { $0 + $1.0 * $1.1 })),
                    ]
                }),
            "usage": ["prompt_tokens": .int(Int64(texts.count * 8)), "total_tokens": .int(Int64(texts.count * 8))],
        ]
        return (200, Array(CanonicalJSON.data(reply)))
    }

    private func error(_ status: Int, _ message: String, type: String) -> (Int, [UInt8]) {
        let body: JSONValue = [
            "error": ["message": .string(message), "type": .string(type), "param": nil, "code": .int(Int64(status))]
        ]
        return (status, Array(CanonicalJSON.data(body)))
    }
}

extension StubEngine {
    /// The chat completion the stub answers `request` with when its text is `text`: the message,
    /// log-probabilities when asked for, usage (a prompt token per 4 bytes of the messages' JSON, a
    /// completion token per `StubEngine.tokens`). The batch stub answers its items with the same.
    public static func completion(for request: JSONValue, text: String, model: String) -> JSONValue {
        let tokens = tokens(text)
        var choice: [String: JSONValue] = [
            "index": 0,
            "message": [
                "role": "assistant", "content": .string(text), "refusal": nil, "tool_calls": [],
                "reasoning_content": nil,
            ],
            "logprobs": nil, "finish_reason": "stop", "stop_reason": nil,
        ]
        if request["logprobs"]?.boolValue == true {
            let k = request["top_logprobs"]?.intValue ?? 0
            choice["logprobs"] = [
                "content": .array(
                    tokens.map { token in
                        [
                            "token": .string(token),
                            "logprob": .double(alternatives(for: token, count: 1)[0].1),
                            "bytes": .array(token.utf8.map { .int(Int64($0)) }),
                            "top_logprobs": .array(
                                alternatives(for: token, count: k).map { t, logprob in
                                    [
                                        "token": .string(t), "logprob": .double(logprob),
                                        "bytes": .array(t.utf8.map { .int(Int64($0)) }),
                                    ]
                                }),
                        ]
                    })
            ]
        }
        let promptTokens = Int64(CanonicalJSON.string(request["messages"]!).count / 4)
        let reply: JSONValue = [
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": .string(model),
            "choices": [.object(choice)],
            "usage": [
                "prompt_tokens": .int(promptTokens), "completion_tokens": .int(Int64(tokens.count)),
                "total_tokens": .int(promptTokens + Int64(tokens.count)), "prompt_tokens_details": nil,
            ],
            "prompt_logprobs": nil, "kv_transfer_params": nil,
        ]
        return reply
    }
}
