import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeIO
import Yams

/// A pipeline run, as configured in YAML (see `docs/config.md`), with every default filled in.
public struct RunConfig: Sendable {
    public struct Dataset: Sendable {
        public var path: String
        public var format: DatasetFormat
        public var idField: String?
        /// Fields that hold images (paths, `data:` URLs or `{"base64": …}`); `[image]` for image folders.
        public var imageFields: [String]
        public var imageLimits: ImageFile.Limits
        /// `file:line` of `dataset.path` in the config, for errors about the dataset as a whole.
        public var pathLocation: String = ""
        /// Parquet: the split of a dataset folder (default `train`), and the columns to read (all
        /// when `nil`).
        public var split: String? = nil
        public var columns: [String]? = nil

        /// How this dataset's image fields are read.
        public var images: ImageFieldSet {
            ImageFieldSet(fields: imageFields, datasetPath: path, format: format, limits: imageLimits)
        }
    }

    public struct Model: Sendable {
        /// The id sent as the body's `model` and used in cache keys; never a local path.
        public var id: String
        /// `file:line` of the model's entry in the config, for errors about its file.
        public var location: String = ""
        /// A GGUF file for `local` engines; defaults to the model `make setup` installs.
        public var path: String?
        /// The pinned revision; for `local` engines, defaults to the GGUF file's SHA-256.
        public var revision: String?
    }

    /// How an engine is reached.
    public enum EngineKind: String, Sendable {
        /// LabelForge starts the server (llama.cpp, or the ONNX Runtime embedding server).
        case local
        /// Any OpenAI-compatible base URL (vLLM, llama.cpp, a hosted API).
        case openai
        /// Requests go out as Ray Data LLM jobs through a Ray dashboard.
        case ray
        /// Requests go out through a batch API (OpenAI, Anthropic) or as vLLM batch files.
        case batch
    }

    /// How much a run trades speed for repeatability (docs/determinism.md).
    public enum Determinism: String, Sendable {
        case standard, strict
    }

    /// One engine: what every kind has (the model, where requests go, concurrency, timeouts,
    /// retries, the task), and what only its kind has (`Kind`).
    public struct Engine: Sendable {
        /// How the engine is reached, with the settings only that kind takes.
        public enum Kind: Sendable {
            /// LabelForge starts the server: its threads and polling.
            case local(Local)
            /// An OpenAI-compatible server at `baseURLs`.
            case openAI
            /// Ray Data LLM jobs through a Ray dashboard.
            case ray(Ray)
            /// A batch API, or batch files for `vllm run-batch`.
            case batch(Batch)

            /// The kind as configs name it.
            public var name: EngineKind {
                switch self {
                case .local: .local
                case .openAI: .openai
                case .ray: .ray
                case .batch: .batch
                }
            }
        }

        /// What only a `local` engine's server takes.
        public struct Local: Sendable {
            /// CPU threads; 0 lets llama.cpp (or ONNX Runtime) decide.
            public var threads: Int
            /// How hard idle threads poll for work, 0–100 (`--poll`); `nil` where llama.cpp's default
            /// applies (an ONNX embedding server has none).
            public var poll: Int?

            public init(threads: Int, poll: Int? = nil) {
                self.threads = threads
                self.poll = poll
            }
        }

        public var name: String
        public var kind: Kind
        public var dialect: String
        public var model: Model
        /// The server's base URLs, one per replica: an `openai` engine's, or where a `ray` engine's
        /// jobs send requests with the HTTP processor; empty for a `local` engine (it is started).
        public var baseURLs: [String]
        /// The environment variable holding the API key; the key itself never enters a config.
        public var apiKeyEnv: String?
        /// A local server's parallel slots and context per slot. Every kind's resolved config lists
        /// them (as it always has: plan hashes depend on it); only a local server uses them.
        public var slots: Int
        public var contextPerSlot: Int
        public var maxInFlight: Int
        public var timeoutSeconds: Double
        public var maxRetries: Int
        /// What the engine serves: `chat`, `embed` or `rerank`; a `local` engine starts its server
        /// for it (one model, one task per server).
        public var task: String = "chat"
        /// The most requests one replica (`base_urls`) has in flight; `nil`: only `max_in_flight`.
        public var maxInFlightPerReplica: Int? = nil
        /// What its tokens cost (`pricing:`); `nil` when not given.
        public var pricing: Pricing? = nil

