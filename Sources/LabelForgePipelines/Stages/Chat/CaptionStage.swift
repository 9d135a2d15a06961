import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `caption`: a free-text description of the row's image(s) from a VLM.
///
/// The template gets `style` (e.g. `concise`, `detailed`, `alt_text`), `style_<style>: true` for
/// mustache sections (the other known styles `false`), and `max_words`, so one prompt pack can carry
/// every style. The answer is
/// trimmed (and unwrapped from quotes); an empty answer is a validation failure, retried with a new
/// seed. A caption cut off at `max_tokens` or longer than `max_words` is kept and flagged.
public struct CaptionStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: CaptionOptions
    public let version = 1
    public let outputFields = ["caption", "words", "truncated", "too_long"]
    public let outputTypes: [String: ColumnType] = [
        "caption": .string, "words": .int64, "truncated": .bool, "too_long": .bool,
    ]
    public var goldPairs: [(output: String, gold: String)] { [] }
    public var constraint: OutputConstraint? { nil }

    var style: String { options.style }
    var maxWords: Int { options.maxWords }

    /// Styles a prompt pack is expected to cover; another configured style is passed the same way.
    public static let knownStyles = ["concise", "detailed", "alt_text"]

    public var templateVariables: [String: JSONValue] {
        var variables: [String: JSONValue] = ["style": .string(style), "max_words": .int(Int64(maxWords))]
        for known in Self.knownStyles { variables["style_\(known)"] = false }
        variables["style_\(style)"] = true
        return variables
    }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        let caption = Self.cleaned(response.content)
        guard !caption.isEmpty else {
            return .failure(StageFailure(errorClass: "empty_caption", message: "the engine returned an empty caption"))
        }
        let words = caption.split(whereSeparator: \.isWhitespace).count
        return .success([
            "caption": .string(caption), "words": .int(Int64(words)),
            "truncated": .bool(response.finishReason == "length"), "too_long": .bool(words > maxWords),
        ])
    }

    /// The caption without surrounding white space, a `Caption:` lead-in, or wrapping quotes.
    static func cleaned(_ text: String) -> String {
        var caption = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if caption.lowercased().hasPrefix("caption:") {
            caption = String(caption.dropFirst("caption:".count)).trimmingCharacters(in: .whitespaces)
        }
        for (open, close) in [("\"", "\""), ("“", "”"), ("'", "'")]
        where caption.count >= 2 && caption.hasPrefix(open) && caption.hasSuffix(close) {
            caption = String(caption.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        }
        return caption
    }
}

/// `caption`'s options: the style the template is asked for, and the most words a caption may have
/// (longer ones are kept and flagged `too_long`).
public struct CaptionOptions: ParsedStageOptions {
    public var style = "concise"
    public var maxWords = 30

    package static let keys = ["style", "max_words"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> CaptionOptions {
        if context.images.isEmpty {
            throw node.error("a caption stage needs an image: set dataset.image_fields (or use format: imagefolder).")
        }
        let maxWordsNode = try node.child("max_words")
        let maxWords = try maxWordsNode?.int() ?? 30
        if maxWords < 1 { throw maxWordsNode!.error("max_words must be at least 1.") }
        return CaptionOptions(style: try node.child("style")?.string() ?? "concise", maxWords: maxWords)
    }

    public var resolvedJSON: [String: JSONValue] { ["style": .string(style), "max_words": .int(Int64(maxWords))] }
}
