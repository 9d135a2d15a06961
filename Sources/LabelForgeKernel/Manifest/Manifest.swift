import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO

/// One line of `manifest.jsonl` (docs/run_contract.md): the run's pins, one row's result at one
/// stage, a committed barrier, or the run's summary.
///
/// `json` is the only way a record becomes a line and `init(json:)` the only way a line becomes a
/// record; `ManifestWriter` and `ManifestReader` are the only places that touch the file.
public enum ManifestRecord: Sendable, Equatable {
    case run(RunRecord)
    case row(RowRecord)
    case barrier(BarrierRecord)
    case summary(SummaryRecord)
    /// A batch engine's batch (`BatchRecord`).
    case batch(BatchRecord)

    public var json: JSONValue {
        switch self {
        case .run(let record): return record.json
        case .row(let record): return record.json
        case .barrier(let record): return record.json
        case .summary(let record): return record.json
        case .batch(let record): return record.json
        }
    }

    /// Reads a manifest line.
    /// - Throws: `LabelForgeError.invalidJSON` naming the field when the line is not a record.
    public init(json: JSONValue) throws {
        let fields = try ManifestFields(json)
        switch try fields.string("type") {
        case "run": self = .run(try RunRecord(fields))
        case "row": self = .row(try RowRecord(fields))
        case "barrier": self = .barrier(try BarrierRecord(fields))
        case "summary": self = .summary(try SummaryRecord(fields))
        case "batch": self = .batch(try BatchRecord(fields))
        case let other: throw LabelForgeError(.invalidJSON, "unknown record type '\(other)'.")
        }
    }
}

extension ManifestRecord: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try json.encode(to: encoder)
    }
}

/// The manifest's first line: everything the run is pinned to.
public struct RunRecord: Sendable, Equatable {
    public struct DatasetPin: Sendable, Equatable {
        public var path: String
        public var format: String
        public var fingerprint: String
        public var rows: Int
    }

    public struct PromptPackPin: Sendable, Equatable {
        public var name: String
        public var version: String
        public var hash: String
    }

    public struct ModelPin: Sendable, Equatable {
        public var engine: String
        public var id: String
        public var revision: String
        /// The GGUF file's name for local engines.
        public var file: String?
    }

    public struct StagePin: Sendable, Equatable {
        public var id: String
        public var type: String
        public var version: Int
        public var engine: String
    }

    /// An engine as the run found it; `info` is what the server reported about itself.
    public struct EnginePin: Sendable, Equatable {
        public var name: String
        public var kind: String
        public var dialect: String
        public var slots: Int?
        public var maxInFlight: Int
        public var replicas: Int
        public var info: JSONValue
    }

