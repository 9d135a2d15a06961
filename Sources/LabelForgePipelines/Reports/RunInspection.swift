import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel

/// What a run did, read back from its directory (`labelforge inspect`).
public enum RunInspection {
    /// Header and per-stage statistics, as JSON; the manifest is streamed once.
    public static func summary(_ run: RunArtifacts) throws -> JSONValue {
        let line = run.run
        let header: JSONValue = [
            "run_id": .string(line.runID), "plan_hash": .string(line.planHash),
            "status": .string(run.summary?.status ?? "unfinished"),
            "created_at": .string(line.createdAt), "finished_at": .optional(run.summary?.finishedAt),
            "labelforge_version": .string(line.labelforgeVersion), "git_revision": .optional(line.gitRevision),
            "determinism": .string(line.determinism), "run_seed": .int(Int64(line.runSeed)),
            "models": line.json["models"] ?? .null, "prompt_pack": line.json["prompt_pack"] ?? .null,
            "dataset": line.json["dataset"] ?? .null, "engines": line.json["engines"] ?? .null,
            "environment": line.environment, "replay_of": .optional(line.replayOf),
            "engine_requests": .optional(run.summary?.engineRequests),
        ]
        var tallies: [String: StageTally] = [:]
        try run.manifest().forEachRow { tallies[$0.stage, default: StageTally()].add($0) }
        let gold = run.summary?.gold ?? []
        let stages: [JSONValue] = try run.stageIDs.map { stage in
            let tally = tallies[stage] ?? StageTally()
            let latencies = tally.latencies.sorted()
            let vectors: JSONValue =
                try run.vectors(stage: stage).map {
                    ["rows": .int(Int64($0.rows)), "dimension": .int(Int64($0.dimension))]
                } ?? .null
            return [
                "id": .string(stage), "rows": .int(Int64(tally.rows)), "ok": .int(Int64(tally.rows - tally.failed)),
                "failed": .int(Int64(tally.failed)), "dropped": .int(Int64(tally.dropped)),
                "cache_hit_rate": tally.lookups == 0 ? .null : .double(Double(tally.hits) / Double(tally.lookups)),
                "tokens_in": .int(Int64(tally.tokensIn)), "tokens_out": .int(Int64(tally.tokensOut)),
                "latency_ms": [
                    "p50": percentile(latencies, 0.50), "p95": percentile(latencies, 0.95),
                    "p99": percentile(latencies, 0.99),
                ],
                "errors": .object(
                    tally.errors.mapValues { ["count": .int(Int64($0.count)), "example": $0.example] }),
                "gold": .array(gold.filter { $0.stage == stage }.map(\.json)),
                "vectors": vectors,
            ]
        }
        return ["run": header, "stages": .array(stages)]
    }

    /// One stage's row records, added up.
    private struct StageTally {
        var rows = 0
        var failed = 0
        var dropped = 0
        var lookups = 0
        var hits = 0
        var tokensIn = 0
        var tokensOut = 0
        var latencies: [Double] = []
        var errors: [String: (count: Int, example: JSONValue)] = [:]

        mutating func add(_ row: RowRecord) {
            rows += 1
            if row.dropped { dropped += 1 }
            // Per request key, as `run` reports it.
            lookups += row.requestKeys.count
            hits += row.cacheHits
            tokensIn += row.tokensIn
            tokensOut += row.tokensOut
            latencies.append(Double(row.latencyMs))
            if let error = row.error {
                failed += 1
                let example: JSONValue = ["row_id": .string(row.rowID), "message": .string(error.message)]
                errors[error.errorClass] = (
                    (errors[error.errorClass]?.count ?? 0) + 1, errors[error.errorClass]?.example ?? example
                )
            }
        }
    }

    /// Nearest-rank percentile of sorted values; `null` for none.
    static func percentile(_ sorted: [Double], _ p: Double) -> JSONValue {
        guard !sorted.isEmpty else { return .null }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return .double(sorted[max(0, min(sorted.count - 1, rank - 1))])
    }

