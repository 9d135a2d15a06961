import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel
import LabelForgeLLM
import Logging
import Yams

/// An ablation config: a base pipeline config and a `matrix` of config key paths, each with the
/// values to try (docs/ablations.md).
///
/// ```yaml
/// base: mvp-llm.yaml                  # relative to this file
/// name: prompt-x-temperature
/// matrix:
///   prompts.pack: [../prompts/mvp-zeroshot, ../prompts/mvp]
///   stages.sentiment.sampling.temperature: [0, 0.7]
///   run.seed: [1, 2]
/// exclude:
///   - {run.seed: 2, stages.sentiment.sampling.temperature: 0}
/// include:
///   - {prompts.pack: ../prompts/mvp, stages.sentiment.sampling.temperature: 1.0, run.seed: 1}
/// ```
///
/// A key path names mapping keys with dots; `stages.<id>.…` and `engines.<name>.…` pick a stage by
/// its id and an engine by its name. Path values (`dataset.path`, `prompts.pack`, an
/// `examples.path`, …) in the matrix are relative to the ablation file, those of the base config to
/// the base config. An axis given as a mapping names its values (`stages: {llm: […], embedding:
/// […]}`), and the variants are named after those names; `set:` gives values every variant takes.
public struct AblationConfig: Sendable {
    public var file: String
    public var name: String
    public var base: String
    public var axes: [(path: String, values: [JSONValue])]
    /// The names of an axis whose values are named (`matrix: {key: {name: value, …}}`), by key path:
    /// each value's name, in the axis's order.
    public var valueNames: [String: [String]] = [:]
    /// Values every variant sets (`set: {key path: value}`) before its own: the base as the
    /// ablation needs it (another engine, say).
    public var fixed: [String: JSONValue] = [:]
    public var exclude: [[String: JSONValue]]
    public var include: [[String: JSONValue]]

    /// One combination of axis values.
    public struct Variant: Sendable, Equatable {
        public var name: String
        public var assignments: [String: JSONValue]
    }

    /// Key paths whose values are file paths (made absolute in variant configs).
    static func isPathKey(_ path: String) -> Bool {
        ["dataset.path", "prompts.pack", "cache.path"].contains(path) || path.hasSuffix(".model.path")
            || path.hasSuffix(".corpus.path") || path.hasSuffix(".examples.path")
    }

    public static func load(file: String) throws -> AblationConfig {
        let root = try ConfigReader.load(file: file)
        try root.checkKeys(["base", "name", "set", "matrix", "exclude", "include"])
        let base = try root.require("base").filePath()
        guard FileManager.default.fileExists(atPath: base) else {
            throw root.error("base config \(base) does not exist.")
        }
        var axes: [(String, [JSONValue])] = []
        var valueNames: [String: [String]] = [:]
        let matrix = try root.require("matrix")
        for entry in try matrix.mapping() {
            let values: [JSONValue]
            // A mapping names its values (a whole stage, say): the variants are named after those names.
            if case .mapping = entry.value.node {
                let named = try entry.value.mapping()
                valueNames[entry.key] = named.map(\.key)
                values = try named.map { try $0.value.json() }
            } else {
                values = try entry.value.items().map { try $0.json() }
            }
            guard !values.isEmpty else { throw entry.value.error("give at least one value for '\(entry.key)'.") }
            axes.append((entry.key, values))
        }
        guard !axes.isEmpty else { throw matrix.error("the matrix needs at least one key path.") }
        func combinations(_ key: String) throws -> [[String: JSONValue]] {
            guard let node = try root.child(key) else { return [] }
            return try node.items().map { item in
                var combination: [String: JSONValue] = [:]
                for entry in try item.mapping() {
                    guard axes.contains(where: { $0.0 == entry.key }) || key == "include" else {
                        throw entry.value.error("'\(entry.key)' is not a key path of the matrix.")
                    }
                    var value = try entry.value.json()
                    // A named axis's value may be given by its name.
                    if let names = valueNames[entry.key], let name = value.stringValue,
                        let i = names.firstIndex(of: name),
                        let axis = axes.first(where: { $0.0 == entry.key })
                    {
                        value = axis.1[i]
                    }
                    combination[entry.key] = value
                }
                return combination
            }
        }
        return AblationConfig(
            file: file,
            name: try root.child("name")?.string()
                ?? ((file as NSString).lastPathComponent as NSString)
                .deletingPathExtension,
            base: base, axes: axes, valueNames: valueNames,
            fixed: try root.child("set")?.mapping().reduce(into: [:]) { $0[$1.key] = try $1.value.json() } ?? [:],
            exclude: try combinations("exclude"), include: try combinations("include"))
    }

    /// Every combination of the axes (the first axis varies slowest), less those matching an
    /// `exclude` entry, then the `include` entries; named after their values.
    public var variants: [Variant] {
        var combinations: [[String: JSONValue]] = [[:]]
        for (path, values) in axes {
            combinations = combinations.flatMap { partial in
                values.map { value in partial.merging([path: value]) { _, new in new } }
            }
        }
        combinations.removeAll { combination in
            exclude.contains { rule in rule.allSatisfy { combination[$0.key] == $0.value } }
        }
        combinations += include
        var names: Set<String> = []
        return combinations.map { assignments in
            var name = axes.compactMap { axis -> String? in
                assignments[axis.path].map { value -> String in
                    let given: String? = valueNames[axis.path].flatMap { labels in
                        axis.values.firstIndex(of: value).map { labels[$0] }
                    }
                    let shown: JSONValue = given.map { .string($0) } ?? value
                    return "\(Self.shortKey(axis.path))=\(Self.shortValue(shown))"
                }
            }.joined(separator: "_")
            if name.isEmpty { name = "base" }
            var unique = name
            var n = 2
            while !names.insert(unique).inserted {
                unique = "\(name)-\(n)"
                n += 1
            }
            return Variant(name: unique, assignments: assignments)
        }
    }