    public var runID: String
    public var planHash: String
    public var configHash: String
    public var labelforgeVersion: String
    public var gitRevision: String?
    public var dataset: DatasetPin
    public var promptPack: PromptPackPin
    public var models: [ModelPin]
    public var determinism: String
    public var runSeed: UInt64
    public var environment: JSONValue
    public var stages: [StagePin]
    public var createdAt: String
    public var noCache: Bool
    public var limit: Int?
    public var engines: [EnginePin]
    /// The run this one replays.
    public var replayOf: String?
    /// The part of the dataset a `--shard i/N` run covers.
    public var shard: ShardSpec? = nil
    /// The shard runs `labelforge merge` merged into this one.
    public var mergedFrom: [String]? = nil

    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "type": "run", "run_id": .string(runID), "plan_hash": .string(planHash), "config_hash": .string(configHash),
            "labelforge_version": .string(labelforgeVersion), "git_revision": .optional(gitRevision),
            "dataset": [
                "path": .string(dataset.path), "format": .string(dataset.format),
                "fingerprint": .string(dataset.fingerprint), "rows": .int(Int64(dataset.rows)),
            ],
            "prompt_pack": [
                "name": .string(promptPack.name), "version": .string(promptPack.version),
                "hash": .string(promptPack.hash),
            ],
            "models": .array(
                models.map {
                    [
                        "engine": .string($0.engine), "id": .string($0.id), "revision": .string($0.revision),
                        "file": .optional($0.file),
                    ]
                }),
            "determinism": .string(determinism), "run_seed": .int(Int64(runSeed)), "environment": environment,
            "stages": .array(
                stages.map {
                    [
                        "id": .string($0.id), "type": .string($0.type), "version": .int(Int64($0.version)),
                        "engine": .string($0.engine),
                    ]
                }),
            "created_at": .string(createdAt), "no_cache": .bool(noCache), "limit": .optional(limit),
            "engines": .array(
                engines.map {
                    [
                        "name": .string($0.name), "kind": .string($0.kind), "dialect": .string($0.dialect),
                        "slots": .optional($0.slots), "max_in_flight": .int(Int64($0.maxInFlight)),
                        "replicas": .int(Int64($0.replicas)), "info": $0.info,
                    ]
                }),
        ]
        if let replayOf { json["replay_of"] = .string(replayOf) }
        if let shard { json["shard"] = shard.json }
        if let mergedFrom { json["merged_from"] = .array(mergedFrom.map(JSONValue.string)) }
        return .object(json)
    }

    package init(_ f: ManifestFields) throws {
        let dataset = try f.object("dataset")
        let pack = try f.object("prompt_pack")
        self.init(
            runID: try f.string("run_id"), planHash: try f.string("plan_hash"), configHash: try f.string("config_hash"),
            labelforgeVersion: try f.string("labelforge_version"), gitRevision: try f.optionalString("git_revision"),
            dataset: DatasetPin(
                path: try dataset.string("path"), format: try dataset.string("format"),
                fingerprint: try dataset.string("fingerprint"), rows: try dataset.int("rows")),
            promptPack: PromptPackPin(
                name: try pack.string("name"), version: try pack.string("version"), hash: try pack.string("hash")),
            models: try f.objects("models").map {
                ModelPin(
                    engine: try $0.string("engine"), id: try $0.string("id"), revision: try $0.string("revision"),
                    file: try $0.optionalString("file"))
            },
            determinism: try f.string("determinism"), runSeed: UInt64(max(0, try f.int("run_seed"))),
            environment: f.value("environment") ?? .null,
            stages: try f.objects("stages").map {
                StagePin(
                    id: try $0.string("id"), type: try $0.string("type"), version: try $0.int("version"),
                    engine: try $0.string("engine"))
            },
            createdAt: try f.string("created_at"), noCache: try f.optionalBool("no_cache") ?? false,
            limit: try f.optionalInt("limit"),
            engines: try f.objects("engines", optional: true).map {
                EnginePin(
                    name: try $0.string("name"), kind: try $0.string("kind"), dialect: try $0.string("dialect"),
                    slots: try $0.optionalInt("slots"), maxInFlight: try $0.int("max_in_flight"),
                    replicas: try $0.optionalInt("replicas") ?? 1, info: $0.value("info") ?? .null)
            },
            replayOf: try f.optionalString("replay_of"))
        shard = try f.optionalObject("shard").map {
            try ShardSpec(index: try $0.int("index"), count: try $0.int("count"))
        }
        mergedFrom = try f.optionalStrings("merged_from")
    }

    package init(
        runID: String, planHash: String, configHash: String, labelforgeVersion: String, gitRevision: String?,
        dataset: DatasetPin, promptPack: PromptPackPin, models: [ModelPin], determinism: String, runSeed: UInt64,
        environment: JSONValue, stages: [StagePin], createdAt: String, noCache: Bool, limit: Int?,
        engines: [EnginePin], replayOf: String?
    ) {
        self.runID = runID
        self.planHash = planHash
        self.configHash = configHash
        self.labelforgeVersion = labelforgeVersion
        self.gitRevision = gitRevision
        self.dataset = dataset
        self.promptPack = promptPack
        self.models = models
        self.determinism = determinism
        self.runSeed = runSeed
        self.environment = environment
        self.stages = stages
        self.createdAt = createdAt
        self.noCache = noCache
        self.limit = limit
        self.engines = engines
        self.replayOf = replayOf
    }
}