    /// One row's full lineage: inputs, and per stage the rendered messages, request keys, seeds,
    /// raw responses (from the cache), parsed output, cache status and attempts. The manifest,
    /// `dataset.jsonl` and the outputs are streamed; only this row's lines are parsed.
    /// - Throws: `LabelForgeError.invalidDataset` when the run has no such row.
    public static func row(_ rowID: String, run: RunArtifacts, cache: any CacheStore) async throws -> JSONValue {
        let input = try OutputReader(path: run.directory + "/dataset.jsonl").record(of: rowID)?["input"] ?? .null
        var lines: [String: RowRecord] = [:]
        try run.manifest().forEachRow { if $0.rowID == rowID { lines[$0.stage] = $0 } }
        var stages: [JSONValue] = []
        for stage in run.stageIDs {
            guard let line = lines[stage] else { continue }
            var requests: [JSONValue] = []
            for key in line.requestKeys {
                if let entry = try await cache.lookup(CacheKey(hex: ContentHash.unprefixed(key))) {
                    let body = entry.request["body"] ?? .null
                    requests.append([
                        "key": .string(key), "seed": body["seed"] ?? .null, "messages": body["messages"] ?? .null,
                        "body": body, "response": entry.response,
                    ])
                } else {
                    requests.append(["key": .string(key), "missing": "not in this cache"])
                }
            }
            var output = try run.outputs(stage: stage).record(of: rowID).map(JSONValue.object) ?? .null
            if let index = output["index"]?.intValue, let vector = try run.vectors(stage: stage)?.vector(at: index) {
                // The first components, for a look; the whole vector is row `index` of the .npy.
                output = .object(
                    (output.objectValue ?? [:]).merging([
                        "vector_head": .array(vector.prefix(8).map { .double((Double($0) * 1e6).rounded() / 1e6) })
                    ]) { a, _ in a })
            }
            stages.append([
                "stage": .string(stage), "cache": .string(line.cache), "attempts": .int(Int64(line.attempts)),
                "latency_ms": .int(Int64(line.latencyMs)), "error": line.error?.json ?? .null, "output": output,
                "requests": .array(requests),
            ])
        }
        guard !stages.isEmpty || !input.isNull else {
            throw LabelForgeError(.invalidDataset, "Run \(run.runID) has no row '\(rowID)'.")
        }
        return ["row_id": .string(rowID), "input": input, "stages": .array(stages)]
    }

