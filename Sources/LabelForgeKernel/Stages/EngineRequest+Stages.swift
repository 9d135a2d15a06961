import Foundation
import LabelForgeCore
import LabelForgeLLM
import Synchronization

extension EngineRequest {
    /// The single-input embeddings request for a text, cut to `truncate` tokens where the text is
    /// longer. Each text is its own request, so its cache key does not depend on the batch it
    /// travels in.
    package static func embedding(text: String, modelID: String, truncate: Int?) -> EngineRequest {
        EngineRequest(
            kind: .embeddings,
            body: EmbeddingsRequest(input: [text], truncatePromptTokens: truncate).body(modelID: modelID))
    }

    /// One (query, document) pair's rerank request (`/v1/rerank`, or vLLM's `/score`), cut to
    /// `truncate` tokens where the pair is longer.
    package static func rerank(
        query: String, document: String, modelID: String, endpoint: String = "rerank", truncate: Int?
    ) -> EngineRequest {
        let request = RerankRequest(query: query, documents: [document], truncatePromptTokens: truncate)
        return endpoint == "score"
            ? EngineRequest(kind: .score, body: request.scoreBody(modelID: modelID))
            : EngineRequest(kind: .rerank, body: request.body(modelID: modelID))
    }
}
