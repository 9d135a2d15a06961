import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import Logging
import Synchronization

/// `labelforge plan`'s engines: nothing is started and nothing is sent. Each engine's transport is a
/// `PlanTransport`, which answers no request: it refuses each with a `cache_miss` that says the
/// prompt tokens the request would cost. A vLLM or llama.cpp server of the config that is already up
/// counts a chat prompt's tokens with its `/tokenize`; an embedding or rerank server that is up
/// reports its window, as the run would ask it (the window is part of every key).
final class PlanEngines: EngineProvider {
    let logger: Logger
    private let tokenizing = Mutex<[String]>([])

    init(logger: Logger) { self.logger = logger }

    /// The engines whose `/tokenize` counted prompt tokens, by name.
    var tokenizedBy: [String] { tokenizing.withLock { $0.sorted() } }

    func withEngines<T: Sendable>(
        for plan: RunPlan, logPath: String, ledger: (any BatchLedger)?, _ body: (EngineSet) async throws -> T
    ) async throws -> T {
        let tokenizers = await tokenizers(for: plan)
        let infos = await windows(for: plan)
        tokenizing.withLock { $0 = Array(tokenizers.keys) }
        var handles: [String: EngineHandle] = [:]
        for engine in plan.usedEngines {
            let dialect = EngineDialect(name: engine.dialect)!
            handles[engine.name] = EngineHandle(
                config: engine, dialect: dialect,
                transport: PlanTransport(
                    name: engine.name, dialect: dialect, tokenizer: tokenizers[engine.name], info: infos[engine.name]),
                model: plan.model(of: engine), launcher: nil, recordsLauncher: false)
        }
        return try await EngineSet(handles: handles).serving(body)
    }

    /// vLLM and llama.cpp servers already up count prompt tokens with `/tokenize`, by engine name;
    /// nothing is started for it.
    private func tokenizers(for plan: RunPlan) async -> [String: OpenAIClient] {
        var tokenizers: [String: OpenAIClient] = [:]
        let chatEngines = Set(
            plan.config.stages.filter { $0.engineTask == "chat" }.map(\.engine))
        for engine in plan.config.engines
        where engine.kind.name == .openai && ["vllm", "llamacpp"].contains(engine.dialect)
            && chatEngines.contains(engine.name)
        {
            var options = LiveEngines(logger: logger).endpointOptions(engine, baseURLs: engine.baseURLs)
            options.maxRetries = 0
            options.requestTimeout = .seconds(10)
            let client = OpenAIClient(options: options, logger: logger)
            if (try? await client.checkReachable()) != nil {
                tokenizers[engine.name] = client
            } else {
                await client.shutdown()
            }
        }
        return tokenizers
    }

    /// What remote embedding and rerank servers report, for the window their requests are cut to
    /// (part of every key): the run asks them the same.
    private func windows(for plan: RunPlan) async -> [String: JSONValue] {
        var infos: [String: JSONValue] = [:]
        let windowEngines = Set(plan.graph.order.filter { $0.truncation != nil }.map(\.config.engine))
        for engine in plan.config.engines where engine.kind.name == .openai && windowEngines.contains(engine.name) {
            var options = LiveEngines(logger: logger).endpointOptions(engine, baseURLs: engine.baseURLs)
            options.maxRetries = 0
            options.requestTimeout = .seconds(10)
            let client = OpenAIClient(options: options, logger: logger)
            if (try? await client.checkReachable()) != nil {
                infos[engine.name] = await EngineInfo.probe(
                    client: client, dialect: EngineDialect(name: engine.dialect)!)
            }
            await client.shutdown()
        }
        return infos
    }
}

/// The transport of an engine under `labelforge plan`: refuses every request the cache lacks with a
/// `cache_miss` whose `promptTokens` says what it would cost. A chat prompt is counted by the
/// server's `/tokenize` where `tokenizer` reaches one, else estimated from its text (4 characters a
/// token); an embedding or rerank request is estimated from its texts.
struct PlanTransport: EngineTransport {
    let name: String
    let dialect: EngineDialect
    let tokenizer: OpenAIClient?
    /// What the server reported (its window), when `plan` reached it.
    let info: JSONValue?

    func send(_ request: EngineRequest) async throws -> EngineReply {
        var miss = LabelForgeError(
            .cacheMiss, "engine '\(name)': no cached response (labelforge plan sends nothing)")
        miss.promptTokens = await promptTokens(of: request)
        throw miss
    }

    var requestsSent: Int { 0 }

    func selfReport(dialect: EngineDialect) async -> JSONValue { info ?? .null }

    func shutdown() async { await tokenizer?.shutdown() }

    /// The prompt tokens of a request the cache lacks.
    func promptTokens(of request: EngineRequest) async -> Int {
        let body = request.body
        switch request.kind {
        case .chat: return await PromptTokenCounter(tokenizer: tokenizer).promptTokens(of: body, dialect: dialect)
        case .embeddings: return Self.estimated(characters: Self.characters(body["input"]))
        case .rerank:
            return Self.estimated(characters: Self.characters(body["query"]) + Self.characters(body["documents"]))
        case .score:
            return Self.estimated(characters: Self.characters(body["text_1"]) + Self.characters(body["text_2"]))
        default: return 0
        }
    }

    /// Characters of a text or an array of texts.
    private static func characters(_ value: JSONValue?) -> Int {
        if let text = value?.stringValue { return text.count }
        return value?.arrayValue?.reduce(0) { $0 + ($1.stringValue?.count ?? 0) } ?? 0
    }

    /// Tokens estimated from characters: 4 to a token (about right for English with BPE tokenizers).
    private static func estimated(characters: Int) -> Int { (characters + 3) / 4 }
}
