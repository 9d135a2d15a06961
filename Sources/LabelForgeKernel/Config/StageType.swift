import Foundation
import LabelForgeCore

/// What one stage type adds to the keys every stage has (docs/architecture.md, "Adding a stage").
public protocol StageOptions: Sendable {
    /// The options as `config.resolved.yaml` lists them.
    var resolvedJSON: [String: JSONValue] { get }
    /// `sampling.max_tokens` when the config leaves it out, where the options decide it (a judge's
    /// schema); `nil` for the type's default.
    var defaultMaxTokens: Int? { get }
    /// The engine task these options need when it is not the type's (a rerank stage judged by a
    /// chat model); `nil` for the type's.
    var engineTask: String? { get }
    /// Engines the options name besides the stage's own, with the task each must serve (a mining
    /// stage's reranker).
    var extraEngines: [(name: String, task: String)] { get }
}

extension StageOptions {
    public var defaultMaxTokens: Int? { nil }
    public var engineTask: String? { nil }
    public var extraEngines: [(name: String, task: String)] { [] }
}

/// Options read from a stage's config node.
package protocol ParsedStageOptions: StageOptions {
    /// The keys this type takes besides the common ones.
    static var keys: [String] { get }
    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> Self
}

/// What a stage type's options may depend on besides their own keys.
package struct StageParseContext {
    /// The image fields the stage sends (its `images`, else the dataset's).
    package var images: [String]
    /// Whether the config is a run's `config.resolved.yaml`: there an option that resolved configs
    /// came to list later (`truncate`) means what the runs made before it did when it is absent.
    package var resolved = false

    /// `truncate` when a stage leaves it out: the model's window in a config, sending whole texts
    /// in a resolved config written before the option existed (so its run replays as it ran).
    package var absentTruncation: Truncation { resolved ? .off : .model }
}

/// Sampling settings a stage type defaults to.
package struct SamplingDefaults {
    package var temperature: Double = 0
    package var maxTokens = 128
    package var topLogprobs: Int? = nil
    /// Whether the type takes `sampling.stop` (free text only).
    package var takesStop = false

    package init(temperature: Double = 0, maxTokens: Int = 128, topLogprobs: Int? = nil, takesStop: Bool = false) {
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.topLogprobs = topLogprobs
        self.takesStop = takesStop
    }
}

/// One stage type: its config keys, how its options are read, and how its stage is built.
package struct StageType: Sendable {
    package let name: String
    package let keys: [String]
    package let sampling: SamplingDefaults
    /// The engine task the type's requests need (`chat`, `embed`); `nil` for stages that send none.
    package let engineTask: String?
    package let parseOptions: @Sendable (ConfigReader, StageParseContext) throws -> any StageOptions
    package let make: @Sendable (RunConfig.Stage) -> any PipelineStage

    package init<Options: ParsedStageOptions>(
        _ name: String, options: Options.Type, sampling: SamplingDefaults = SamplingDefaults(),
        engineTask: String? = "chat", make: @escaping @Sendable (RunConfig.Stage, Options) -> any PipelineStage
    ) {
        self.name = name
        self.keys = Options.keys
        self.sampling = sampling
        self.engineTask = engineTask
        self.parseOptions = { try Options.parse($0, $1) }
        // The registry parsed these options for this type, so the cast cannot fail.
        self.make = { make($0, $0.options as! Options) }
    }
}

extension SamplingDefaults: Sendable {}

/// The stage types a config may name, by `type`, and the shorthands that expand into stages (the
/// registry: `StageRegistry` in LabelForgePipelines). The kernel reads stages only through it.
public struct StageCatalog: Sendable {
    package let types: [StageType]
    /// The stage nodes a shorthand node stands for (`quality_filter`); `nil` for a plain stage.
    package let expand: @Sendable (ConfigReader) throws -> [ConfigReader]?

    package init(
        types: [StageType], expand: @escaping @Sendable (ConfigReader) throws -> [ConfigReader]? = { _ in nil }
    ) {
        self.types = types
        self.expand = expand
    }

    package var names: [String] { types.map(\.name) }

    package func type(named name: String) -> StageType? { types.first { $0.name == name } }

    /// `a`, `a and b`, `a, b and c`.
    package static func listed(_ names: [String]) -> String {
        names.count <= 2
            ? names.joined(separator: " and ") : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }

    /// Keys every stage has, whatever its type.
    package static let commonKeys = [
        "id", "type", "engine", "template", "sampling", "gold_field", "max_validation_retries", "images",
    ]

    /// Keys of the first stage types, which `config.resolved.yaml` lists for every stage (`null` or
    /// `[]` where they do not apply), as it always has: plan hashes depend on it.
    package static let listedForEveryStage: [String: JSONValue] = [
        "labels": [], "attributes": [], "criteria": [], "style": .null, "max_words": .null, "mode": .null,
        "candidates": [],
    ]
}

