import LabelForgeCore

/// What an engine request asks for; its name is part of the cache key, its path is where it goes.
///
/// A struct with static members rather than an enum, so new kinds never break callers.
public struct RequestKind: Hashable, Sendable, CustomStringConvertible {
    /// The `kind` recorded in cache keys and entries.
    public let name: String
    /// The HTTP path on an OpenAI-compatible server.
    public let path: String

    public var description: String { name }

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// `POST /v1/chat/completions`.
    public static let chat = RequestKind(name: "chat", path: "/v1/chat/completions")
    /// `POST /v1/embeddings`.
    public static let embeddings = RequestKind(name: "embeddings", path: "/v1/embeddings")
    /// `POST /v1/rerank`, the shape vLLM and llama.cpp share.
    public static let rerank = RequestKind(name: "rerank", path: "/v1/rerank")
    /// `POST /score`, vLLM's own scoring API (`text_1` against `text_2`).
    public static let score = RequestKind(name: "score", path: "/score")
    /// `POST /tokenize`: vLLM's token count of a chat prompt or a text, llama.cpp's tokens of a text
    /// (`labelforge plan`, `TruncatingTransport`; never cached).
    public static let tokenize = RequestKind(name: "tokenize", path: "/tokenize")
    /// `POST /detokenize`: llama.cpp's text of tokens (`TruncatingTransport`; never cached).
    public static let detokenize = RequestKind(name: "detokenize", path: "/detokenize")
    /// `POST /apply-template`: llama.cpp's chat prompt for messages (`labelforge plan`; never cached).
    public static let applyTemplate = RequestKind(name: "apply-template", path: "/apply-template")
}

/// One request as it goes on the wire: its kind and the body a dialect wrote.
public struct EngineRequest: Sendable, Hashable {
    public var kind: RequestKind
    public var body: JSONValue

    public init(kind: RequestKind, body: JSONValue) {
        self.kind = kind
        self.body = body
    }
}

/// Carries requests to an engine and brings back its JSON answer.
///
/// The HTTP transport is `OpenAIClient`; tests use an in-memory one (`InMemoryTransport` in
/// LabelForgeTesting), so orchestration is tested without sockets.
public protocol EngineTransport: Sendable {
    /// Sends one request, with the transport's own retry policy.
    /// - Throws: `LabelForgeError` when the engine cannot answer; `CancellationError` when cancelled.
    func send(_ request: EngineRequest) async throws -> EngineReply
    /// How many requests went out so far, retries included.
    var requestsSent: Int { get }
    /// Checks that the engine (or what fronts it, e.g. a Ray dashboard) answers, before any request.
    /// - Throws: `LabelForgeError` naming the engine's address when it does not. Nothing by default.
    func checkReachable() async throws
    /// What the engine reports about itself (version, model, settings), for the manifest and the
    /// cache entries it answers: the dialect alone by default.
    func selfReport(dialect: EngineDialect) async -> JSONValue
    /// Whether the transport reaches the server's `/tokenize`, so texts for an embedding or rerank
    /// model can be cut to its window on their way (`TruncatingTransport`). False by default.
    var reachesTokenizer: Bool { get }
    /// Releases what the transport holds (connections). Nothing by default.
    func shutdown() async
}

extension EngineTransport {
    public func checkReachable() async throws {}

    public func selfReport(dialect: EngineDialect) async -> JSONValue { ["dialect": .string(dialect.name)] }

    public var reachesTokenizer: Bool { false }

    public func shutdown() async {}
}

extension OpenAIClient: EngineTransport {
    public func send(_ request: EngineRequest) async throws -> EngineReply {
        try await post(path: request.kind.path, body: request.body)
    }

    /// The server answers `GET /v1/models`.
    public func checkReachable() async throws { try await checkReachable(path: "/v1/models") }

    /// `/props`, `/version` and `/v1/models` as `EngineInfo.probe` reads them.
    public func selfReport(dialect: EngineDialect) async -> JSONValue {
        await EngineInfo.probe(client: self, dialect: dialect)
    }

    public var reachesTokenizer: Bool { true }
}
