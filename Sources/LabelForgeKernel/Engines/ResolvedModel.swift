import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeLLM
import Logging

/// The model an engine serves, with its pinned revision.
public struct ResolvedModel: Sendable {
    package var engine: String
    package var id: String
    package var revision: String
    /// The GGUF file for `local` engines.
    package var path: String?
    /// The longest input an embedding or rerank model takes, from its GGUF file's metadata
    /// (`GGUFMetadata.maxInputTokens`); `nil` for other engines.
    package var maxInputTokens: Int? = nil

    package init(engine: String, id: String, revision: String, path: String? = nil, maxInputTokens: Int? = nil) {
        self.engine = engine
        self.id = id
        self.revision = revision
        self.path = path
        self.maxInputTokens = maxInputTokens
    }

    package var recordedPin: RunRecord.ModelPin {
        RunRecord.ModelPin(
            engine: engine, id: id, revision: revision, file: path.map { ($0 as NSString).lastPathComponent })
    }

    package var pin: JSONValue {
        [
            "engine": .string(engine), "id": .string(id), "revision": .string(revision),
            "file": path.map { .string(($0 as NSString).lastPathComponent) } ?? .null,
        ]
    }
}
