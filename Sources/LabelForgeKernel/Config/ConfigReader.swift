import Foundation
import LabelForgeCore
import LabelForgeLLM
import Yams

/// Reads one YAML node of a config file, keeping the file, line and key path for every error.
///
/// Unknown keys are errors that suggest the closest known key, so a typo never silently falls
/// back to a default.
package struct ConfigReader {
    package let file: String
    package let node: Node
    package let path: String

    package init(file: String, node: Node, path: String) {
        self.file = file
        self.node = node
        self.path = path
    }

    /// Parses a whole config file.
    package static func load(file: String) throws -> ConfigReader {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw LabelForgeError(.fileNotFound, "Cannot read the config file \(file).")
        }
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw LabelForgeError(.invalidConfig, "\(file): the config file is empty.")
            }
            return ConfigReader(file: file, node: node, path: "")
        } catch let error as YamlError {
            throw LabelForgeError(.invalidConfig, Self.describe(error, file: file))
        }
    }

    package var line: Int { node.mark?.line ?? 0 }

    /// `file:line:column: not valid YAML: problem (context)`, from libyaml's own report.
    package static func describe(_ error: YamlError, file: String) -> String {
        func located(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> String {
            let while_ = context.map { " (\($0.text))" } ?? ""
            return "\(file):\(mark.line):\(mark.column): not valid YAML: \(problem)\(while_). "
                + "Check the brackets, quotes and indentation there."
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return located(context, problem, mark)
        case .reader(let problem, let offset, _, _):
            return "\(file): not valid YAML: \(problem)" + (offset.map { " at byte \($0)" } ?? "")
                + ". Save the file as UTF-8."
        default:
            return "\(file): not valid YAML: \(error)"
        }
    }

    /// The directory relative paths in this file resolve against: the config file's own. A run's
    /// `config.resolved.yaml` holds absolute paths; one written before paths were config-relative
    /// holds paths relative to where that run was started, so those resolve against the current
    /// directory, as they always did.
    package var baseDirectory: String {
        let cwd = FileManager.default.currentDirectoryPath
        if (file as NSString).lastPathComponent == "config.resolved.yaml" { return cwd }
        let directory = (file as NSString).deletingLastPathComponent
        return directory.hasPrefix("/") ? directory : (cwd as NSString).appendingPathComponent(directory)
    }

    /// A path: `~/` is the home directory; a relative path is relative to `baseDirectory`.
    package func filePath() throws -> String {
        let value = try string()
        if value.hasPrefix("~/") {
            return (ProjectPaths.homeDirectory() as NSString).appendingPathComponent(String(value.dropFirst(2)))
        }
        if value.hasPrefix("/") || value.isEmpty { return value }
        return URL(fileURLWithPath: (baseDirectory as NSString).appendingPathComponent(value)).standardizedFileURL.path
    }

    package func error(_ message: String, at node: Node? = nil) -> LabelForgeError {
        let line = (node ?? self.node).mark?.line ?? self.line
        let where_ = path.isEmpty ? "" : " \(path):"
        return LabelForgeError(.invalidConfig, "\(file):\(line):\(where_) \(message)")
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The mapping's entries; fails when the node is not a mapping.
    package func mapping() throws -> [(key: String, keyNode: Node, value: ConfigReader)] {
        guard case .mapping(let mapping) = node else {
            throw error("expected a mapping of keys to values, found \(kind).")
        }
        return mapping.map { pair in
            let key = pair.key.string ?? ""
            return (key, pair.key, ConfigReader(file: file, node: pair.value, path: childPath(key)))
        }
    }

    /// Fails on the first key that is not in `allowed`, suggesting the closest allowed key.
    package func checkKeys(_ allowed: [String]) throws {
        for entry in try mapping() where !allowed.contains(entry.key) {
            let suggestion = closest(to: entry.key, in: allowed).map { " Did you mean '\($0)'?" } ?? ""
            let shown = path.isEmpty ? entry.key : "\(path).\(entry.key)"
            throw LabelForgeError(
                .invalidConfig,
                "\(file):\(entry.keyNode.mark?.line ?? line): unknown key '\(shown)'.\(suggestion)"
                    + " Valid keys here: \(allowed.joined(separator: ", ")).")
        }
    }

    package func child(_ key: String) throws -> ConfigReader? {
        guard let entry = try mapping().first(where: { $0.key == key }) else { return nil }
        if case .scalar(let s) = entry.value.node,
            entry.value.node.null != nil || s.string == "~" || (s.string.isEmpty && s.style == .plain)
        {
            return nil
        }
        return entry.value
    }

    package func require(_ key: String) throws -> ConfigReader {
        guard let value = try child(key) else {
            throw error("missing required key '\(childPath(key))'.")
        }
        return value
    }

    package func items() throws -> [ConfigReader] {
        guard case .sequence(let sequence) = node else {
            throw error("expected a list, found \(kind).")
        }
        return sequence.enumerated().map { ConfigReader(file: file, node: $1, path: "\(path)[\($0)]") }
    }

    package func string() throws -> String {
        guard case .scalar(let s) = node else { throw error("expected a string, found \(kind).") }
        return s.string
    }

    package func int() throws -> Int {
        guard let value = node.int else { throw error("expected an integer, found '\(node.string ?? kind)'.") }
        return value
    }

    package func double() throws -> Double {
        guard let value = node.float ?? node.int.map(Double.init) else {
            throw error("expected a number, found '\(node.string ?? kind)'.")
        }
        return value
    }

    package func bool() throws -> Bool {
        guard let value = node.bool else { throw error("expected true or false, found '\(node.string ?? kind)'.") }
        return value
    }

    package func oneOf(_ allowed: [String]) throws -> String {
        let value = try string()
        guard allowed.contains(value) else {
            let suggestion = closest(to: value, in: allowed).map { " Did you mean '\($0)'?" } ?? ""
            throw error("'\(value)' is not one of \(allowed.joined(separator: ", ")).\(suggestion)")
        }
        return value
    }

    package func stringList() throws -> [String] { try items().map { try $0.string() } }

    /// The node as JSON (for schemas and free-form params).
    package func json() throws -> JSONValue {
        switch node {
        case .scalar(let s):
            if s.style == .plain || s.style == .any {
                if node.null != nil || s.string == "~" { return .null }
                if let b = node.bool { return .bool(b) }
                if let i = node.int { return .int(Int64(i)) }
                if let d = node.float { return .double(d) }
            }
            return .string(s.string)
        case .mapping:
            var object: [String: JSONValue] = [:]
            for entry in try mapping() { object[entry.key] = try entry.value.json() }
            return .object(object)
        case .sequence:
            return .array(try items().map { try $0.json() })
        }
    }

    private var kind: String {
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
package func closest(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
