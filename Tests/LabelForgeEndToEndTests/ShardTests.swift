import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// `labelforge run --shard i/N` and `labelforge merge`: shards partition the rows by row-ID hash,
/// stop before the first dataset-wide stage, and merge (with `--continue`) into outputs
/// byte-identical to an unsharded run's.
@Suite(.serialized) struct ShardTests {
    static let files = [
        "outputs/sentiment.jsonl", "outputs/vec.jsonl", "outputs/vec.npy", "outputs/reply.jsonl",
        "outputs/unique.jsonl", "outputs/unique.rejected.jsonl", "outputs/judge.jsonl", "dataset.jsonl",
    ]
    /// The stages before the barrier.
    static let firstStretch = [
        "outputs/sentiment.jsonl", "outputs/vec.jsonl", "outputs/vec.npy", "outputs/reply.jsonl",
    ]

    /// Free text that repeats per review number modulo 4, so the dedup has duplicates to remove.
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        if body["structured_outputs"] != nil || body["response_format"] != nil {
            return StubEngine.followConstraintByContent(body)
        }
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        let number = Int(prompt.components(separatedBy: "number ").dropFirst().first?.prefix { $0.isNumber } ?? "") ?? 0
        return .content("Reply \(number % 4), sample \((body["seed"]?.intValue ?? 0) % 2)")
    }

    /// classify → embed → generate (n: 2) → exact dedup (the barrier) → classify, over `rows` reviews.
    func workspace(rows: Int, baseURL: String) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        try ws.write("prompts/judge.mustache", "Is this reply good? {{reply.text}}\n")
        try config(ws, name: "config.yaml", dataset: "data/reviews.jsonl", baseURL: baseURL)
        return ws
    }

    @discardableResult
    func config(_ ws: TestWorkspace, name: String, dataset: String, baseURL: String, seed: Int = 5) throws -> String {
        try ws.write(
            name,
            """
            run: {seed: \(seed)}
            dataset: {path: \(dataset), id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r}, max_in_flight: 8}
              - {name: v, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r}}
            prompts: {pack: prompts}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: vec, type: embed, engine: v, field: text, batch_size: 4}
              - {id: reply, type: generate, template: reply, n: 2}
              - {id: unique, type: dedup, field: reply.text}
              - {id: judge, type: classify, template: judge, labels: [good, bad]}
            """)
    }

    /// The partition as docs/scale-out.md states it: the first 16 hex digits of SHA-256 of the row
    /// ID, modulo the shard count. Computed here on its own, so a change to the code's fails.
    static func shard(ofRow id: String, count: Int) -> Int {
        Int(UInt64(ContentHash.hex(Data(id.utf8)).prefix(16), radix: 16)! % UInt64(count))
    }

    /// The one run directory under `runs`.
    func runDirectory(_ ws: TestWorkspace, _ runs: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: ws.path(runs)).filter { !$0.hasPrefix(".") }
        #expect(names.count == 1, "\(names)")
        return ws.path(runs) + "/" + (try #require(names.first))
    }

    func contents(_ dir: String, _ files: [String]) -> [String: Data?] {
        Dictionary(
            uniqueKeysWithValues: files.map { ($0, try? Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0))) })
    }

    static func records(_ dir: String) throws -> [JSONValue] {
        try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(String($0))
        }
    }

    /// Row IDs of a run's first stage's output, in file order.
    static func rowIDs(_ dir: String) throws -> [String] {
        try String(contentsOfFile: dir + "/outputs/sentiment.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(String($0))["row_id"]!.textForm
        }
    }

    @Test(
        "3 shards at once on a shared cache, each stopping before the barrier; merge without and with --continue: outputs byte-identical to an unsharded run's"
    )
    func threeShardsMergeByteIdentical() async throws {
        let rows = 60
        let stub = try await StubEngine.start(answer: Self.answer)
        let ws = try workspace(rows: rows, baseURL: stub.baseURL)
        let reference = try await CLI.run([
            "run", "--config", ws.path("config.yaml"), "--runs-dir", ws.path("ref"), "--cache-path",
            ws.path("ref.sqlite"),
        ])
        let referenceDir = try runDirectory(ws, "ref")
        let firstError = try Self.records(referenceDir).first { $0["error"] != nil && $0["error"] != .null }
        #expect(reference.exitCode == 0 && firstError == nil, "\(reference.stderr) \(String(describing: firstError))")

        // Three shards at once, as an Indexed Job would run them, writing one cache.
        let shardResults = try await withThrowingTaskGroup(of: (Int, CLIResult).self) { group in
            for index in 0..<3 {
                group.addTask {
                    (
                        index,
                        try await CLI.run([
                            "run", "--config", ws.path("config.yaml"), "--shard", "\(index)/3", "--runs-dir",
                            ws.path("shard\(index)"), "--cache-path", ws.path("shared.sqlite"),
                        ])
                    )
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        var shardDirs: [String] = []
        var shardRows: [[String]] = []
        for index in 0..<3 {
            let result = try #require(shardResults[index])
            #expect(result.exitCode == 0, "\(result.stderr)")
            #expect(result.stdout.contains("stopped before the dataset-wide stage 'unique'"), "\(result.stdout)")
            let dir = try runDirectory(ws, "shard\(index)")
            shardDirs.append(dir)
            let records = try Self.records(dir)
            #expect(records.first?["shard"] == ["index": .int(Int64(index)), "count": 3])
            #expect(records.last?["stopped_before"] == "unique", "\(records.last!)")
            for later in ["outputs/unique.jsonl", "outputs/judge.jsonl", "dataset.jsonl"] {
                #expect(!FileManager.default.fileExists(atPath: dir + "/" + later), "\(later) in a shard")
            }
            let ids = try Self.rowIDs(dir)
            #expect(ids.allSatisfy { Self.shard(ofRow: $0, count: 3) == index })
            shardRows.append(ids)
        }
        // The shards partition the rows: every row once, none twice.
        let all = shardRows.flatMap { $0 }
        let referenceIDs = try Self.rowIDs(referenceDir)
        #expect(all.count == rows && Set(all) == Set(referenceIDs))
        #expect(shardRows.allSatisfy { $0.count > 5 }, "\(shardRows.map(\.count))")

        // Merge without --continue, with the engine gone: no engine is needed.
        await stub.stop()
        let merged = try await CLI.run(
            ["merge"] + shardDirs.reversed() + [
                "--runs-dir", ws.path("merged"), "--cache-path", ws.path("shared.sqlite"),
            ])
        #expect(merged.exitCode == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("stopped before the dataset-wide stage 'unique'"), "\(merged.stdout)")
        let mergedDir = try runDirectory(ws, "merged")
        #expect(contents(mergedDir, Self.firstStretch) == contents(referenceDir, Self.firstStretch))
        let mergedRecords = try Self.records(mergedDir)
        #expect(mergedRecords.first?["merged_from"]?.arrayValue?.count == 3)
        #expect(mergedRecords.first?["shard"] == nil)

        // Every (row, stage) once, as its shard recorded it (a miss there; the merge sent nothing).
        let shardRecords = try shardDirs.flatMap { try Self.records($0) }.filter { $0["type"] == "row" }
        let mergedRows = mergedRecords.filter { $0["type"] == "row" }
        #expect(mergedRows.count == shardRecords.count)
        func key(_ record: JSONValue) -> String { record["row_id"]!.textForm + "/" + record["stage"]!.textForm }
        var byKey: [String: JSONValue] = [:]
        for record in shardRecords { byKey[key(record)] = record }
        #expect(Set(mergedRows.map(key)).count == mergedRows.count)
        for record in mergedRows {
            let shard = try #require(byKey[key(record)])
            #expect(record["cache"] == shard["cache"] && record["latency_ms"] == shard["latency_ms"])
            #expect(record["request_keys"] == shard["request_keys"])
        }
        let summary = try #require(mergedRecords.last)
        #expect(summary["type"] == "summary" && summary["counts"]?["rows"] == .int(Int64(rows)))
        #expect(summary["engine_requests"] == 0)

        // merge --continue on a running engine: the dataset-wide stage and the rest run on the merged rows.
        // The shards' resolved config names the engine: it comes back where it was.
        let again = try await StubEngine.start(port: stub.port, answer: Self.answer)
        let continued = try await CLI.run(
            ["merge", "--continue"] + shardDirs + [
                "--runs-dir", ws.path("continued"), "--cache-path", ws.path("shared.sqlite"),
            ])
        await again.stop()
        #expect(continued.exitCode == 0, "\(continued.stderr)")
        let continuedDir = try runDirectory(ws, "continued")
        let expected = contents(referenceDir, Self.files)
        #expect(expected.values.allSatisfy { $0 != nil })
        #expect(contents(continuedDir, Self.files) == expected)
        let last = try #require(try Self.records(continuedDir).last)
        #expect(last["status"] == "completed" && last["stopped_before"] == nil)
        let referenceSummary = try #require(try Self.records(referenceDir).last)
        #expect(last["output_digests"] == referenceSummary["output_digests"])
        #expect(last["counts"]?["rows"] == referenceSummary["counts"]?["rows"])
    }

    @Test(
        "a Parquet dataset (row groups of one row): 2 shards and merge --continue give the unsharded run's outputs on its JSONL twin, byte for byte"
    )
    func parquetShardsMerge() async throws {
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: 24, baseURL: stub.baseURL)
        try BadInputTests.writeParquet(ws)
        try config(ws, name: "parquet.yaml", dataset: "data/reviews.parquet", baseURL: stub.baseURL)
        let reference = try await CLI.run([
            "run", "--config", ws.path("config.yaml"), "--runs-dir", ws.path("ref"), "--cache-path",
            ws.path("ref.sqlite"),
        ])
        #expect(reference.exitCode == 0, "\(reference.stderr)")
        var shardDirs: [String] = []
        for index in 0..<2 {
            let (result, dir) = try await shardRun(ws, config: "parquet.yaml", "\(index)/2", runs: "shard\(index)")
            #expect(result.exitCode == 0, "\(result.stderr)")
            shardDirs.append(try #require(dir))
        }
        let merged = try await CLI.run(
            ["merge", "--continue"] + shardDirs + [
                "--runs-dir", ws.path("merged"), "--cache-path", ws.path("shared.sqlite"),
            ])
        #expect(merged.exitCode == 0, "\(merged.stderr)")
        let expected = contents(try runDirectory(ws, "ref"), Self.files)
        #expect(expected.values.allSatisfy { $0 != nil })
        #expect(contents(try runDirectory(ws, "merged"), Self.files) == expected)
    }

    /// Runs shard `i/N` of `config` into `runs`; returns the result and its run directory.
    func shardRun(
        _ ws: TestWorkspace, config: String, _ shard: String, runs: String, environment: [String: String] = [:]
    ) async throws -> (CLIResult, String?) {
        let result = try await CLI.run(
            [
                "run", "--config", ws.path(config), "--shard", shard, "--runs-dir", ws.path(runs), "--cache-path",
                ws.path("shared.sqlite"),
            ], environment: environment)
        return (result, result.exitCode == 0 ? try runDirectory(ws, runs) : nil)
    }

    @Test(
        "without a barrier: a shuffled dataset gives each shard the same rows, the merge equals the unsharded run with dataset.jsonl, and merges that cannot be right are refused"
    )
    func rowWiseMergeAndRefusals() async throws {
        let rows = 40
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: rows, baseURL: stub.baseURL)
        let rowWise = """
            run: {seed: 5}
            dataset: {path: DATASET, id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r}}
            prompts: {pack: prompts}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: reply, type: generate, template: reply, n: 2}
            """
        try ws.write("rowwise.yaml", rowWise.replacingOccurrences(of: "DATASET", with: "data/reviews.jsonl"))
        let lines = try String(contentsOfFile: ws.path("data/reviews.jsonl"), encoding: .utf8).split(separator: "\n")
        try ws.write("data/shuffled.jsonl", lines.reversed().joined(separator: "\n") + "\n")
        try ws.write("shuffled.yaml", rowWise.replacingOccurrences(of: "DATASET", with: "data/shuffled.jsonl"))

        let reference = try await CLI.run([
            "run", "--config", ws.path("rowwise.yaml"), "--runs-dir", ws.path("ref"), "--cache-path",
            ws.path("ref.sqlite"),
        ])
        #expect(reference.exitCode == 0, "\(reference.stderr)")
        let referenceDir = try runDirectory(ws, "ref")

        var dirs: [String] = []
        for index in 0..<2 {
            let (result, dir) = try await shardRun(ws, config: "rowwise.yaml", "\(index)/2", runs: "s\(index)")
            #expect(result.exitCode == 0 && !result.stdout.contains("stopped before"), "\(result.stderr)")
            dirs.append(try #require(dir))
            // The same shard of the reversed dataset holds the same rows (in that file's order).
            let (shuffled, shuffledDir) = try await shardRun(
                ws, config: "shuffled.yaml", "\(index)/2", runs: "r\(index)")
            #expect(shuffled.exitCode == 0, "\(shuffled.stderr)")
            let a = try Self.rowIDs(dirs[index])
            let b = try Self.rowIDs(try #require(shuffledDir))
            #expect(Set(a) == Set(b) && a == b.reversed() && !a.isEmpty)
        }
        let merged = try await CLI.run(
            ["merge", dirs[1], dirs[0], "--runs-dir", ws.path("merged"), "--cache-path", ws.path("shared.sqlite")])
        #expect(merged.exitCode == 0, "\(merged.stderr)")
        // A shard replays as a shard, from the cache.
        let replay = try await CLI.run(
            [
                "replay", "--manifest", dirs[0] + "/manifest.jsonl", "--runs-dir", ws.path("replay"), "--cache-path",
                ws.path("shared.sqlite"),
            ])
        #expect(replay.exitCode == 0 && replay.stdout.contains("engine requests sent: 0"), "\(replay.stderr)")
        let files = ["outputs/sentiment.jsonl", "outputs/reply.jsonl", "dataset.jsonl"]
        #expect(contents(try runDirectory(ws, "merged"), files) == contents(referenceDir, files))

        func refused(_ arguments: [String], saying text: String, code: Int32 = 64) async throws {
            let result = try await CLI.run(["merge"] + arguments + ["--runs-dir", ws.path("refused")])
            #expect(result.exitCode == code, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(text), "\(arguments): \(result.stderr)")
            // No run directory is left behind.
            let left = (try? FileManager.default.contentsOfDirectory(atPath: ws.path("refused"))) ?? []
            #expect(left.filter { !$0.hasPrefix(".") }.isEmpty, "\(left)")
        }
        let cache = ["--cache-path", ws.path("shared.sqlite")]
        try await refused([dirs[0]] + cache, saying: "Shard 1/2 missing: give the run directories of all 2 shards")
        try await refused([dirs[0], dirs[0] + "/", dirs[1]] + cache, saying: "are both shard 0/2")
        try await refused([referenceDir, dirs[1]] + cache, saying: "is not a shard run")
        // Shard 0 of another plan (the reversed file is another dataset).
        try await refused([try runDirectory(ws, "r0"), dirs[1]] + cache, saying: "must come from the same config")
        // A cache without the shards' answers: merging would have to ask the engine again.
        try await refused(dirs + ["--cache-path", ws.path("empty.sqlite")], saying: "The cache lacks", code: 1)
        // A shard killed before its summary is not merged; resumed, it keeps its shard and is.
        let (killed, _) = try await shardRun(
            ws, config: "rowwise.yaml", "1/2", runs: "k1", environment: ["LABELFORGE_CRASH_AT": "before-summary"])
        #expect(killed.exitCode == 137, "\(killed.stderr)")
        let killedDir = try runDirectory(ws, "k1")
        try await refused([dirs[0], killedDir] + cache, saying: "has not completed")
        let resumed = try await CLI.run(["run", "--resume", killedDir] + cache)
        #expect(resumed.exitCode == 0, "\(resumed.stderr)")
        #expect(try Self.records(killedDir).first?["shard"] == ["index": 1, "count": 2])
        let again = try await CLI.run(["merge", dirs[0], killedDir, "--runs-dir", ws.path("merged2")] + cache)
        #expect(again.exitCode == 0, "\(again.stderr)")
        #expect(contents(try runDirectory(ws, "merged2"), files) == contents(referenceDir, files))
    }

    @Test("--shard auto reads a Kubernetes Indexed Job's or a Slurm array's variables; a bad shard says what is wrong")
    func shardFromEnvironment() async throws {
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: 6, baseURL: stub.baseURL)
        let cases: [([String: String], JSONValue)] = [
            (["JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"], ["index": 2, "count": 3]),
            (
                ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"],
                ["index": 3, "count": 4]
            ),
            (["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"], ["index": 0, "count": 2]),
        ]
        for (number, (environment, expected)) in cases.enumerated() {
            let (result, dir) = try await shardRun(
                ws, config: "config.yaml", "auto", runs: "auto\(number)", environment: environment)
            #expect(result.exitCode == 0, "\(environment): \(result.stderr)")
            #expect(try Self.records(try #require(dir)).first?["shard"] == expected)
        }
        let bad: [(String, [String: String], String)] = [
            ("auto", [:], "--shard auto found no shard in the environment"),
            ("auto", ["JOB_COMPLETION_INDEX": "1"], "JOB_COMPLETIONS is not"),
            ("3/3", [:], "shard indices run from 0 to 2"),
            ("1-3", [:], "is not i/N"),
        ]
        for (shard, environment, message) in bad {
            let (result, _) = try await shardRun(
                ws, config: "config.yaml", shard, runs: "bad", environment: environment)
            #expect(result.exitCode == 64 && result.stderr.contains(message), "\(shard): \(result.stderr)")
        }
    }
}
