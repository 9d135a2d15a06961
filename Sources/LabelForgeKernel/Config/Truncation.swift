import Foundation
import LabelForgeCore

/// How a stage fits texts to its embedding or rerank model's window (`truncate:`), as
/// sentence-transformers does: by default every text is cut to the model's `max_seq_length`.
///
/// The resolved token limit goes into each request body as `truncate_prompt_tokens` (vLLM's name;
/// vLLM cuts there itself, and for llama.cpp, which cannot, LabelForge sends the first tokens of a
/// text over the limit), so it is part of every cache key.
public enum Truncation: Sendable, Equatable {
    /// Cut to the model's own limit: the GGUF file's, or what the server reports (`truncate: true`).
    case model
    /// Send texts whole; a text over the model's window fails its row (`truncate: false`).
    case off
    /// Cut to this many tokens, special tokens included (`truncate: 128`).
    case tokens(Int)

    /// The option's key in stage configs.
    package static let key = "truncate"

    package static func parse(_ node: ConfigReader?, absent: Truncation) throws -> Truncation {
        guard let node else { return absent }
        if let tokens = try? node.int() {
            guard tokens >= 1 else {
                throw node.error("truncate must be true, false or a number of tokens (1 or more).")
            }
            return .tokens(tokens)
        }
        guard let value = try? node.bool() else {
            throw node.error("truncate must be true (the model's limit), false, or a number of tokens.")
        }
        return value ? .model : .off
    }

    /// As `config.resolved.yaml` lists it; `nil` (left out) for `.off`, so the resolved configs of
    /// runs made before the option existed, which sent texts whole, keep their hash.
    package var json: JSONValue? {
        switch self {
        case .model: return true
        case .off: return nil
        case .tokens(let count): return .int(Int64(count))
        }
    }

    /// The limit requests carry, given the engine's model limit (`nil` when unknown).
    package func limit(model: Int?) -> Int? {
        switch self {
        case .model: return model
        case .off: return nil
        case .tokens(let count): return count
        }
    }
}
