import Foundation
import LabelForgeCache
import LabelForgeCore

/// What a run did, read back from its directory (`labelforge inspect`).
public enum RunInspection {
    /// Header and per-stage statistics, as JSON.
    public static func summary(_ run: RunArtifacts) -> JSONValue {
        let line = run.runLine
        let header: JSONValue = [
            "run_id": line["run_id"] ?? .null, "plan_hash": line["plan_hash"] ?? .null,
            "status": run.summary?["status"] ?? "unfinished",
            "created_at": line["created_at"] ?? .null, "finished_at": run.summary?["finished_at"] ?? .null,
            "labelforge_version": line["labelforge_version"] ?? .null, "git_revision": line["git_revision"] ?? .null,
            "determinism": line["determinism"] ?? .null, "run_seed": line["run_seed"] ?? .null,
            "models": line["models"] ?? .null, "prompt_pack": line["prompt_pack"] ?? .null,
            "dataset": line["dataset"] ?? .null, "engines": line["engines"] ?? .null,
            "environment": line["environment"] ?? .null, "replay_of": line["replay_of"] ?? .null,
            "engine_requests": run.summary?["engine_requests"] ?? .null,
        ]
        let gold = run.summary?["gold"]?.arrayValue ?? []
        let stages: [JSONValue] = run.stageIDs.map { stage in
            let lines = run.rowLines.filter { $0["stage"]?.stringValue == stage }
            let failed = lines.filter { $0["error"] != nil }
            var errors: [String: (count: Int, example: JSONValue)] = [:]
            for line in failed {
                let errorClass = line["error"]?["class"]?.stringValue ?? "unknown"
                let example: JSONValue = ["row_id": line["row_id"] ?? .null, "message": line["error"]?["message"] ?? .null]
                errors[errorClass] = (errors[errorClass].map { $0.count + 1 } ?? 1, errors[errorClass]?.example ?? example)
            }
            let latencies = lines.compactMap { $0["latency_ms"]?.doubleValue }.sorted()
            // Per request key, as `run` reports it (manifests before `cache_hits`: a hit line's keys all hit).
            let lookups = lines.reduce(0) { $0 + ($1["request_keys"]?.arrayValue?.count ?? 0) }
            let hits = lines.reduce(0) { total, line in
                total + (line["cache_hits"]?.intValue
                    ?? (line["cache"] == "hit" ? line["request_keys"]?.arrayValue?.count ?? 0 : 0))
            }
            return [
                "id": .string(stage), "rows": .int(Int64(lines.count)), "ok": .int(Int64(lines.count - failed.count)),
                "failed": .int(Int64(failed.count)),
                "cache_hit_rate": lookups == 0 ? .null : .double(Double(hits) / Double(lookups)),
                "tokens_in": .int(Int64(lines.reduce(0) { $0 + ($1["tokens_in"]?.intValue ?? 0) })),
                "tokens_out": .int(Int64(lines.reduce(0) { $0 + ($1["tokens_out"]?.intValue ?? 0) })),
                "latency_ms": [
                    "p50": percentile(latencies, 0.50), "p95": percentile(latencies, 0.95), "p99": percentile(latencies, 0.99),
                ],
                "errors": .object(
                    errors.mapValues { ["count": .int(Int64($0.count)), "example": $0.example] }),
                "gold": .array(gold.filter { $0["stage"]?.stringValue == stage }),
            ]
        }
        return ["run": header, "stages": .array(stages)]
    }

    /// Nearest-rank percentile of sorted values; `null` for none.
    static func percentile(_ sorted: [Double], _ p: Double) -> JSONValue {
        guard !sorted.isEmpty else { return .null }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return .double(sorted[max(0, min(sorted.count - 1, rank - 1))])
    }