/// What one stage did for one row.
public struct RowRecord: Sendable, Equatable {
    public var rowID: String
    public var stage: String
    /// The cache keys of the requests the stage made, `sha256:`-prefixed.
    public var requestKeys: [String]
    /// `hit` when every request came from the cache, `miss` when one did not, `none` for none.
    public var cache: String
    public var attempts: Int
    /// How many of `requestKeys` came from the cache.
    public var cacheHits: Int
    public var latencyMs: Int
    public var tokensIn: Int
    public var tokensOut: Int
    /// For a row a fan-out made: the row it came from, and which sample it is.
    public var parentRowID: String?
    public var sampleIndex: Int?
    public var error: StageFailure?
    /// Whether a filter or a barrier removed the row here.
    public var dropped: Bool
    /// The hash of the row's output (or rejected) record.
    public var outputHash: String
    /// The replica that answered each request sent to the engine, in order, when the engine has
    /// several (`base_urls`); empty otherwise. Never part of a cache key.
    public var servedBy: [String] = []

    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "type": "row", "row_id": .string(rowID), "stage": .string(stage),
            "request_keys": .array(requestKeys.map(JSONValue.string)), "cache": .string(cache),
            "attempts": .int(Int64(attempts)), "cache_hits": .int(Int64(cacheHits)),
            "latency_ms": .int(Int64(latencyMs)), "tokens_in": .int(Int64(tokensIn)),
            "tokens_out": .int(Int64(tokensOut)), "output_hash": .string(outputHash),
        ]
        if let parentRowID {
            json["parent_row_id"] = .string(parentRowID)
            json["sample_index"] = .optional(sampleIndex)
        }
        if let error { json["error"] = error.json }
        if dropped { json["dropped"] = true }
        if !servedBy.isEmpty { json["served_by"] = .array(servedBy.map(JSONValue.string)) }
        return .object(json)
    }

    /// Appends the canonical form of `json` without building it: row lines are most of a
    /// manifest. Keys in sorted order; `ManifestTests` checks the bytes equal `json`'s.
    package func write(into out: inout [UInt8]) {
        var opening = UInt8(ascii: "{")
        func key(_ name: StaticString) {
            out.append(opening)
            opening = UInt8(ascii: ",")
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        func int(_ value: Int) { CanonicalJSON.writeInt(Int64(value), into: &out) }
        func string(_ value: String) { CanonicalJSON.writeString(value, into: &out) }
        func strings(_ values: [String]) {
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                string(value)
            }
            out.append(UInt8(ascii: "]"))
        }
        key("attempts")
        int(attempts)
        key("cache")
        string(cache)
        key("cache_hits")
        int(cacheHits)
        if dropped {
            key("dropped")
            out.append(contentsOf: "true".utf8)
        }
        if let error {
            key("error")
            CanonicalJSON.write(error.json, into: &out)
        }
        key("latency_ms")
        int(latencyMs)
        key("output_hash")
        string(outputHash)
        if let parentRowID {
            key("parent_row_id")
            string(parentRowID)
        }
        key("request_keys")
        strings(requestKeys)
        key("row_id")
        string(rowID)
        if parentRowID != nil {
            key("sample_index")
            if let sampleIndex { int(sampleIndex) } else { out.append(contentsOf: "null".utf8) }
        }
        if !servedBy.isEmpty {
            key("served_by")
            strings(servedBy)
        }
        key("stage")
        string(stage)
        key("tokens_in")
        int(tokensIn)
        key("tokens_out")
        int(tokensOut)
        key("type")
        string("row")
        out.append(UInt8(ascii: "}"))
    }

    package init(_ f: ManifestFields) throws {
        let keys = try f.strings("request_keys")
        let cache = try f.string("cache")
        rowID = try f.string("row_id")
        stage = try f.string("stage")
        requestKeys = keys
        self.cache = cache
        attempts = try f.optionalInt("attempts") ?? 0
        // Manifests written before `cache_hits` existed: a hit line's keys all hit.
        cacheHits = try f.optionalInt("cache_hits") ?? (cache == "hit" ? keys.count : 0)
        latencyMs = try f.optionalInt("latency_ms") ?? 0
        tokensIn = try f.optionalInt("tokens_in") ?? 0
        tokensOut = try f.optionalInt("tokens_out") ?? 0
        parentRowID = try f.optionalString("parent_row_id")
        sampleIndex = try f.optionalInt("sample_index")
        error = try f.optionalObject("error").map {
            StageFailure(
                errorClass: try $0.optionalString("class") ?? "unknown", message: try $0.optionalString("message") ?? ""
            )
        }
        dropped = try f.optionalBool("dropped") ?? false
        outputHash = try f.optionalString("output_hash") ?? ""
        servedBy = try f.optionalStrings("served_by") ?? []
    }

    package init(
        rowID: String, stage: String, requestKeys: [String], cache: String, attempts: Int, cacheHits: Int,
        latencyMs: Int, tokensIn: Int, tokensOut: Int, parentRowID: String? = nil, sampleIndex: Int? = nil,
        error: StageFailure? = nil, dropped: Bool = false, outputHash: String
    ) {
        self.rowID = rowID
        self.stage = stage
        self.requestKeys = requestKeys
        self.cache = cache
        self.attempts = attempts
        self.cacheHits = cacheHits
        self.latencyMs = latencyMs
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.parentRowID = parentRowID
        self.sampleIndex = sampleIndex
        self.error = error
        self.dropped = dropped
        self.outputHash = outputHash
    }
}

