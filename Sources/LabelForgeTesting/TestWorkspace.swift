import Foundation

/// A temporary directory for one test, removed when the test ends.
public final class TestWorkspace: @unchecked Sendable {
    public let root: String

    public init() throws {
        root = NSTemporaryDirectory() + "labelforge-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The absolute path of a file in the workspace.
    public func path(_ relative: String) -> String { root + "/" + relative }

    /// Writes a file, creating its directory.
    @discardableResult
    public func write(_ relative: String, _ contents: String) throws -> String {
        let full = path(relative)
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: full, atomically: true, encoding: .utf8)
        return full
    }

    /// Reads a file as text.
    public func read(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }

    /// Every file under a directory, as relative paths.
    public func files(under relative: String) -> [String] {
        (FileManager.default.enumerator(atPath: path(relative))?.allObjects as? [String] ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path(relative + "/" + $0), isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
    }

    /// The text of review `i` that `writeReviews` writes (when it is not marked).
    public static func reviewText(_ i: Int) -> String { "Review number \(i): it's \"fine\" & works." }

    /// A review dataset of `count` rows with gold sentiment, written as JSONL; rows whose index is
    /// in `marked` carry the text `VIOLATE` so a stub can misbehave on exactly those.
    @discardableResult
    public func writeReviews(_ relative: String = "data/reviews.jsonl", count: Int, marked: Set<Int> = []) throws
        -> String
    {
        let sentiments = ["positive", "negative", "neutral"]
        var lines: [String] = []
        for i in 0..<count {
            let text = marked.contains(i) ? "VIOLATE review number \(i)" : Self.reviewText(i)
            let escaped = text.replacingOccurrences(of: "\"", with: "\\\"")
            lines.append(#"{"id":"r\#(i)","text":"\#(escaped)","sentiment":"\#(sentiments[i % 3])"}"#)
        }
        return try write(relative, lines.joined(separator: "\n") + "\n")
    }

    /// A pipeline config against a stub engine (`vllm`, model `stub-model` at revision `r1`, no
    /// retries); `stages` is the YAML list, indented by two spaces. Paths are relative to the
    /// config file. Returns the config's path.
    @discardableResult
    public func writeStubConfig(
        _ relative: String = "config.yaml", name: String, seed: Int = 1, baseURL: String,
        dataset: String = "data/reviews.jsonl", pack: String = "prompts", stages: String
    ) throws -> String {
        try write(
            relative,
            """
            run: {name: \(name), seed: \(seed)}
            dataset: {path: \(dataset), id_field: id}
            engines:
              - {name: vllm, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(pack)}
            stages:
            \(stages)
            """)
    }

    /// A prompt pack with `classify` and `tag` templates over a `text` field.
    public func writePromptPack(_ relative: String = "prompts") throws {
        try write(relative + "/pack.yaml", "name: test\nversion: \"1\"\n")
        try write(
            relative + "/classify.mustache",
            "Sentiment of: {{text}}\n{{#labels}}- {{name}}\n{{/labels}}Answer with one of {{label_names}}.\n")
        try write(relative + "/tag.mustache", "Tag this review as JSON: {{text}}\n")
    }
}

/// Where the built `labelforge` executable is: `LABELFORGE_BIN`, else `.build/debug/labelforge`.
public enum LabelForgeBinary {
    public static func path(filePath: String = #filePath) -> String {
        if let explicit = ProcessInfo.processInfo.environment["LABELFORGE_BIN"] { return explicit }
        var url = URL(fileURLWithPath: filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent(".build/debug/labelforge").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return ".build/debug/labelforge"
    }

    /// The checkout's root (where `Package.swift` is).
    public static func projectRoot(filePath: String = #filePath) -> String {
        var url = URL(fileURLWithPath: filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath
    }
}
