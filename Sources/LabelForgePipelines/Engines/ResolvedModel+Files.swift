import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

extension ResolvedModel {
    static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    /// all-MiniLM-L6-v2 as `make setup` converts it for ONNX Runtime (scripts/minilm_to_onnx.py):
    /// the default model of local `embed` engines.
    static let defaultEmbeddingModelFile = "all-MiniLM-L6-v2.onnx"
    /// all-MiniLM-L6-v2 as `make setup` converts it for llama.cpp (scripts/minilm_to_gguf.py): the
    /// default model of local `rerank` engines (llama.cpp's rank mode), and of `embed` engines with
    /// `dialect: llamacpp`.
    static let defaultEmbeddingGGUFFile = "all-MiniLM-L6-v2.f16.gguf"

    /// The file `make setup` installs for a local engine: by its task, and for an embedding engine
    /// the GGUF conversion when its dialect is llama.cpp's (`RunConfig.parseEngine`).
    static func defaultFile(for engine: RunConfig.Engine) -> String {
        switch engine.task {
        case "embed": return engine.dialect == "llamacpp" ? defaultEmbeddingGGUFFile : defaultEmbeddingModelFile
        case "rerank": return defaultEmbeddingGGUFFile
        default: return defaultModelFile
        }
    }

    static func resolve(_ engine: RunConfig.Engine) throws -> ResolvedModel {
        guard engine.local != nil else {
            return ResolvedModel(
                engine: engine.name, id: engine.model.id, revision: engine.model.revision ?? "unpinned")
        }
        let defaultFile = defaultFile(for: engine)
        guard let path = engine.model.path ?? ProjectPaths.defaultModel(named: defaultFile) else {
            throw LabelForgeError(
                .fileNotFound,
                "The default model \(defaultFile) is not installed. Run `labelforge setup` (or `make setup` in a "
                    + "checkout), or set engines[].model.path for engine '\(engine.name)' to a GGUF file.")
        }
        let location = engine.model.location.isEmpty ? "" : engine.model.location + ": "
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(
                .fileNotFound, "\(location)engine '\(engine.name)': model file \(path) does not exist.")
        }
        if path.hasSuffix(".onnx") {
            let metadata = try ONNXMetadata.read(path: path)
            let revision = try engine.model.revision ?? ContentHash.prefixed(ContentHash.hexOfFile(atPath: path))
            return ResolvedModel(
                engine: engine.name, id: engine.model.id, revision: revision, path: path,
                maxInputTokens: ONNXMetadata.maxInputTokens(in: metadata))
        }
        let magic = FileHandle(forReadingAtPath: path).flatMap { try? $0.read(upToCount: 4) } ?? Data()
        guard magic == Data("GGUF".utf8) else {
            let seen = String(decoding: magic, as: UTF8.self).unicodeScalars.map {
                $0.isASCII && $0.value >= 0x20 ? String($0) : "?"
            }.joined()
            throw LabelForgeError(
                .invalidConfig,
                "\(location)engine '\(engine.name)': model file \(path) is not a GGUF file (it starts with '\(seen)', not "
                    + "'GGUF'). llama.cpp serves GGUF models: give engines[].model.path a .gguf file, or convert the "
                    + "model with llama.cpp's convert_hf_to_gguf.py.")
        }
        let revision = try engine.model.revision ?? ContentHash.prefixed(ContentHash.hexOfFile(atPath: path))
        let limit = engine.task == "chat" ? nil : GGUFMetadata.maxInputTokens(in: try GGUFMetadata.read(path: path))
        return ResolvedModel(
            engine: engine.name, id: engine.model.id, revision: revision, path: path, maxInputTokens: limit)
    }
}