        /// A `local` engine's server settings; `nil` for other kinds.
        public var local: Local? {
            if case .local(let local) = kind { return local }
            return nil
        }

        /// A `batch` engine's provider and limits; `nil` for other kinds.
        public var batch: Batch? {
            if case .batch(let batch) = kind { return batch }
            return nil
        }

        /// A `ray` engine's cluster and processor; `nil` for other kinds.
        public var ray: Ray? {
            if case .ray(let ray) = kind { return ray }
            return nil
        }

        public struct Ray: Sendable {
            /// The Ray dashboard (Jobs REST API).
            public var address: String
            /// The job entrypoint's Python on the cluster.
            public var python: String
            /// Where jobs write answers and LabelForge reads them (a shared filesystem); nil: through
            /// the cache's bucket.
            public var outputDirectory: String?
            public var batchSize: Int
            public var concurrency: Int
            /// `http` (HttpRequestProcessorConfig to `base_url`) or `vllm` (vLLMEngineProcessorConfig:
            /// vLLM inside the job).
            public var processor: String = "http"
            /// `vllm`: the user's `engine_kwargs`, over LabelForge's defaults.
            public var engineKwargs: JSONValue? = nil
        }
    }

    public struct Sampling: Sendable {
        public var temperature: Double
        public var topP: Double?
        public var maxTokens: Int
        public var topLogprobs: Int?
        /// Strings that end generation; sent only when non-empty.
        public var stop: [String] = []
        /// The temperature of validation retries when `temperature` is lower, so a retry can
        /// change the answer (at temperature 0 engines sample greedily and ignore the seed).
        public var retryTemperature: Double = 0.7
    }

    public struct Label: Sendable {
        public var name: String
        public var description: String?

        package init(name: String, description: String? = nil) {
            self.name = name
            self.description = description
        }
    }

    public struct Attribute: Sendable {
        public var name: String
        /// `enum`, `boolean`, `string` or `list`.
        public var type: String
        public var values: [String]
        public var description: String?
        public var goldField: String?
        /// What each value means, where the config says (`values: [{name, description}]`): the text
        /// an embedding tagger compares rows with.
        public var valueDescriptions: [String: String] = [:]

        package init(name: String, type: String, values: [String], description: String? = nil, goldField: String? = nil)
        {
            self.name = name
            self.type = type
            self.values = values
            self.description = description
            self.goldField = goldField
        }
    }

    /// One rubric criterion: an integer scale with optional anchor descriptions per level.
    public struct Criterion: Sendable {
        public var name: String
        public var description: String?
        public var min: Int
        public var max: Int
        /// Level → what that level means.
        public var anchors: [Int: String]

        package init(name: String, description: String? = nil, min: Int, max: Int, anchors: [Int: String]) {
            self.name = name
            self.description = description
            self.min = min
            self.max = max
            self.anchors = anchors
        }
    }

    /// One entry of `stages`: the keys every stage has, and its type's own options
    /// (`StageRegistry`).
    public struct Stage: Sendable {
        public var id: String
        /// A name in `StageRegistry`.
        public var type: String
        public var engine: String
        public var template: String
        public var sampling: Sampling
        public var goldField: String?
        public var maxValidationRetries: Int
        /// Image fields the stage sends, in order; default: every image field of the dataset.
        public var images: [String] = []
        /// `file:line` of the stage's entry in the config, for errors about it.
        public var location: String = ""
        public var options: any StageOptions
        /// The engine task the stage's requests need (its options' or its type's); `nil` for a stage
        /// that sends none.
        public var engineTask: String? = nil
        /// Whether the stage's type takes `sampling.stop` (free text only).
        public var takesStop = false
    }

    public var file: String
    public var name: String
    public var seed: UInt64
    /// `standard` or `strict` (see docs/determinism.md).
    public var determinism: Determinism
    public var maxFailureRatio: Double
    /// Process only the first N rows (`run.limit`, or `--limit`).
    public var limit: Int?
    public var dataset: Dataset
    public var engines: [Engine]
    /// The prompt pack's directory; `nil` when no stage renders a template (the config has no `prompts`).
    public var promptPack: String?
    public var cachePath: String?
    public var matchEngineVersion: Bool
    public var stages: [Stage]
    /// `sqlite` (the default), `s3`, or `tiered` (SQLite at `cachePath` in front of S3).
    public var cacheKind = "sqlite"
    /// The bucket of an `s3` or `tiered` cache.
    public var cacheS3: S3Location? = nil
    /// `file:line` of the `cache` block, for errors about it.
    public var cacheLocation = ""
    /// The stage types the config was read with: they build its stages (`RunPlan`).
    public var catalog: StageCatalog
    /// `outputs.format`: whether Parquet views of the outputs are written besides the JSONL
    /// (`parquet` or `both`; the JSONL is always written: replay, resume and diff read it).
    public var outputFormat = "jsonl"
    /// What one invocation may spend (`budget:`); not in the plan hash, so a stopped run is resumed
    /// with a raised one.
    public var budget: Budget? = nil