/// A dataset-wide stage whose result the run committed.
public struct BarrierRecord: Sendable, Equatable {
    /// Every distinct engine request the stage made, counted once however many rows it concerns.
    public struct Requests: Sendable, Equatable {
        public var lookups = 0
        public var cacheHits = 0
        public var failed = 0
        public var tokensIn = 0
        /// Texts longer than the model's window, cut to it.
        public var truncated = 0
        /// Prompt tokens of the requests without an answer, estimated (`labelforge plan`).
        public var estimatedTokensIn = 0

        package var json: JSONValue {
            var json: [String: JSONValue] = [
                "lookups": .int(Int64(lookups)), "cache_hits": .int(Int64(cacheHits)), "failed": .int(Int64(failed)),
                "tokens_in": .int(Int64(tokensIn)), "truncated": .int(Int64(truncated)),
            ]
            if estimatedTokensIn > 0 { json["estimated_tokens_in"] = .int(Int64(estimatedTokensIn)) }
            return .object(json)
        }

        package init() {}

        package init(_ f: ManifestFields) throws {
            lookups = try f.int("lookups")
            cacheHits = try f.int("cache_hits")
            failed = try f.optionalInt("failed") ?? 0
            tokensIn = try f.optionalInt("tokens_in") ?? 0
            truncated = try f.optionalInt("truncated") ?? 0
            estimatedTokensIn = try f.optionalInt("estimated_tokens_in") ?? 0
        }
    }

    public var stage: String
    public var rowsIn: Int
    public var rowsOut: Int
    /// The hash of the committed result's row file.
    public var resultDigest: String
    public var latencyMs: Int
    /// The stage's engine requests (none for stages that send none, e.g. an exact dedup).
    public var requests: Requests? = nil
    /// Keys of the requests no row line lists (a corpus file's passages), so replay can check the
    /// cache for every request the run made.
    public var requestKeys: [String] = []

    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "type": "barrier", "stage": .string(stage), "rows_in": .int(Int64(rowsIn)),
            "rows_out": .int(Int64(rowsOut)), "result_digest": .string(resultDigest),
            "latency_ms": .int(Int64(latencyMs)),
        ]
        // Only when the stage made requests, so other barriers' lines stay as they were.
        if let requests {
            json["requests"] = requests.json
            json["request_keys"] = .array(requestKeys.map(JSONValue.string))
        }
        return .object(json)
    }

    package init(_ f: ManifestFields) throws {
        self.init(
            stage: try f.string("stage"), rowsIn: try f.int("rows_in"), rowsOut: try f.int("rows_out"),
            resultDigest: try f.string("result_digest"), latencyMs: try f.optionalInt("latency_ms") ?? 0)
        requests = try f.optionalObject("requests").map(Requests.init)
        requestKeys = try f.optionalStrings("request_keys") ?? []
    }

    package init(
        stage: String, rowsIn: Int, rowsOut: Int, resultDigest: String, latencyMs: Int, requests: Requests? = nil,
        requestKeys: [String] = []
    ) {
        self.stage = stage
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.resultDigest = resultDigest
        self.latencyMs = latencyMs
        self.requests = requests
        self.requestKeys = requestKeys
    }
}

/// How a run (or one attempt at it) ended: `completed`, `aborted`, `interrupted` or `failed`.
public struct SummaryRecord: Sendable, Equatable {
    public struct Counts: Sendable, Equatable {
        public var rows: Int
        public var rowsFailed: Int
        public var stages: [String: StageStats]
    }

