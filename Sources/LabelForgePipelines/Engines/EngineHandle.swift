import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import Logging

/// One configured engine, ready for requests.
struct EngineHandle: Sendable {
    var config: RunConfig.Engine
    var dialect: EngineDialect
    var client: OpenAIClient
    var model: ResolvedModel
    /// For `local` engines: which launcher ran the server.
    var launcher: String?
    /// For `ray` engines: requests go out as Ray jobs (`client` then talks to the dashboard).
    var ray: RayJobTransport? = nil

    /// What carries this engine's requests.
    var transport: any EngineTransport { ray ?? client }

    /// The longest input the engine's model takes, in tokens: the GGUF file's for a local engine, else
    /// what the server reported (vLLM's `max_model_len`, llama.cpp's `n_ctx_train`); `nil` when unknown.
    func maxInputTokens(info: JSONValue) -> Int? {
        if let limit = model.maxInputTokens { return limit }
        let served = info["models"]?.arrayValue?.first
        return served?["max_model_len"]?.intValue ?? served?["n_ctx_train"]?.intValue
    }
}