    /// The resolved `cache` block; the S3 keys only for an S3 cache, so every other run's resolved
    /// config (and plan hash) stays as it was. Credentials are never part of it.
    package var cacheJSON: JSONValue {
        var json: [String: JSONValue] = [
            "path": cachePath.map(JSONValue.string) ?? .null, "match_engine_version": .bool(matchEngineVersion),
        ]
        if let s3 = cacheS3 {
            json["kind"] = .string(cacheKind)
            json["bucket"] = .string(s3.bucket)
            json["prefix"] = .string(s3.prefix)
            json["endpoint"] = .string(s3.endpoint)
            json["region"] = .string(s3.region)
            if let profile = s3.profile { json["profile"] = .string(profile) }
        }
        return .object(json)
    }

    public static let attributeTypes = ["enum", "boolean", "string", "list"]

    /// Loads and validates a config file. Relative paths in it (dataset, prompt pack, cache, model
    /// files, a mining corpus) are relative to the config file's directory, and are held absolute.
    /// - Parameters:
    ///   - file: the config file's path.
    ///   - resolved: the file is a run's `config.resolved.yaml` (see `StageParseContext`).
    ///   - catalog: the stage types the config may name (`StageRegistry.catalog` in LabelForgePipelines).
    /// - Throws: `LabelForgeError.invalidConfig` naming the file, line and key path of the problem.
    public static func load(file: String, resolved: Bool = false, catalog: StageCatalog) throws -> RunConfig {
        let root = try ConfigReader.load(file: file)
        try root.checkKeys(["run", "dataset", "engines", "prompts", "cache", "stages", "outputs", "budget"])
        let run = try root.child("run")
        try run?.checkKeys(["name", "seed", "determinism", "max_failure_ratio", "limit"])
        let name = try run?.child("name")?.string() ?? (file as NSString).lastPathComponent
        let seedNode = try run?.child("seed")
        let seed = try seedNode?.int() ?? 0
        guard seed >= 0 else { throw seedNode!.error("the seed must be a non-negative integer.") }
        let determinism = Determinism(
            rawValue: try run?.child("determinism")?.oneOf(["standard", "strict"]) ?? "standard")!
        let ratioNode = try run?.child("max_failure_ratio")
        let maxFailureRatio = try ratioNode?.double() ?? 0.5
        guard (0...1).contains(maxFailureRatio) else {
            throw ratioNode!.error("max_failure_ratio must be between 0 and 1.")
        }
        let limitNode = try run?.child("limit")
        let limit = try limitNode?.int()
        if let limit, limit < 1 { throw limitNode!.error("limit must be at least 1.") }

        let dataset = try parseDataset(try root.require("dataset"))

        let cache = try root.child("cache")
        try cache?.checkKeys([
            "path", "match_engine_version", "kind", "bucket", "prefix", "endpoint", "region", "profile",
        ])
        let cacheKind = try cache?.child("kind")?.oneOf(["sqlite", "s3", "tiered"]) ?? "sqlite"
        var cacheS3: S3Location?
        if let cache, cacheKind != "sqlite" {
            guard let bucket = try cache.child("bucket")?.string(), !bucket.isEmpty else {
                throw cache.error(
                    "a cache of kind '\(cacheKind)' needs 'bucket' (and usually 'endpoint' and 'prefix').")
            }
            if cacheKind == "s3", try cache.child("path") != nil {
                throw cache.error(
                    "'path' is the local SQLite file of a 'tiered' cache; kind 's3' keeps no local file. Use kind: tiered."
                )
            }
            let endpoint = try cache.child("endpoint")?.string()
            if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                throw cache.error("'endpoint' must start with http:// or https:// (got '\(endpoint)').")
            }
            cacheS3 = S3Location(
                bucket: bucket, prefix: try cache.child("prefix")?.string() ?? "", endpoint: endpoint,
                region: try cache.child("region")?.string(), profile: try cache.child("profile")?.string())
        } else {
            for key in ["bucket", "prefix", "endpoint", "region", "profile"] where try cache?.child(key) != nil {
                throw cache!.error("'\(key)' belongs to an S3 cache: add kind: s3 (or kind: tiered).")
            }
        }