    /// One row's full lineage: inputs, and per stage the rendered messages, request keys, seeds,
    /// raw responses (from the cache), parsed output, cache status and attempts.
    /// - Throws: `LabelForgeError.invalidDataset` when the run has no such row.
    public static func row(_ rowID: String, run: RunArtifacts, cache: SQLiteCache) async throws -> JSONValue {
        var input: JSONValue = .null
        if let text = try? String(contentsOfFile: run.directory + "/dataset.jsonl", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.contains("\"row_id\":") {
                let value = try JSONValue.parse(String(line))
                if value["row_id"]?.stringValue == rowID { input = value["input"] ?? .null; break }
            }
        }
        var stages: [JSONValue] = []
        for stage in run.stageIDs {
            guard let line = run.rowLines.last(where: { $0["row_id"]?.stringValue == rowID && $0["stage"]?.stringValue == stage })
            else { continue }
            var requests: [JSONValue] = []
            for key in line["request_keys"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
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
            let output = try run.outputs(stage: stage).records[rowID].map(JSONValue.object) ?? .null
            stages.append([
                "stage": .string(stage), "cache": line["cache"] ?? .null, "attempts": line["attempts"] ?? .null,
                "latency_ms": line["latency_ms"] ?? .null, "error": line["error"] ?? .null, "output": output,
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
            out.append("  model:       \(model["engine"]?.textForm ?? "?"): \(model["id"]?.textForm ?? "?") @ \(model["revision"]?.textForm ?? "?")")
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
            "  environment: \(env["os"]?.textForm ?? "?"), \(env["cpu"]?.textForm ?? "?") ×\(env["cpu_count"]?.textForm ?? "?"), Swift \(env["swift_version"]?.textForm ?? "?")")
        for stage in summary["stages"]?.arrayValue ?? [] {
            let latency = stage["latency_ms"] ?? .null
            let hitRate = stage["cache_hit_rate"]?.doubleValue.map { String(format: "%.1f%%", $0 * 100) } ?? "n/a"
            out.append("")
            out.append(
                "stage \(stage["id"]?.textForm ?? "?"): \(stage["ok"]?.textForm ?? "0") ok, \(stage["failed"]?.textForm ?? "0") failed, cache \(hitRate), "
                    + "tokens \(stage["tokens_in"]?.textForm ?? "0") in / \(stage["tokens_out"]?.textForm ?? "0") out")
            out.append(
                "  latency ms: p50 \(latency["p50"]?.textForm ?? "-"), p95 \(latency["p95"]?.textForm ?? "-"), p99 \(latency["p99"]?.textForm ?? "-")")
            for (errorClass, error) in (stage["errors"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                out.append(
                    "  error \(errorClass) ×\(error["count"]?.textForm ?? "?"), e.g. \(error["example"]?["row_id"]?.textForm ?? "?"): \(error["example"]?["message"]?.textForm ?? "")")
            }
            for gold in stage["gold"]?.arrayValue ?? [] {
                let accuracy = gold["accuracy"]?.doubleValue.map { String(format: "%.1f%%", $0 * 100) } ?? "?"
                let f1 = gold["macro_f1"]?.doubleValue.map { String(format: "%.3f", $0) } ?? "?"
                out.append("  \(gold["field"]?.textForm ?? "?") vs gold \(gold["gold_field"]?.textForm ?? "?"): accuracy \(accuracy), macro-F1 \(f1) (n=\(gold["n"]?.textForm ?? "?"))")
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
                "stage \(stage["stage"]?.textForm ?? "?"): cache \(stage["cache"]?.textForm ?? "?"), attempts \(stage["attempts"]?.textForm ?? "?"), \(stage["latency_ms"]?.textForm ?? "?") ms")
            out.append("  output: \(CanonicalJSON.string(stage["output"] ?? .null))")
            if let error = stage["error"], !error.isNull { out.append("  error:  \(CanonicalJSON.string(error))") }
            for request in stage["requests"]?.arrayValue ?? [] {
                out.append("  request \(request["key"]?.textForm ?? "?") seed \(request["seed"]?.textForm ?? "?")")
                if let missing = request["missing"] { out.append("    (\(missing.textForm))"); continue }
                for message in request["messages"]?.arrayValue ?? [] {
                    let content = message["content"]?.stringValue ?? Self.render(parts: message["content"] ?? .null)
                    out.append("    \(message["role"]?.textForm ?? "?"): " + content.replacingOccurrences(of: "\n", with: "\n      "))
                }
                let answer = request["response"]?["choices"]?.arrayValue?.first?["message"]?["content"]?.textForm ?? "?"
                out.append("    response: \(answer)")
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}
