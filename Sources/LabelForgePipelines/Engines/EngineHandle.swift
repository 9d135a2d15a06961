import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import Logging

/// One configured engine, ready for requests.
struct EngineHandle: Sendable {
    var config: RunConfig.Engine
    var dialect: EngineDialect
    /// What carries this engine's requests: HTTP to its server (`OpenAIClient`), Ray jobs
    /// (`RayJobTransport`), or nothing at all for a run whose answers all come from the cache
    /// (`RecordedEngine`).
    var transport: any EngineTransport
    var model: ResolvedModel
    /// For `local` engines: which launcher ran the server.
    var launcher: String?
    /// Whether the engine's self-report records `launcher` (null but for a local engine): engines
    /// reached over HTTP do, Ray engines do not.
    var recordsLauncher = true

    /// The longest input the engine's model takes, in tokens: the GGUF file's for a local engine, else
    /// what the server reported (vLLM's `max_model_len`, llama.cpp's `n_ctx_train`); `nil` when unknown.
    func maxInputTokens(info: JSONValue) -> Int? {
        if let limit = model.maxInputTokens { return limit }
        let served = info["models"]?.arrayValue?.first
        return served?["max_model_len"]?.intValue ?? served?["n_ctx_train"]?.intValue
    }
}

/// The transport of an engine a run does not start: every answer comes from the cache (an offline
/// replay, a merge that stops at the first barrier, `labelforge plan`). Nothing is ever sent; a
/// request that reaches it is refused.
struct RecordedEngine: EngineTransport {
    var name: String

    func send(_ request: EngineRequest) async throws -> EngineReply {
        throw LabelForgeError(
            .cacheMiss, "engine '\(name)' is not started in this mode: every answer must come from the cache.")
    }

    var requestsSent: Int { 0 }
}