        // Engines and a prompt pack are needed only by stages that use them: a config of `dedup`,
        // `filter` or `normalize` stages lists neither.
        var engines: [Engine] = []
        let enginesNode = try root.child("engines")
        for node in try enginesNode?.items() ?? [] {
            engines.append(try parseEngine(node, strict: determinism == .strict, bucket: cacheS3 != nil))
        }
        let engineNames = engines.map(\.name)
        if let duplicate = engineNames.first(where: { name in engineNames.filter { $0 == name }.count > 1 }) {
            throw root.error("two engines are named '\(duplicate)'; engine names must be unique.")
        }

        let prompts = try root.child("prompts")
        try prompts?.checkKeys(["pack"])
        let pack = try prompts?.child("pack")?.filePath()

        var stages: [Stage] = []
        for item in try root.require("stages").items() {
            for node in try catalog.expand(item) ?? [item] {
                let stage = try parseStage(
                    node, engines: engines, imageFields: dataset.imageFields, resolved: resolved, catalog: catalog)
                if stages.contains(where: { $0.id == stage.id }) {
                    throw node.error("two stages have the id '\(stage.id)'; stage ids must be unique.")
                }
                stages.append(stage)
            }
        }
        guard !stages.isEmpty else { throw root.error("'stages' needs at least one stage.") }

