import Foundation
import LabelForgeCore
import Mustache

/// A directory of prompt templates with a `pack.yaml` naming it (docs/architecture.md).
///
/// Templates render as plain text: swift-mustache escapes HTML by default, which would silently
/// change prompts and cache keys, so every template is parsed with the TEXT content type.
public struct PromptPack: Sendable {
    public var directory: String
    public var name: String
    public var version: String
    /// `sha256:` over every file's relative path and bytes, sorted by path.
    public var contentHash: String
    private var templates: [String: (template: MustacheTemplate, fields: Set<String>, reads: Set<String>?)]

    /// Loads every `*.mustache` file in `directory`.
    /// - Throws: `LabelForgeError.invalidPromptPack` naming the file that is missing or malformed.
    public static func load(directory: String) throws -> PromptPack {
        let packFile = directory + "/pack.yaml"
        let reader: ConfigReader
        do {
            reader = try ConfigReader.load(file: packFile)
        } catch let error as LabelForgeError where error.code == .fileNotFound {
            throw LabelForgeError(
                .invalidPromptPack, "Prompt pack \(directory) has no pack.yaml; add one with 'name' and 'version'.")
        }
        try reader.checkKeys(["name", "version", "description"])
        let name = try reader.require("name").string()
        let version = try reader.require("version").string()

        let files = try FileManager.default.subpathsOfDirectory(atPath: directory)
            .filter { !$0.hasPrefix(".") && !$0.contains("/.") }
            .filter { path in
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: directory + "/" + path, isDirectory: &isDirectory)
                return !isDirectory.boolValue
            }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var hashed = Data()
        var templates: [String: (MustacheTemplate, Set<String>, Set<String>?)] = [:]
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            hashed.append(contentsOf: Array(file.utf8) + [0])
            hashed.append(contentsOf: Array(ContentHash.hex(bytes).utf8) + [0])
            guard file.hasSuffix(".mustache") else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                let template = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + text)
                templates[String(file.dropLast(".mustache".count))] = (
                    template, topLevelNames(in: text), rootNamesAtAnyDepth(in: text)
                )
            } catch {
                throw LabelForgeError(
                    .invalidPromptPack, "\(directory)/\(file): the template does not parse: \(error).")
            }
        }
        return PromptPack(
            directory: directory, name: name, version: version,
            contentHash: ContentHash.prefixed(ContentHash.hex(hashed)), templates: templates)
    }

    /// The pack of a config that names none (no stage renders a template): no files, no templates.
    public static let none = PromptPack(
        directory: "", name: "none", version: "0", contentHash: ContentHash.prefixed(ContentHash.hex(Data())),
        templates: [:])

    /// Template names available in this pack.
    public var templateNames: [String] { templates.keys.sorted() }

    /// Row fields a template reads outside sections (those must exist in every row).
    public func fields(of template: String) -> Set<String> {
        Set((templates[template]?.fields ?? []).map(Self.rootName))
    }

    /// Full names a template reads outside sections, dotted paths included (`caption.caption`).
    public func references(of template: String) -> Set<String> {
        templates[template]?.fields ?? []
    }

    /// Renders a template over a context.
    /// - Throws: `LabelForgeError.invalidPromptPack` when the template does not exist.
    public func render(_ template: String, context: [String: JSONValue]) throws -> String {
        guard let entry = templates[template] else {
            let hint = closest(to: template, in: templateNames).map { " Did you mean '\($0)'?" } ?? ""
            throw LabelForgeError(
                .invalidPromptPack, "Prompt pack \(directory) has no template '\(template).mustache'.\(hint)")
        }
        guard let reads = entry.reads else { return entry.template.render(Self.mustacheValue(.object(context))) }
        // Only what the template can read is converted for swift-mustache: rows carry many fields.
        var picked: [String: Any] = [:]
        for name in reads {
            if let value = context[name] { picked[name] = Self.mustacheValue(value) }
        }
        return entry.template.render(picked)
    }

    /// The root of every name a template's tags use, inside sections too (a section looks names up
    /// in the enclosing context when its item lacks them); `nil` when the template uses partials or
    /// changes delimiters or uses transforms, whose names this scan cannot see.
    package static func rootNamesAtAnyDepth(in text: String) -> Set<String>? {
        var names: Set<String> = []
        for (sigil, name) in tags(in: text) {
            switch sigil {
            case ">", "=", "<", "$": return nil
            case "!", "%", "/": continue
            default:
                // A transform (`{{uppercased(name)}}`) reads a name this scan does not parse.
                if name.contains("(") { return nil }
                names.insert(rootName(name))
            }
        }
        return names
    }

    /// Every `{{…}}` tag of a template, in order: its sigil (`#`, `^`, `/`, `{`, `&`, `!`, `>`, …;
    /// `nil` for a plain variable) and its name, trimmed, without the sigil or a triple mustache's
    /// closing brace.
    package static func tags(in text: String) -> [(sigil: Character?, name: String)] {
        var tags: [(sigil: Character?, name: String)] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            rest = rest[open.upperBound...]
            guard let close = rest.range(of: "}}") else { break }
            var tag = rest[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            rest = rest[close.upperBound...]
            if rest.hasPrefix("}") { rest = rest.dropFirst() }
            guard let first = tag.first else { continue }
            var sigil: Character? = nil
            if "#^/{&!%>=<$".contains(first) {
                sigil = first
                tag.removeFirst()
                if first == "{" && tag.hasSuffix("}") { tag.removeLast() }
                if first == "&" && tag.hasSuffix("}") { tag.removeLast() }
            }
            tags.append((sigil, tag.trimmingCharacters(in: .whitespaces)))
        }
        return tags
    }

    /// JSON → the Foundation values swift-mustache walks.
    package static func mustacheValue(_ value: JSONValue) -> Any {
        switch value {
        case .null: return ""
        case .bool(let b): return b
        case .int(let i): return Int(i)
        case .double(let d): return CanonicalJSON.string(.double(d))
        case .string(let s): return s
        case .array(let items): return items.map(mustacheValue)
        case .object(let members): return members.mapValues(mustacheValue)
        }
    }

    /// Names referenced by `{{name}}`, `{{{name}}}`, `{{&name}}`, `{{#name}}` and `{{^name}}`
    /// outside any section; names inside sections may refer to the section's items.
    package static func topLevelFields(in text: String) -> Set<String> {
        Set(topLevelNames(in: text).map(rootName))
    }

    /// Like `topLevelFields`, with dotted names kept whole.
    package static func topLevelNames(in text: String) -> Set<String> {
        var fields: Set<String> = []
        var depth = 0
        for (sigil, name) in tags(in: text) {
            switch sigil {
            case "!", "%", ">", "=", "<", "$": continue
            case "/": depth -= 1
            case "#", "^":
                if depth == 0 { fields.insert(name) }
                depth += 1
            default:
                if depth == 0 { fields.insert(name) }
            }
        }
        fields.remove(".")
        fields.remove("")
        return fields
    }

    package static func rootName(_ name: String) -> String {
        String(name.split(separator: ".").first ?? "")
    }
}