    static func shortKey(_ path: String) -> String {
        path.split(separator: ".").last.map(String.init) ?? path
    }

    static func shortValue(_ value: JSONValue) -> String {
        let text = value.stringValue.map { ($0 as NSString).lastPathComponent } ?? CanonicalJSON.string(value)
        return String(text.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "-" })
    }

    /// The variant's config as YAML: the base config with the assignments applied and every path
    /// absolute.
    func configYAML(for variant: Variant) throws -> String {
        let reader = try ConfigReader.load(file: base)
        var root = reader.node
        let baseDirectory = reader.baseDirectory
        let ablationDirectory = try ConfigReader.load(file: file).baseDirectory
        // Every path of the base config, absolute: the variant's file lives elsewhere.
        var paths = ["dataset.path", "prompts.pack", "cache.path"]
        for (list, key) in [("engines", "model.path"), ("stages", "corpus.path"), ("stages", "examples.path")] {
            guard case .sequence(let items)? = root.mapping?[list] else { continue }
            paths += items.compactMap { Self.itemName($0).map { "\(list).\($0).\(key)" } }
        }
        for path in paths {
            if let value = try Self.value(at: path, in: root)?.string {
                try Self.set(path, to: .string(Self.absolute(value, against: baseDirectory)), in: &root)
            }
        }
        for (path, value) in fixed.sorted(by: { $0.key < $1.key }) + variant.assignments.sorted(by: { $0.key < $1.key })
        {
            try Self.set(path, to: Self.absolutePaths(in: value, at: path, against: ablationDirectory), in: &root)
        }
        return try Yams.serialize(node: root)
    }

    /// The value with every file path in it (`isPathKey`, at any depth: a whole stage's
    /// `examples.path`) made absolute against `directory`. In a list, an item's key path goes on
    /// with its `id` or `name`.
    static func absolutePaths(in value: JSONValue, at path: String, against directory: String) -> JSONValue {
        switch value {
        case .string(let text) where isPathKey(path): return .string(absolute(text, against: directory))
        case .object(let fields):
            return .object(
                Dictionary(
                    uniqueKeysWithValues: fields.map { key, field in
                        (key, absolutePaths(in: field, at: path + "." + key, against: directory))
                    }))
        case .array(let items):
            return .array(
                items.map { item in
                    let name = item["id"]?.stringValue ?? item["name"]?.stringValue
                    return name.map { absolutePaths(in: item, at: path + "." + $0, against: directory) } ?? item
                })
        default: return value
        }
    }

    static func absolute(_ path: String, against directory: String) -> String {
        if path.hasPrefix("/") || path.isEmpty { return path }
        if path.hasPrefix("~/") {
            return (ProjectPaths.homeDirectory() as NSString).appendingPathComponent(String(path.dropFirst(2)))
        }
        return URL(fileURLWithPath: (directory as NSString).appendingPathComponent(path)).standardizedFileURL.path
    }

    /// The node at a key path, if any.
    static func value(at path: String, in node: Node) throws -> Node? {
        var current = node
        var parts = path.split(separator: ".").map(String.init)[...]
        while let key = parts.popFirst() {
            if case .sequence(let items) = current {
                guard let item = items.first(where: { itemName($0) == key }) else { return nil }
                current = item
                continue
            }
            guard let next = current.mapping?[key] else { return nil }
            current = next
        }
        return current
    }

    /// A stage's `id` or an engine's `name`.
    static func itemName(_ node: Node) -> String? {
        node.mapping?["id"]?.string ?? node.mapping?["name"]?.string
    }

    /// Sets the value at a key path, creating mappings on the way; in `stages` and `engines` a key
    /// names the item with that id or name.
    static func set(_ path: String, to value: JSONValue, in node: inout Node) throws {
        let parts = path.split(separator: ".").map(String.init)
        guard let yaml = try Yams.compose(yaml: CanonicalJSON.string(value)) else { return }
        func assign(_ parts: ArraySlice<String>, _ node: inout Node) throws {
            guard let key = parts.first else {
                node = yaml
                return
            }
            if case .sequence(var items) = node {
                guard let index = items.firstIndex(where: { itemName($0) == key }) else {
                    throw LabelForgeError(
                        .invalidConfig, "matrix key '\(path)': no stage or engine named '\(key)' in the base config.")
                }
                try assign(parts.dropFirst(), &items[index])
                node = .sequence(items)
                return
            }
            var mapping = node.mapping ?? Node.Mapping([])
            var child = mapping[key] ?? Node.mapping(Node.Mapping([]))
            try assign(parts.dropFirst(), &child)
            mapping[key] = child
            node = .mapping(mapping)
        }
        try assign(parts[...], &node)
    }
}