        var config = RunConfig(
            file: file, name: name, seed: UInt64(seed), determinism: determinism, maxFailureRatio: maxFailureRatio,
            limit: limit, dataset: dataset, engines: engines, promptPack: pack,
            cachePath: try cache?.child("path")?.filePath(),
            matchEngineVersion: try cache?.child("match_engine_version")?.bool() ?? false, stages: stages,
            cacheKind: cacheKind, cacheS3: cacheS3, cacheLocation: cache.map { "\($0.file):\($0.line)" } ?? file,
            catalog: catalog, outputFormat: try parseOutputs(try root.child("outputs")))
        config.budget = try Budget.parse(root.child("budget"))
        return config
    }

    /// `outputs: {format: jsonl | parquet | both}`; `parquet` is `both` (the JSONL is always
    /// written), so the two read the same in resolved configs.
    private static func parseOutputs(_ node: ConfigReader?) throws -> String {
        guard let node else { return "jsonl" }
        try node.checkKeys(["format"])
        let format = try node.child("format")?.oneOf(["jsonl", "parquet", "both"]) ?? "jsonl"
        if format != "jsonl" { _ = try ParquetWriter.command() }
        return format == "parquet" ? "both" : format
    }

    /// The keys only an engine of kind `ray` takes.
    package static let rayKeys = [
        "address", "python", "output_dir", "batch_size", "concurrency", "processor", "engine_kwargs",
    ]

    /// The `dataset` section.
    private static func parseDataset(_ datasetNode: ConfigReader) throws -> Dataset {
        try datasetNode.checkKeys([
            "path", "format", "id_field", "image_fields", "max_image_bytes", "max_image_pixels", "split", "columns",
        ])
        let datasetPath = try datasetNode.require("path").filePath()
        let formatNode = try datasetNode.child("format")
        let splitNode = try datasetNode.child("split")
        let formatName =
            try formatNode?.oneOf(DatasetFormat.all.map(\.name))
            ?? Self.datasetFormat(of: datasetPath, splitGiven: splitNode != nil)
        let format = DatasetFormat(name: formatName)!
        let columnsNode = try datasetNode.child("columns")
        if format != .parquet, let extra = splitNode ?? columnsNode {
            throw extra.error("'split' and 'columns' apply to Parquet datasets only.")
        }
        let columns = try columnsNode?.stringList()
        if let columns, let columnsNode {
            if columns.isEmpty { throw columnsNode.error("columns needs at least one column (leave it out for all).") }
            if let repeated = columns.indices.first(where: { columns[..<$0].contains(columns[$0]) }) {
                throw columnsNode.error("column '\(columns[repeated])' is listed twice.")
            }
        }
        let imageFieldsNode = try datasetNode.child("image_fields")
        let imageFields = try imageFieldsNode?.stringList() ?? (format == .imagefolder ? ["image"] : [])
        if format == .imagefolder, let imageFieldsNode, imageFields != ["image"] {
            throw imageFieldsNode.error("an imagefolder dataset has one image field, 'image'; leave image_fields out.")
        }
        let limitDefaults = ImageFile.Limits()
        let maxBytesNode = try datasetNode.child("max_image_bytes")
        let maxPixelsNode = try datasetNode.child("max_image_pixels")
        let limits = ImageFile.Limits(
            maxBytes: try maxBytesNode?.int() ?? limitDefaults.maxBytes,
            maxPixels: try maxPixelsNode?.int() ?? limitDefaults.maxPixels)
        if limits.maxBytes < 1 { throw maxBytesNode!.error("max_image_bytes must be at least 1.") }
        if limits.maxPixels < 1 { throw maxPixelsNode!.error("max_image_pixels must be at least 1.") }
        return Dataset(
            path: datasetPath, format: format, idField: try datasetNode.child("id_field")?.string(),
            imageFields: imageFields, imageLimits: limits,
            pathLocation: "\(datasetNode.file):\(try datasetNode.require("path").line)",
            split: try splitNode?.string(), columns: columns)
    }

    /// The settings of an engine of kind `ray`: its dashboard, its processor and where its jobs'
    /// files travel.
    /// - Parameter bucket: the run's cache is a bucket (the jobs may exchange files there).
    private static func parseRay(_ node: ConfigReader, baseURLs: [String], bucket: Bool) throws -> Engine.Ray {
        let processor = try node.child("processor")?.oneOf(["http", "vllm"]) ?? "http"
        if processor == "http" && baseURLs.count != 1 {
            throw node.error(
                "an engine of kind 'ray' needs 'base_url': the OpenAI-compatible endpoint its jobs send requests to "
                    + "(or processor: vllm, to run vLLM inside the jobs).")
        }
        if processor == "vllm" {
            if !baseURLs.isEmpty {
                throw node.error(
                    "'base_url' does not apply with processor: vllm (vLLM runs inside the Ray job); leave it out.")
            }
            if let task = try node.child("task"), try task.string() == "rerank" {
                throw task.error(
                    "processor: vllm cannot rerank (Ray's vLLM stage takes one prompt per row, and a cross-encoder "
                        + "needs the query and document tokenized together): use processor: http with a vLLM server."
                )
            }
            if let dialect = try node.child("dialect"), try dialect.string() != "vllm" {
                throw dialect.error(
                    "processor: vllm sends vLLM's own request bodies: set dialect: vllm (the cache keys then match a "
                        + "vllm serve endpoint's).")
            }
        }
        let kwargsNode = try node.child("engine_kwargs")
        let engineKwargs = try kwargsNode?.json()
        if let kwargsNode {
            guard processor == "vllm" else {
                throw kwargsNode.error("'engine_kwargs' applies with processor: vllm only.")
            }
            guard case .object(let kwargs) = engineKwargs else {
                throw kwargsNode.error("'engine_kwargs' must be a mapping of vLLM engine arguments.")
            }
            // They travel in the job's entrypoint and the manifest, where a secret must never be.
            if kwargs["hf_token"] != nil {
                throw kwargsNode.error(
                    "'hf_token' would be shown in the Ray job table and written to the manifest; set HF_TOKEN in the "
                        + "cluster nodes' environment instead.")
            }
        }
        guard let address = try node.child("address")?.string() else {
            throw node.error("an engine of kind 'ray' needs 'address': the Ray dashboard, e.g. http://head:8265.")
        }
        let output = try node.child("output_dir")?.filePath()
        if output == nil && !bucket {
            throw node.error(
                "an engine of kind 'ray' needs 'output_dir' (a directory its jobs write answers to and this machine "
                    + "reads: a shared filesystem), or a cache of kind 's3' or 'tiered', whose bucket its jobs then "
                    + "exchange files through.")
        }
        return Engine.Ray(
            address: address, python: try node.child("python")?.string() ?? "python", outputDirectory: output,
            batchSize: try node.child("batch_size")?.int() ?? 16,
            concurrency: try node.child("concurrency")?.int() ?? 1, processor: processor,
            engineKwargs: engineKwargs)
    }

    /// Each base URL is an http:// or https:// URL with a host.
    private static func checkURLs(_ baseURLs: [String], _ node: ConfigReader) throws {
        for url in baseURLs {
            guard let scheme = URL(string: url)?.scheme?.lowercased(), ["http", "https"].contains(scheme),
                URL(string: url)?.host?.isEmpty == false
            else {
                let urlNode = try node.child("base_url") ?? node.child("base_urls") ?? node
                throw urlNode.error(
                    "'\(url)' is not an http:// or https:// URL. Give the server's address, "
                        + "e.g. http://127.0.0.1:8000/v1.")
            }
        }
    }

    /// - Parameter bucket: the run's cache is a bucket (a Ray engine's jobs may exchange files there).
    private static func parseEngine(_ node: ConfigReader, strict: Bool, bucket: Bool) throws -> Engine {
        try node.checkKeys(
            [
                "name", "kind", "dialect", "model", "base_url", "base_urls", "api_key_env", "slots", "context_per_slot",
                "max_in_flight", "timeout_s", "max_retries", "task", "threads", "poll",
                "max_in_flight_per_replica", "pricing",
            ] + rayKeys + Engine.Batch.keys)
        let kind = try node.child("kind")?.oneOf(["local", "openai", "ray", "batch"]) ?? "local"
        let modelNode = try node.require("model")
        try modelNode.checkKeys(["id", "path", "revision"])
        let model = Model(
            id: try modelNode.require("id").string(),
            location: "\(modelNode.file):\(try modelNode.child("path")?.line ?? modelNode.line)",
            path: try modelNode.child("path")?.filePath(),
            revision: try modelNode.child("revision")?.string())
        let batch = try Engine.Batch.parse(node, kind: kind, strict: strict)
        var baseURLs = try node.child("base_urls")?.stringList() ?? []
        if let single = try node.child("base_url")?.string() { baseURLs.insert(single, at: 0) }
        if let batch, baseURLs.isEmpty, let url = Engine.Batch.defaultBaseURL(batch.provider) { baseURLs = [url] }
        if kind == "openai" && baseURLs.isEmpty {
            throw node.error("an engine of kind 'openai' needs 'base_url' (or 'base_urls' for replicas).")
        }
        var ray: Engine.Ray?
        if kind == "ray" {
            ray = try parseRay(node, baseURLs: baseURLs, bucket: bucket)
        } else {
            for key in rayKeys {
                if let extra = try node.child(key) {
                    throw extra.error("'\(key)' applies to engines of kind 'ray' only.")
                }
            }
        }
        try checkURLs(baseURLs, node)
        if kind != "local" && model.revision == nil {
            throw modelNode.error(
                "an '\(kind)' engine needs model.revision (e.g. the Hugging Face commit) to pin its model.")
        }
        let slots = try node.child("slots")?.int() ?? 2
        let task = try node.child("task")?.oneOf(["chat", "embed", "rerank"]) ?? "chat"
        let dialectNode = try node.child("dialect")
        let (onnx, threads, poll) = try localServer(node, kind: kind, task: task, model: model)
        let engineKind: Engine.Kind =
            if let ray { .ray(ray) } else if let batch { .batch(batch) } else if kind == "local" {
                .local(Engine.Local(threads: threads, poll: poll))
            } else {
                .openAI
            }
        let perReplicaNode = try node.child("max_in_flight_per_replica")
        let perReplica = try perReplicaNode?.int()
        if let perReplica, perReplica < 1 {
            throw perReplicaNode!.error("max_in_flight_per_replica must be at least 1.")
        }
        var engine = Engine(
            name: try node.child("name")?.string() ?? kind,
            kind: engineKind,
            dialect: try dialectNode?.oneOf(EngineDialectNames.all)
                ?? (onnx || batch?.provider == "vllm-file"
                    ? "vllm" : kind == "local" ? "llamacpp" : ray?.processor == "vllm" ? "vllm" : "openai"),
            model: model, baseURLs: baseURLs,
            apiKeyEnv: try node.child("api_key_env")?.string(),
            slots: strict ? 1 : slots,
            contextPerSlot: try node.child("context_per_slot")?.int() ?? 2048,
            // A batch engine's requests in flight are its batches' items (one strict run's order holds
            // whatever order a batch answers in).
            maxInFlight: strict && batch == nil
                ? 1
                : try node.child("max_in_flight")?.int()
                    ?? (batch?.maxRequests ?? (kind == "local" ? slots * 2 : kind == "ray" ? 256 : 16)),
            // A Ray engine's timeout is a whole job's.
            timeoutSeconds: try node.child("timeout_s")?.double() ?? (kind == "ray" ? 3600 : 120),
            maxRetries: try node.child("max_retries")?.int() ?? 3, task: task, maxInFlightPerReplica: perReplica)
        engine.pricing = try Pricing.parse(node.child("pricing"))
        return engine
    }

    /// How a `local` engine's server runs: whether it serves an ONNX embedding model, its threads and
    /// its `poll`; `threads` and `poll` are refused for other kinds.
    private static func localServer(_ node: ConfigReader, kind: String, task: String, model: Model) throws
        -> (onnx: Bool, threads: Int, poll: Int?)
    {
        // A local embedding engine serves an ONNX model (the default) with ONNX Runtime behind vLLM's
        // API (scripts/embedding_server.py), or a GGUF model with llama.cpp: a model.path ending in
        // .gguf, or `dialect: llamacpp` for the default model's GGUF conversion (as the resolved
        // configs of runs made before the ONNX server list it).
        let dialectNode = try node.child("dialect")
        let llamaDialect = try dialectNode?.string() == "llamacpp"
        let onnx =
            kind == "local" && task == "embed"
            && (model.path.map { $0.hasSuffix(".onnx") } ?? !llamaDialect)
        if onnx, let dialectNode, try dialectNode.string() != "vllm" {
            throw dialectNode.error(
                "an ONNX embedding model is served behind vLLM's API: leave dialect out (or set vllm), or give "
                    + "model.path a GGUF file for llama.cpp.")
        }
        let threadsNode = try node.child("threads")
        if let threadsNode, kind != "local" {
            throw threadsNode.error("'threads' applies to engines of kind 'local' only.")
        }
        // ONNX Runtime's threads do not stall on a busy machine as llama.cpp's do (measured:
        // docs/perf_tuning.md), so it gets every core.
        let threads = try threadsNode?.int() ?? (onnx ? 0 : Self.defaultThreads())
        if threads < 0 { throw threadsNode!.error("threads must be 0 (every core) or more.") }
        let pollNode = try node.child("poll")
        if let pollNode, kind != "local" || onnx {
            throw pollNode.error("'poll' applies to llama.cpp engines (kind 'local', a GGUF model) only.")
        }
        let poll = try pollNode?.int() ?? (kind == "local" && !onnx ? Self.defaultPoll : nil)
        if let poll, !(0...100).contains(poll) { throw pollNode!.error("poll must be between 0 and 100.") }
        return (onnx, threads, poll)
    }

    /// `poll` of a local engine when the config gives none: 0, so ggml's idle threads sleep
    /// instead of spinning while another process wants the core (bench/engine_contention.sh: on 2
    /// busy cores, 2 threads took 60 s with poll 0 and 278 s with llama.cpp's 50 for 30 mvp rows;
    /// no cost when idle).
    package static let defaultPoll: Int? = 0

    /// Threads of a local engine when the config gives none: one fewer than the machine has cores,
    /// at least one. With every core, ggml's threads wait for each other at each step, and one of
    /// them descheduled by any other process stalls them all: on 2 cores next to `stress-ng --cpu 2`
    /// (bench/engine_contention.sh, 30 mvp rows), 2 threads took 278 s against 11 s idle (25×),
    /// 1 thread 26 s against 17 s (1.5×). Embedding batches showed the same (docs/config.md).
    package static func defaultThreads() -> Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
    }

    /// The config with every default filled in, as written to `config.resolved.yaml`.
    ///
    /// Secrets never appear here: an engine's API key is named by its environment variable only.
    public var resolvedJSON: JSONValue {
        func optional(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        let resolved: JSONValue = [
            "run": [
                "name": .string(name), "seed": .int(Int64(seed)), "determinism": .string(determinism.rawValue),
                "max_failure_ratio": .double(maxFailureRatio), "limit": limit.map { .int(Int64($0)) } ?? .null,
            ],
            "dataset": .object(
                [
                    "path": .string(dataset.path), "format": .string(dataset.format.name),
                    "id_field": optional(dataset.idField),
                    "image_fields": .array(dataset.imageFields.map(JSONValue.string)),
                    "max_image_bytes": .int(Int64(dataset.imageLimits.maxBytes)),
                    "max_image_pixels": .int(Int64(dataset.imageLimits.maxPixels)),
                ].merging(dataset.parquetKeys) { _, new in new }),
            "engines": .array(
                engines.map { e in
                    var engine: [String: JSONValue] = [
                        "name": .string(e.name), "kind": .string(e.kind.name.rawValue), "dialect": .string(e.dialect),
                        "model": [
                            "id": .string(e.model.id), "path": optional(e.model.path),
                            "revision": optional(e.model.revision),
                        ],
                        "base_urls": .array(e.baseURLs.map(JSONValue.string)), "api_key_env": optional(e.apiKeyEnv),
                        "slots": .int(Int64(e.slots)), "context_per_slot": .int(Int64(e.contextPerSlot)),
                        "max_in_flight": .int(Int64(e.maxInFlight)), "timeout_s": .double(e.timeoutSeconds),
                        "max_retries": .int(Int64(e.maxRetries)), "task": .string(e.task),
                        "threads": .optional(e.local?.threads),
                    ]
                    // Only when set, so the resolved config (and its hash) of every other run stays as it was.
                    if let poll = e.local?.poll { engine["poll"] = .int(Int64(poll)) }
                    if let limit = e.maxInFlightPerReplica { engine["max_in_flight_per_replica"] = .int(Int64(limit)) }
                    if let pricing = e.pricing { engine["pricing"] = pricing.json }
                    if let batch = e.batch { engine.merge(batch.json) { _, new in new } }
                    if let ray = e.ray {
                        engine["address"] = .string(ray.address)
                        engine["python"] = .string(ray.python)
                        if let output = ray.outputDirectory { engine["output_dir"] = .string(output) }
                        engine["batch_size"] = .int(Int64(ray.batchSize))
                        engine["concurrency"] = .int(Int64(ray.concurrency))
                        // Only for vLLM processors, so an HTTP processor's resolved config stays as it was.
                        if ray.processor != "http" { engine["processor"] = .string(ray.processor) }
                        if let kwargs = ray.engineKwargs { engine["engine_kwargs"] = kwargs }
                    }
                    return .object(engine)
                }),
            "prompts": ["pack": promptPack.map(JSONValue.string) ?? .null],
            "cache": cacheJSON,
            "stages": .array(stages.map(\.resolvedJSON)),
        ]
        // Only when asked for, so every other run's resolved config (and plan hash) stays as it was.
        guard outputFormat != "jsonl" || budget != nil, case .object(var fields) = resolved else { return resolved }
        if outputFormat != "jsonl" { fields["outputs"] = ["format": .string(outputFormat)] }
        if let budget { fields["budget"] = budget.json }
        return .object(fields)
    }
}