    /// Agreement of one output field with a gold field.
    public struct Gold: Sendable, Equatable {
        public var stage: String
        public var field: String
        public var goldField: String
        public var n: Int
        public var accuracy: Double
        public var macroF1: Double
        /// Unweighted Cohen's kappa against gold (absent from runs before 0.x; `nil` when undefined).
        public var kappa: Double? = nil
        /// The accuracy of always answering the most common gold label.
        public var majority: Double? = nil
        /// Seeded bootstrap 95% intervals (`Bootstrap()`: 1,000 resamples, seed 0).
        public var intervals: ScoreIntervals? = nil

        package var json: JSONValue {
            var json: [String: JSONValue] = [
                "stage": .string(stage), "field": .string(field), "gold_field": .string(goldField),
                "n": .int(Int64(n)), "accuracy": .double(accuracy), "macro_f1": .double(macroF1),
            ]
            if let kappa { json["kappa"] = .double(Self.rounded(kappa)) }
            if let majority { json["majority_baseline"] = .double(Self.rounded(majority)) }
            if let intervals {
                json["accuracy_ci"] = Self.json(intervals.accuracy)
                json["macro_f1_ci"] = Self.json(intervals.macroF1)
                if let kappa = intervals.kappa { json["kappa_ci"] = Self.json(kappa) }
            }
            return .object(json)
        }

        static func rounded(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }

        static func json(_ interval: Interval) -> JSONValue {
            [.double(rounded(interval.lower)), .double(rounded(interval.upper))]
        }

        static func intervals(_ fields: ManifestFields) -> ScoreIntervals? {
            guard let accuracy = interval(fields, "accuracy_ci"), let macroF1 = interval(fields, "macro_f1_ci")
            else { return nil }
            return ScoreIntervals(accuracy: accuracy, macroF1: macroF1, kappa: interval(fields, "kappa_ci"))
        }

        static func interval(_ fields: ManifestFields, _ key: String) -> Interval? {
            guard let pair = fields.value(key)?.arrayValue, pair.count == 2, let lower = pair[0].doubleValue,
                let upper = pair[1].doubleValue
            else { return nil }
            return Interval(lower: lower, upper: upper)
        }
    }

    public var status: String
    public var counts: Counts?
    public var outputDigests: [String: String]?
    public var engineRequests: Int?
    public var finishedAt: String
    public var gold: [Gold]?
    public var abortReason: String?
    /// Why the run failed (status `failed`).
    public var error: StageFailure?
    /// The dataset-wide stage a shard run (or a merge without `--continue`) stopped before.
    public var stoppedBefore: String? = nil
    /// What this invocation's requests cost, per engine with `pricing`: `[{engine, requests,
    /// tokens_in, tokens_out, usd}]`; absent when nothing priced was sent.
    public var cost: JSONValue? = nil

    /// Whether the run reached its end: `--resume` has nothing left to do.
    public var isFinal: Bool { status == "completed" || status == "aborted" }

    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "type": "summary", "status": .string(status), "finished_at": .string(finishedAt),
        ]
        if let counts {
            json["counts"] = [
                "rows": .int(Int64(counts.rows)), "rows_failed": .int(Int64(counts.rowsFailed)),
                "stages": .object(counts.stages.mapValues(\.json)),
            ]
        }
        if let outputDigests { json["output_digests"] = .object(outputDigests.mapValues(JSONValue.string)) }
        if let engineRequests { json["engine_requests"] = .int(Int64(engineRequests)) }
        if let gold { json["gold"] = .array(gold.map(\.json)) }
        if let abortReason { json["abort_reason"] = .string(abortReason) }
        if let error { json["error"] = error.json }
        if let stoppedBefore { json["stopped_before"] = .string(stoppedBefore) }
        if let cost { json["cost"] = cost }
        return .object(json)
    }

    package init(_ f: ManifestFields) throws {
        cost = f.value("cost")
        status = try f.string("status")
        finishedAt = try f.optionalString("finished_at") ?? ""
        counts = try f.optionalObject("counts").map { counts in
            var stages: [String: StageStats] = [:]
            for (id, stats) in try counts.optionalObject("stages")?.members ?? [:] {
                stages[id] = try StageStats(try ManifestFields(stats, path: counts.path + ".stages.\(id)"))
            }
            return Counts(rows: try counts.int("rows"), rowsFailed: try counts.int("rows_failed"), stages: stages)
        }
        outputDigests = try f.optionalObject("output_digests").map { digests in
            try digests.members.keys.reduce(into: [:]) { $0[$1] = try digests.string($1) }
        }
        engineRequests = try f.optionalInt("engine_requests")
        gold =
            f.value("gold") == nil
            ? nil
            : try f.objects("gold").map {
                Gold(
                    stage: try $0.string("stage"), field: try $0.string("field"),
                    goldField: try $0.string("gold_field"), n: try $0.int("n"), accuracy: try $0.double("accuracy"),
                    macroF1: try $0.double("macro_f1"), kappa: $0.value("kappa")?.doubleValue,
                    majority: $0.value("majority_baseline")?.doubleValue,
                    intervals: Gold.intervals($0))
            }
        abortReason = try f.optionalString("abort_reason")
        stoppedBefore = try f.optionalString("stopped_before")
        error = try f.optionalObject("error").map {
            StageFailure(
                errorClass: try $0.optionalString("class") ?? "unknown", message: try $0.optionalString("message") ?? ""
            )
        }
    }

    package init(
        status: String, counts: Counts? = nil, outputDigests: [String: String]? = nil, engineRequests: Int? = nil,
        finishedAt: String, gold: [Gold]? = nil, abortReason: String? = nil, error: StageFailure? = nil
    ) {
        self.status = status
        self.counts = counts
        self.outputDigests = outputDigests
        self.engineRequests = engineRequests
        self.finishedAt = finishedAt
        self.gold = gold
        self.abortReason = abortReason
        self.error = error
    }
}