extension RunConfig {
    /// Reads one entry of `stages`: the keys every stage has, then its type's options.
    package static func parseStage(
        _ node: ConfigReader, engines: [Engine], imageFields: [String], resolved: Bool = false, catalog: StageCatalog
    ) throws -> Stage {
        let allKeys =
            StageCatalog.commonKeys
            + catalog.types.flatMap(\.keys).filter { key in
                !StageCatalog.commonKeys.contains(key)
            }
        try node.checkKeys(allKeys.reduce(into: []) { if !$0.contains($1) { $0.append($1) } })
        let type = catalog.type(named: try node.require("type").oneOf(catalog.names))!
        // Another type's key is an error, unless `null` or `[]` as `config.resolved.yaml` lists it.
        for entry in try node.mapping()
        where !StageCatalog.commonKeys.contains(entry.key) && !type.keys.contains(entry.key) {
            guard let value = try node.child(entry.key) else { continue }
            if case .sequence(let items) = value.node, items.isEmpty { continue }
            let owners = catalog.types.filter { $0.keys.contains(entry.key) }.map(\.name)
            throw value.error("'\(entry.key)' applies to \(StageCatalog.listed(owners)) stages only.")
        }
        let id = try node.require("id").string()
        guard id.range(of: "^[A-Za-z0-9_.-]+$", options: .regularExpression) != nil else {
            throw node.error("stage id '\(id)' may use only letters, digits, '_', '-' and '.' (it names a file).")
        }
        let imagesNode = try node.child("images")
        let images = try imagesNode?.stringList() ?? imageFields
        if let imagesNode, let unknown = images.first(where: { !imageFields.contains($0) }) {
            throw imagesNode.error(
                "'\(unknown)' is not an image field of the dataset; declare it in dataset.image_fields "
                    + "(image fields: \(imageFields.isEmpty ? "none" : imageFields.joined(separator: ", "))).")
        }
        let options = try type.parseOptions(node, StageParseContext(images: images, resolved: resolved))
        // Default: the first engine serving what the stage asks for, else the first engine; none
        // for a stage that sends no request when the config lists no engine.
        let task = options.engineTask ?? type.engineTask
        if engines.isEmpty, let task {
            let example =
                task == "chat"
                ? "{name: local, kind: local, model: {id: smollm2-135m-instruct-q4_1}}"
                : "{name: embedder, kind: local, task: \(task), model: {id: all-minilm-l6-v2}}"
            throw node.error(
                "stage '\(try node.require("id").string())' (\(type.name)) sends requests to an engine with task: "
                    + "\(task), and the config lists no engines. Add one, e.g. engines: [\(example)].")
        }
        let engine =
            try node.child("engine")?.oneOf(engines.map(\.name))
            ?? (engines.first { $0.task == task } ?? engines.first)?.name ?? ""
        let sampling = try parseSampling(try node.child("sampling"), type: type, options: options, catalog: catalog)
        return Stage(
            id: id, type: type.name, engine: engine, template: try node.child("template")?.string() ?? type.name,
            sampling: sampling, goldField: try node.child("gold_field")?.string(),
            maxValidationRetries: try node.child("max_validation_retries")?.int() ?? 2, images: images,
            location: "\(node.file):\(node.line)", options: options, engineTask: task,
            takesStop: type.sampling.takesStop)
    }

    private static func parseSampling(
        _ node: ConfigReader?, type: StageType, options: any StageOptions, catalog: StageCatalog
    ) throws -> Sampling {
        try node?.checkKeys(["temperature", "top_p", "max_tokens", "top_logprobs", "stop", "retry_temperature"])
        // `top_logprobs: null` asks for none, unlike leaving the key out (the stage's default).
        let topLogprobsGiven = try node?.mapping().contains { $0.key == "top_logprobs" } ?? false
        let stopNode = try node?.child("stop")
        if let stopNode, !type.sampling.takesStop, try !stopNode.items().isEmpty {
            let owners = catalog.types.filter(\.sampling.takesStop).map(\.name)
            throw stopNode.error("'stop' applies to \(StageCatalog.listed(owners)) stages only.")
        }
        return Sampling(
            temperature: try node?.child("temperature")?.double() ?? type.sampling.temperature,
            topP: try node?.child("top_p")?.double(),
            maxTokens: try node?.child("max_tokens")?.int() ?? options.defaultMaxTokens ?? type.sampling.maxTokens,
            topLogprobs: try node?.child("top_logprobs")?.int()
                ?? (topLogprobsGiven ? nil : type.sampling.topLogprobs),
            stop: try stopNode?.stringList() ?? [],
            retryTemperature: try node?.child("retry_temperature")?.double() ?? 0.7)
    }
}

extension RunConfig {
    /// The stage object for one of this config's stages, built by its type in `catalog`.
    public func makeStage(_ stage: Stage) -> any PipelineStage { catalog.type(named: stage.type)!.make(stage) }
}

extension RunConfig.Stage {
    /// The stage as `config.resolved.yaml` lists it.
    package var resolvedJSON: JSONValue {
        var json = StageCatalog.listedForEveryStage
        json.merge([
            "id": .string(id), "type": .string(type), "engine": engine.isEmpty ? .null : .string(engine),
            "template": .string(template),
            "sampling": .object(samplingJSON), "gold_field": .optional(goldField),
            "max_validation_retries": .int(Int64(maxValidationRetries)), "images": .array(images.map(JSONValue.string)),
        ]) { _, new in new }
        json.merge(options.resolvedJSON) { _, new in new }
        return .object(json)
    }

    package var samplingJSON: [String: JSONValue] {
        var json: [String: JSONValue] = [
            "temperature": .double(sampling.temperature),
            "top_p": sampling.topP.map(JSONValue.double) ?? .null,
            "max_tokens": .int(Int64(sampling.maxTokens)),
            "top_logprobs": sampling.topLogprobs.map { .int(Int64($0)) } ?? .null,
            "retry_temperature": .double(sampling.retryTemperature),
        ]
        if takesStop {
            json["stop"] = .array(sampling.stop.map(JSONValue.string))
        }
        return json
    }
}