/// Dialect names, kept here so config parsing does not depend on the engine module's types.
package enum EngineDialectNames {
    package static let all = ["vllm", "llamacpp", "openai", "sglang"]
}

/// Writes JSON as YAML with keys in sorted order, for `config.resolved.yaml`.
package enum ResolvedYAML {
    /// - Parameters:
    ///   - value: what to write.
    ///   - leading: keys written before the others, in this order, wherever they occur (a dataset
    ///     card's features need their type key before `length`); the others are sorted.
    package static func string(_ value: JSONValue, leading: [String] = []) throws -> String {
        try Yams.serialize(node: node(value, leading: leading), sortKeys: false)
    }

    private static func node(_ value: JSONValue, leading: [String]) -> Node {
        switch value {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .int, .double: return Node(CanonicalJSON.string(value), Tag(.float))
        case .string(let s): return Node(s, Tag(.str), needsQuotes(s) ? .doubleQuoted : .any)
        case .array(let items): return Node(items.map { node($0, leading: leading) })
        case .object(let members):
            let rank = { (key: String) in leading.firstIndex(of: key) ?? leading.count }
            return Node(
                members.sorted { (rank($0.key), $0.key) < (rank($1.key), $1.key) }.map {
                    (Node($0.key), node($0.value, leading: leading))
                })
        }
    }

    private static func needsQuotes(_ s: String) -> Bool {
        ["null", "true", "false", "yes", "no", "~", ""].contains(s.lowercased()) || Double(s) != nil
    }
}