extension StageStats {
    package init(_ f: ManifestFields) throws {
        self.init()
        ok = try f.int("ok")
        failed = try f.int("failed")
        cacheHits = try f.optionalInt("cache_hits") ?? 0
        cacheMisses = try f.optionalInt("cache_misses") ?? 0
        tokensIn = try f.optionalInt("tokens_in") ?? 0
        tokensOut = try f.optionalInt("tokens_out") ?? 0
        let errors = try f.optionalObject("errors_by_class")
        for key in errors?.members.keys ?? [:].keys { errorsByClass[key] = try errors!.int(key) }
        dropped = try f.optionalInt("dropped") ?? 0
        truncated = try f.optionalInt("truncated") ?? 0
    }
}

/// Appends records to a manifest as canonical JSON lines. Safe to call from several tasks (a
/// batch engine records its batches while rows are written).
public final class ManifestWriter: @unchecked Sendable {
    private let lines: JSONLWriter
    private let lock = NSLock()
    public var path: String { lines.path }

    public init(path: String) throws {
        lines = try JSONLWriter(path: path)
    }

    public func append(_ record: ManifestRecord) throws {
        lock.lock()
        defer { lock.unlock() }
        if case .row(let row) = record {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(256)
            row.write(into: &bytes)
            try lines.append(canonical: bytes)
        } else {
            try lines.append(record.json)
        }
    }

    /// Writes buffered lines to the file.
    public func flush() throws {
        lock.lock()
        defer { lock.unlock() }
        try lines.flush()
    }

    /// Flushes and asks the OS to put the bytes on disk.
    public func sync() throws {
        lock.lock()
        defer { lock.unlock() }
        try lines.sync()
    }
}

/// Reads a manifest one record at a time, never holding more than one line.
///
/// Strict: a line that is not a record is an error naming the file and line, except a last line
/// without its newline — a run killed mid-write — which is skipped.
public final class ManifestReader: Sequence, IteratorProtocol {
    private let lines: LineReader
    public let path: String
    /// The first error met while iterating; iteration stops there.
    public private(set) var failure: LabelForgeError?