    /// The summary for people.
    public static func render(summary: JSONValue) -> String {
        let run = summary["run"] ?? .null
        var out = [
            "run \(run["run_id"]?.textForm ?? "?") (\(run["status"]?.textForm ?? "?"))",
            "  plan:        \(run["plan_hash"]?.textForm ?? "?")",
            "  created:     \(run["created_at"]?.textForm ?? "?")  finished: \(run["finished_at"]?.textForm ?? "-")",
            "  labelforge:  \(run["labelforge_version"]?.textForm ?? "?") @ \(run["git_revision"].flatMap(\.stringValue) ?? "no git revision")",
            "  determinism: \(run["determinism"]?.textForm ?? "?"), seed \(run["run_seed"]?.textForm ?? "?")",
            "  prompt pack: \(run["prompt_pack"]?["name"]?.textForm ?? "?") \(run["prompt_pack"]?["version"]?.textForm ?? "") (\(run["prompt_pack"]?["hash"]?.textForm ?? ""))",
            "  dataset:     \(run["dataset"]?["path"]?.textForm ?? "?") (\(run["dataset"]?["rows"]?.textForm ?? "?") rows, \(run["dataset"]?["fingerprint"]?.textForm ?? ""))",
        ]
        if let replayOf = run["replay_of"], !replayOf.isNull { out.append("  replay of:   \(replayOf.textForm)") }
        for model in run["models"]?.arrayValue ?? [] {
            out.append(
                "  model:       \(model["engine"]?.textForm ?? "?"): \(model["id"]?.textForm ?? "?") @ \(model["revision"]?.textForm ?? "?")"
            )
        }
        for engine in run["engines"]?.arrayValue ?? [] {
            let info = engine["info"] ?? .null
            out.append(
                "  engine:      \(engine["name"]?.textForm ?? "?") (\(engine["kind"]?.textForm ?? "?"), \(engine["dialect"]?.textForm ?? "?"))"
                    + " build \(info["build_info"]?.textForm ?? info["version"]?.textForm ?? "?"), slots \(info["total_slots"]?.textForm ?? "?"),"
                    + " max in flight \(engine["max_in_flight"]?.textForm ?? "?")")
        }
        let env = run["environment"] ?? .null
        out.append(
            "  environment: \(env["os"]?.textForm ?? "?"), \(env["cpu"]?.textForm ?? "?") ×\(env["cpu_count"]?.textForm ?? "?"), Swift \(env["swift_version"]?.textForm ?? "?")"
        )
        for stage in summary["stages"]?.arrayValue ?? [] {
            let latency = stage["latency_ms"] ?? .null
            let hitRate = stage["cache_hit_rate"]?.doubleValue.map { String(format: "%.1f%%", $0 * 100) } ?? "n/a"
            out.append("")
            let dropped = stage["dropped"]?.intValue ?? 0
            out.append(
                "stage \(stage["id"]?.textForm ?? "?"): \(stage["ok"]?.textForm ?? "0") ok, \(stage["failed"]?.textForm ?? "0") failed, "
                    + (dropped > 0 ? "\(dropped) dropped, " : "") + "cache \(hitRate), "
                    + "tokens \(stage["tokens_in"]?.textForm ?? "0") in / \(stage["tokens_out"]?.textForm ?? "0") out")
            out.append(
                "  latency ms: p50 \(latency["p50"]?.textForm ?? "-"), p95 \(latency["p95"]?.textForm ?? "-"), p99 \(latency["p99"]?.textForm ?? "-")"
            )
            for (errorClass, error) in (stage["errors"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                out.append(
                    "  error \(errorClass) ×\(error["count"]?.textForm ?? "?"), e.g. \(error["example"]?["row_id"]?.textForm ?? "?"): \(error["example"]?["message"]?.textForm ?? "")"
                )
            }
            if let vectors = stage["vectors"], !vectors.isNull {
                out.append(
                    "  vectors: \(vectors["rows"]?.textForm ?? "?") × \(vectors["dimension"]?.textForm ?? "?") float32 in outputs/\(stage["id"]?.textForm ?? "?").npy"
                )
            }
            for gold in stage["gold"]?.arrayValue ?? [] {
                let accuracy = gold["accuracy"]?.doubleValue.map { String(format: "%.1f%%", $0 * 100) } ?? "?"
                let f1 = gold["macro_f1"]?.doubleValue.map { String(format: "%.3f", $0) } ?? "?"
                out.append(
                    "  \(gold["field"]?.textForm ?? "?") vs gold \(gold["gold_field"]?.textForm ?? "?"): accuracy \(accuracy), macro-F1 \(f1) (n=\(gold["n"]?.textForm ?? "?"))"
                )
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// Content parts as people read them: `[image sha256:…]` for each image, then the text.
    static func render(parts: JSONValue) -> String {
        guard let parts = parts.arrayValue else { return CanonicalJSON.string(parts) }
        return parts.map { part in
            if let url = part["image_url"]?["url"]?.stringValue { return "[image \(url)]" }
            return part["text"]?.stringValue ?? CanonicalJSON.string(part)
        }.joined(separator: "\n")
    }

    /// A row's lineage for people.
    public static func render(row: JSONValue) -> String {
        var out = ["row \(row["row_id"]?.textForm ?? "?")", "  input: \(CanonicalJSON.string(row["input"] ?? .null))"]
        for stage in row["stages"]?.arrayValue ?? [] {
            out.append("")
            out.append(
                "stage \(stage["stage"]?.textForm ?? "?"): cache \(stage["cache"]?.textForm ?? "?"), attempts \(stage["attempts"]?.textForm ?? "?"), \(stage["latency_ms"]?.textForm ?? "?") ms"
            )
            out.append("  output: \(CanonicalJSON.string(stage["output"] ?? .null))")
            if let error = stage["error"], !error.isNull { out.append("  error:  \(CanonicalJSON.string(error))") }
            for request in stage["requests"]?.arrayValue ?? [] {
                out.append("  request \(request["key"]?.textForm ?? "?") seed \(request["seed"]?.textForm ?? "?")")
                if let missing = request["missing"] {
                    out.append("    (\(missing.textForm))")
                    continue
                }
                for message in request["messages"]?.arrayValue ?? [] {
                    let content = message["content"]?.stringValue ?? Self.render(parts: message["content"] ?? .null)
                    out.append(
                        "    \(message["role"]?.textForm ?? "?"): "
                            + content.replacingOccurrences(of: "\n", with: "\n      "))
                }
                let answer = request["response"]?["choices"]?.arrayValue?.first?["message"]?["content"]?.textForm ?? "?"
                out.append("    response: \(answer)")
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}
