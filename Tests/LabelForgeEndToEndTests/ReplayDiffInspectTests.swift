import Foundation
import LabelForgeCore
import LabelForgeTesting
import Synchronization
import Testing

/// `replay`, `diff` and `inspect` against runs made with a stub engine.
@Suite struct ReplayDiffInspectTests {
    static let rows = 12

    func workspace(stub: StubEngine, seed: Int = 11, template: String = "classify") throws -> (TestWorkspace, String) {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: Self.rows, marked: [4])
        try ws.writePromptPack()
        return (ws, try config(ws, stub: stub, seed: seed))
    }

    func config(_ ws: TestWorkspace, stub: StubEngine, seed: Int, name: String = "config.yaml") throws -> String {
        try ws.write(
            name,
            """
            run: {seed: \(seed)}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: m, revision: r}}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], gold_field: sentiment, max_validation_retries: 0}
            """)
    }

    func run(_ config: String, _ ws: TestWorkspace) async throws -> String {
        let result = try await CLI.run(["run", "--config", config, "--runs-dir", ws.path("runs")])
        #expect(result.exitCode == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
        return line.dropFirst(4).trimmingCharacters(in: .whitespaces)
    }

    @Test("replay from cache makes zero engine calls, even with the engine gone, and proves every row")
    func replayFromCache() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.followConstraintBySeed)
        let (ws, config) = try workspace(stub: stub)
        let original = try await run(config, ws)
        let sent = stub.chatRequests
        await stub.stop()

        let replay = try await CLI.run([
            "replay", "--manifest", original + "/manifest.jsonl", "--runs-dir", ws.path("runs"),
        ])
        #expect(replay.exitCode == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("sentiment: reproduced \(Self.rows)/\(Self.rows) rows byte-identical"))
        #expect(replay.stdout.contains("engine requests sent: 0"))
        #expect(stub.chatRequests == sent)
        let replayDir = try #require(replay.stdout.split(separator: "\n").first { $0.hasPrefix("replay:") })
            .dropFirst(8).split(separator: " ").first.map(String.init)
        let manifest = try String(contentsOfFile: try #require(replayDir) + "/manifest.jsonl", encoding: .utf8)
        #expect(manifest.contains(#""replay_of":"\#((original as NSString).lastPathComponent)""#))
    }

    @Test(
        "export to Label Studio, answer, import-review: the answers become gold fields of a dataset the next run scores against"
    )
    func exportAndImport() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.followConstraintBySeed)
        let (ws, config) = try workspace(stub: stub)
        let original = try await run(config, ws)
        let export = try await CLI.run(
            ["export", original, "--format", "label-studio", "--stage", "sentiment", "--output", ws.path("ls")])
        #expect(export.exitCode == 0, "\(export.stderr)")
        #expect(export.stdout.contains("exported \(Self.rows) rows of stage sentiment"), "\(export.stdout)")
        #expect(FileManager.default.fileExists(atPath: ws.path("ls/label_config.xml")))
        // A reviewer accepts every prediction: Label Studio's export then has them as annotations.
        var tasks = try #require(
            try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: ws.path("ls/tasks.json")))).arrayValue)
        for i in tasks.indices {
            var task = tasks[i].objectValue!
            let result = task["predictions"]?.arrayValue?.first?["result"] ?? []
            task["annotations"] = [["was_cancelled": false, "result": result]]
            tasks[i] = .object(task)
        }
        try CanonicalJSON.string(.array(tasks)).write(
            toFile: ws.path("answers.json"), atomically: true, encoding: .utf8)
        let imported = try await CLI.run([
            "import-review", ws.path("answers.json"), "--output", ws.path("data/reviewed.jsonl"),
        ])
        #expect(imported.exitCode == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("wrote \(Self.rows) rows"))
        let rows = try String(contentsOfFile: ws.path("data/reviewed.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }
        #expect(
            rows.allSatisfy { ["positive", "negative", "neutral"].contains($0["gold_sentiment"]?.stringValue ?? "") })
        // Scoring the same model against its own accepted answers: 100% agreement.
        let rescored = try ws.write(
            "rescored.yaml",
            try String(contentsOfFile: config, encoding: .utf8)
                .replacingOccurrences(of: "data/reviews.jsonl", with: "data/reviewed.jsonl")
                .replacingOccurrences(of: "gold_field: sentiment", with: "gold_field: gold_sentiment"))
        let second = try await CLI.run(["run", "--config", rescored, "--runs-dir", ws.path("runs")])
        #expect(second.exitCode == 0, "\(second.stderr)")
        #expect(second.stdout.contains("accuracy sentiment.label vs gold_sentiment: 100.0%"), "\(second.stdout)")
        await stub.stop()
    }

    @Test("replay lists missing cache entries instead of calling the engine")
    func replayMissingEntries() async throws {
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let original = try await run(config, ws)
        let replay = try await CLI.run([
            "replay", "--manifest", original + "/manifest.jsonl", "--runs-dir", ws.path("runs2"), "--cache-path",
            ws.path("empty.sqlite"),
        ])
        #expect(replay.exitCode == 1)
        #expect(replay.stderr.contains("The cache lacks \(Self.rows) response(s)"))
        #expect(replay.stderr.contains("--allow-engine"))
        #expect(stub.chatRequests == Self.rows)
    }

    @Test("replay refuses when the prompt pack on disk changed, naming it")
    func replayRefusesChangedPins() async throws {
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let original = try await run(config, ws)
        try ws.write("prompts/classify.mustache", "Changed: {{text}}\n")
        let replay = try await CLI.run([
            "replay", "--manifest", original + "/manifest.jsonl", "--runs-dir", ws.path("runs"),
        ])
        #expect(replay.exitCode == 64)
        #expect(replay.stderr.contains("prompt pack \(ws.path("prompts")) changed"))
    }

    @Test("replay --recompute calls the engine again and reports the rows that changed, with both values")
    func recompute() async throws {
        let calls = Atomic<Int>(0)
        // Deterministic for the first run; on the second pass row r3 flips to "neutral".
        let stub = try await StubEngine.start { body in
            let n = calls.add(1, ordering: .relaxed).newValue
            if n > ReplayDiffInspectTests.rows, CanonicalJSON.string(body["messages"] ?? nil).contains("number 3:") {
                return .content("neutral")
            }
            return .content("positive")
        }
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let original = try await run(config, ws)
        let replay = try await CLI.run(
            ["replay", "--manifest", original + "/manifest.jsonl", "--recompute", "--runs-dir", ws.path("runs")])
        #expect(replay.exitCode == 1)
        #expect(stub.chatRequests == 2 * Self.rows)
        #expect(replay.stdout.contains("sentiment: reproduced \(Self.rows - 1)/\(Self.rows) rows byte-identical"))
        #expect(replay.stdout.contains(#"r3: {"confidence":"#))
        #expect(replay.stdout.contains(#""label":"positive"} → {"#) && replay.stdout.contains(#""label":"neutral"}"#))
    }

    @Test("diff: config changes as key paths, agreement and kappa, exit 1 when outputs differ, 0 when not")
    func diff() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.followConstraintBySeed)
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let a = try await run(config, ws)
        let again = try await run(config, ws)
        let same = try await CLI.run(["diff", a, again])
        #expect(same.exitCode == 0, "\(same.stdout)")
        #expect(same.stdout.contains("config: identical"))

        let b = try await run(try self.config(ws, stub: stub, seed: 12, name: "config2.yaml"), ws)
        let text = try await CLI.run(["diff", a, b])
        #expect(text.exitCode == 1)
        #expect(text.stdout.contains("run.seed: 11 → 12"))
        #expect(text.stdout.contains("run_seed: 11 → 12"))
        #expect(text.stdout.contains("label (n=\(Self.rows)): agreement"))
        #expect(text.stdout.contains("kappa"))
        let json = try await CLI.run(["diff", a, b, "--format", "json"])
        let value = try JSONValue.parse(json.stdout)
        #expect(value["outputs_differ"] == true)
        let label = try #require(
            value["stages"]?.arrayValue?.first?["fields"]?.arrayValue?.first { $0["name"] == "label" })
        #expect(label["n"] == .int(Int64(Self.rows)))
        #expect(label["kappa"]?.doubleValue != nil)
        // Both runs scored against gold: each accuracy with its interval, and b − a on the same rows.
        #expect(text.stdout.contains("against gold (95% intervals: seeded bootstrap)"), "\(text.stdout)")
        #expect(text.stdout.contains("sentiment.label accuracy: a "))
        #expect(text.stdout.contains("b − a: "))
        let gold = try #require(value["gold"]?.arrayValue?.first)
        #expect(gold["field"] == "sentiment.label")
        let accuracy = try #require(gold["a"]?["accuracy"]?.doubleValue)
        let interval = try #require(gold["a"]?["accuracy_ci"]?.arrayValue).compactMap { $0.doubleValue }
        #expect(interval.count == 2 && interval[0] <= accuracy && accuracy <= interval[1])
        let paired = try #require(gold["b_minus_a"])
        #expect(paired["n"] == .int(Int64(Self.rows)))
        let difference = try #require(paired["difference_ci"]?.arrayValue).compactMap { $0.doubleValue }
        #expect(paired["within_noise"] == .bool(difference[0] <= 0 && 0 <= difference[1]))
        let markdown = try await CLI.run(["diff", a, b, "--format", "markdown"])
        #expect(markdown.stdout.hasPrefix("# diff "))
        let missing = try await CLI.run(["diff", a, ws.path("nope")])
        #expect(missing.exitCode == 2)
    }

    @Test("inspect: header, per-stage counts, errors with an example, and one row's lineage")
    func inspect() async throws {
        let stub = try await StubEngine.start { body in
            CanonicalJSON.string(body["messages"] ?? nil).contains("VIOLATE")
                ? .content("maybe?") : StubEngine.followConstraint(body)
        }
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let dir = try await run(config, ws)
        let text = try await CLI.run(["inspect", dir])
        #expect(text.exitCode == 0)
        #expect(text.stdout.contains("stage sentiment: \(Self.rows - 1) ok, 1 failed"))
        #expect(text.stdout.contains("error schema_violation ×1, e.g. r4"))
        #expect(text.stdout.contains("latency ms: p50"))
        #expect(text.stdout.contains("label vs gold sentiment: accuracy"))

        let json = try JSONValue.parse(try await CLI.run(["inspect", dir, "--json"]).stdout)
        #expect(json["stages"]?.arrayValue?.first?["failed"] == 1)
        #expect(json["run"]?["determinism"] == "standard")

        let row = try await CLI.run(["inspect", dir, "--row", "r2"])
        #expect(row.exitCode == 0)
        #expect(row.stdout.contains("Sentiment of: Review number 2"))
        #expect(row.stdout.contains("response: positive"))
        let rowJSON = try JSONValue.parse(try await CLI.run(["inspect", dir, "--row", "r2", "--json"]).stdout)
        let request = try #require(rowJSON["stages"]?.arrayValue?.first?["requests"]?.arrayValue?.first)
        #expect(request["seed"]?.intValue != nil)
        #expect(request["key"]?.stringValue?.hasPrefix("sha256:") == true)
        let unknown = try await CLI.run(["inspect", dir, "--row", "nope"])
        #expect(unknown.exitCode == 64)
    }
}