    /// - Throws: `LabelForgeError.fileNotFound` when `directory` has no manifest.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(
                .fileNotFound,
                "\((path as NSString).deletingLastPathComponent) is not a run directory: it has no manifest.jsonl.")
        }
        lines = try LineReader(path: path)
        self.path = path
    }

    /// The next record; `nil` at the end.
    /// - Throws: `LabelForgeError.invalidJSON` naming `path:line` for a line that is not a record.
    public func read() throws -> ManifestRecord? {
        while let line = lines.next() {
            if line.isEmpty { continue }
            do {
                return try ManifestRecord(json: JSONValue.parse(line))
            } catch {
                if !lines.terminated { return nil }
                let reason = (error as? LabelForgeError)?.message ?? "\(error)"
                throw LabelForgeError(
                    .invalidJSON, "\(path):\(lines.lineNumber): not a manifest record: \(reason)")
            }
        }
        return nil
    }

    /// `read()` for `for … in`: an error ends the iteration and is kept in `failure`.
    public func next() -> ManifestRecord? {
        guard failure == nil else { return nil }
        do {
            return try read()
        } catch let error as LabelForgeError {
            failure = error
            return nil
        } catch {
            failure = LabelForgeError(.io, "\(path): \(error)")
            return nil
        }
    }

    /// Calls `body` with every row record, in file order.
    public func forEachRow(_ body: (RowRecord) throws -> Void) throws {
        while let record = try read() {
            if case .row(let row) = record { try body(row) }
        }
    }

    /// A manifest's first and last records (`nil` for a torn or missing one), read without reading
    /// the lines between; `nil` when the file cannot be opened.
    package static func ends(of path: String) -> (first: ManifestRecord?, last: ManifestRecord?)? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        func record(_ bytes: Data.SubSequence?) -> ManifestRecord? {
            bytes.flatMap { try? ManifestRecord(json: JSONValue.parse(Data($0))) }
        }
        let head = handle.readData(ofLength: 1 << 20)
        let first = record(head.split(separator: 0x0A).first)
        guard let size = try? handle.seekToEnd() else { return (first, nil) }
        try? handle.seek(toOffset: size > 1 << 20 ? size - (1 << 20) : 0)
        let tail = handle.readDataToEndOfFile()
        guard tail.last == 0x0A else { return (first, nil) }
        return (first, record(tail.dropLast().split(separator: 0x0A).last))
    }
}

/// A JSON object read field by field, with errors that name the field.
package struct ManifestFields {
    package let members: [String: JSONValue]
    package let path: String

    package init(_ value: JSONValue, path: String = "") throws {
        guard let members = value.objectValue else {
            throw LabelForgeError(.invalidJSON, "\(path.isEmpty ? "the line" : path) is not an object.")
        }
        self.members = members
        self.path = path
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func wrong(_ key: String, _ expected: String) -> LabelForgeError {
        LabelForgeError(
            .invalidJSON,
            members[key] == nil ? "'\(name(key))' is missing." : "'\(name(key))' is not \(expected).")
    }

    package func value(_ key: String) -> JSONValue? {
        guard let value = members[key], !value.isNull else { return nil }
        return value
    }

    package func string(_ key: String) throws -> String {
        guard let value = value(key)?.stringValue else { throw wrong(key, "a string") }
        return value
    }

    package func optionalString(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.stringValue else { throw wrong(key, "a string") }
        return string
    }

    package func int(_ key: String) throws -> Int {
        guard let value = value(key)?.intValue else { throw wrong(key, "an integer") }
        return value
    }

    package func optionalInt(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.intValue else { throw wrong(key, "an integer") }
        return int
    }

    package func double(_ key: String) throws -> Double {
        guard let value = value(key)?.doubleValue else { throw wrong(key, "a number") }
        return value
    }

    package func optionalBool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolValue else { throw wrong(key, "true or false") }
        return bool
    }

    package func strings(_ key: String) throws -> [String] {
        guard let items = value(key)?.arrayValue else { throw wrong(key, "a list") }
        return try items.map {
            guard let string = $0.stringValue else { throw wrong(key, "a list of strings") }
            return string
        }
    }

    package func optionalStrings(_ key: String) throws -> [String]? {
        value(key) == nil ? nil : try strings(key)
    }

    package func object(_ key: String) throws -> ManifestFields {
        guard let value = value(key) else { throw wrong(key, "an object") }
        return try ManifestFields(value, path: name(key))
    }

    package func optionalObject(_ key: String) throws -> ManifestFields? {
        guard let value = value(key) else { return nil }
        return try ManifestFields(value, path: name(key))
    }

    /// A list of objects; with `optional`, a missing list is empty.
    package func objects(_ key: String, optional: Bool = false) throws -> [ManifestFields] {
        guard let value = value(key) else {
            if optional { return [] }
            throw wrong(key, "a list")
        }
        guard let items = value.arrayValue else { throw wrong(key, "a list") }
        return try items.enumerated().map { try ManifestFields($1, path: "\(name(key))[\($0)]") }
    }
}

extension JSONValue {
    package static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    package static func optional(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
}
