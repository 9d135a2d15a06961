import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import Logging

/// One configured engine, ready for requests.
package struct EngineHandle: Sendable {
    package var config: RunConfig.Engine
    package var dialect: EngineDialect
    /// What carries this engine's requests: HTTP to its server (`OpenAIClient`), Ray jobs
    /// (`RayJobTransport`), or nothing at all for a run whose answers all come from the cache
    /// (`RecordedEngine`).
    package var transport: any EngineTransport
    package var model: ResolvedModel
    /// For `local` engines: which launcher ran the server.
    package var launcher: String?
    /// Whether the engine's self-report records `launcher` (null but for a local engine): engines
    /// reached over HTTP do, Ray engines do not.
    package var recordsLauncher = true

    package init(
        config: RunConfig.Engine, dialect: EngineDialect, transport: any EngineTransport, model: ResolvedModel,
        launcher: String? = nil, recordsLauncher: Bool = true
    ) {
        self.config = config
        self.dialect = dialect
        self.transport = transport
        self.model = model
        self.launcher = launcher
        self.recordsLauncher = recordsLauncher
    }

    /// The longest input the engine's model takes, in tokens: the GGUF file's for a local engine, else
    /// what the server reported (vLLM's `max_model_len`, llama.cpp's `n_ctx_train`); `nil` when unknown.
    package func maxInputTokens(info: JSONValue) -> Int? {
        if let limit = model.maxInputTokens { return limit }
        let served = info["models"]?.arrayValue?.first
        return served?["max_model_len"]?.intValue ?? served?["n_ctx_train"]?.intValue
    }
}

/// The transport of an engine a run does not start: every answer comes from the cache (an offline
/// replay, a merge that stops at the first barrier, `labelforge plan`). Nothing is ever sent; a
/// request that reaches it is refused.
package struct RecordedEngine: EngineTransport {
    package var name: String

    package func send(_ request: EngineRequest) async throws -> EngineReply {
        throw LabelForgeError(
            .cacheMiss, "engine '\(name)' is not started in this mode: every answer must come from the cache.")
    }

    package var requestsSent: Int { 0 }
}
