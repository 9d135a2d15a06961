import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// The stage graph: references between stages, filters, fan-out and a barrier, against the stub.
@Suite struct StageGraphTests {
    static func config(_ ws: TestWorkspace, baseURL: String, stages: String) throws -> String {
        try ws.write(
            "config.yaml",
            """
            run: {name: graph-test, seed: 11}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vllm, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
            \(stages)
            """)
    }

    /// `judge` is listed first but reads `reply`, so it runs after it (and before the barrier,
    /// listed after it); `after` is listed after the barrier, so it sees only the rows it keeps.
    static let kernelStages = """
          - id: judge
            type: classify
            template: judge
            labels: [good, bad]
          - id: sentiment
            type: classify
            template: classify
            labels: [positive, negative, neutral]
          - id: needs_reply
            type: filter
            keep: {all: [{field: sentiment.label, in: [negative, neutral]}]}
          - id: reply
            type: generate
            template: reply
            n: 2
            sampling: {max_tokens: 20}
          - id: unique
            type: dedup
            field: reply.text
          - id: after
            type: classify
            template: judge
            labels: [good, bad]
        """

    /// Classify by the review's number (r0 positive, r1 negative, r2 neutral, …); replies repeat
    /// per review parity; the judge says `bad` for any reply that mentions "sorry".
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        if let choices = body["structured_outputs"]?["choice"]?.arrayValue?.compactMap(\.stringValue) {
            if choices == ["good", "bad"] { return .content(prompt.contains("sorry") ? "bad" : "good") }
            let number = Int(prompt.split(separator: "number ")[1].prefix { $0.isNumber }) ?? 0
            return .content(choices[number % choices.count])
        }
        let number = Int(prompt.split(separator: "number ")[1].prefix { $0.isNumber }) ?? 0
        let sample = body["seed"]?.intValue ?? 0
        return .content(number % 2 == 0 ? "We are sorry to hear that." : "Thanks, noted (\(sample % 2)).")
    }

    static func lines(_ path: String) throws -> [JSONValue] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(String($0))
        }
    }

    static func workspace() throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 9)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        try ws.write("prompts/judge.mustache", "Is this reply good? {{reply.text}}\n")
        return ws
    }

    @Test("stages run in the order their references give; filter, fan-out and an exact dedup barrier shape the rows")
    func kernel() async throws {
        let ws = try Self.workspace()
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let config = try Self.config(ws, baseURL: stub.baseURL, stages: Self.kernelStages)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        #expect(report.stages.map(\.0) == ["sentiment", "needs_reply", "reply", "judge", "unique", "after"])
        let dir = report.runDirectory

        let sentiment = try Self.lines(dir.outputPath(stage: "sentiment"))
        #expect(
            sentiment.map { $0["label"]?.stringValue } == (0..<9).map { ["positive", "negative", "neutral"][$0 % 3] })
        // r1, r2, r4, r5, r7, r8 pass the filter; r0, r3, r6 (positive) are rejected with the reason.
        let kept = try Self.lines(dir.outputPath(stage: "needs_reply")).map { $0["row_id"]?.stringValue ?? "" }
        #expect(kept == ["r1", "r2", "r4", "r5", "r7", "r8"])
        let rejected = try Self.lines(dir.outputsPath + "/needs_reply.rejected.jsonl")
        #expect(rejected.map { $0["row_id"]?.stringValue } == ["r0", "r3", "r6"])
        #expect(rejected.allSatisfy { $0["reason"]?.stringValue?.contains("sentiment.label is \"positive\"") == true })

        // Two samples per kept row, in input order then sample index, with derived IDs and lineage.
        let replies = try Self.lines(dir.outputPath(stage: "reply"))
        #expect(replies.count == 12)
        #expect(replies.map { $0["parent_row_id"]?.stringValue } == kept.flatMap { [$0, $0] })
        #expect(replies.map { $0["sample_index"]?.intValue } == Array(repeating: [0, 1], count: 6).flatMap { $0 })
        #expect(replies[0]["row_id"]?.stringValue == PipelineRow.childID(parent: "r1", stage: "reply", sample: 0))
        #expect(Set(replies.compactMap { $0["row_id"]?.stringValue }).count == 12)

        // Even reviews all say the same sentence; odd ones alternate two: 3 distinct texts survive.
        let unique = try Self.lines(dir.outputPath(stage: "unique"))
        let removed = try Self.lines(dir.outputsPath + "/unique.rejected.jsonl")
        #expect(unique.count + removed.count == 12)
        let texts = Dictionary(
            uniqueKeysWithValues: replies.map { ($0["row_id"]!.stringValue!, $0["text"]!.stringValue!) })
        #expect(Set(unique.map { texts[$0["row_id"]!.stringValue!]! }).count == unique.count)
        for duplicate in removed {
            let keptID = try #require(duplicate["duplicate_of"]?.stringValue)
            #expect(texts[keptID] == texts[duplicate["row_id"]!.stringValue!])
            #expect(unique.contains { $0["row_id"]?.stringValue == keptID })
        }
        // The judge saw every reply; after the barrier the stream goes on with the kept ones only.
        #expect(try Self.lines(dir.outputPath(stage: "judge")).map { $0["row_id"] } == replies.map { $0["row_id"] })
        let judged = try Self.lines(dir.outputPath(stage: "after"))
        #expect(judged.map { $0["row_id"] } == unique.map { $0["row_id"] })
        #expect(judged.allSatisfy { ($0["label"] == "bad") == (texts[$0["row_id"]!.stringValue!]!.contains("sorry")) })
        let final = try Self.lines(dir.path + "/dataset.jsonl")
        #expect(final.map { $0["row_id"] } == unique.map { $0["row_id"] })
        #expect(final.allSatisfy { $0["outputs"]?["sentiment"]?["label"] != nil && $0["parent_row_id"] != nil })

        // A second run: every request from the cache, byte-identical outputs.
        let requests = stub.chatRequests
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.chatRequests == requests)
        for file in [
            "sentiment", "needs_reply", "needs_reply.rejected", "reply", "judge", "unique", "unique.rejected", "after",
        ] {
            let a = try String(contentsOfFile: dir.outputsPath + "/\(file).jsonl", encoding: .utf8)
            let b = try String(contentsOfFile: second.runDirectory.outputsPath + "/\(file).jsonl", encoding: .utf8)
            #expect(a == b, "\(file)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/.state"))
        let manifest = try Self.lines(dir.manifestPath)
        #expect(manifest.filter { $0["type"] == "barrier" }.map { $0["stage"] } == ["unique"])
    }

    @Test("a changed upstream label changes the downstream cache key; an unchanged one keeps it")
    func upstreamInKey() async throws {
        let ws = try Self.workspace()
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let stages = """
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: reply, type: generate, template: reply}
            """
        let config = try Self.config(ws, baseURL: stub.baseURL, stages: stages)
        let first = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        // Same labels, other label order in the config: the classify requests change, its answers do not.
        let reordered = try Self.config(
            ws, baseURL: stub.baseURL,
            stages: stages.replacingOccurrences(
                of: "[positive, negative, neutral]", with: "[positive, negative, neutral, mixed]"))
        let second = try await Runner(
            options: RunOptions(configPath: reordered, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        func keys(_ dir: RunDirectory, _ stage: String) throws -> [String: JSONValue] {
            Dictionary(
                uniqueKeysWithValues: try Self.lines(dir.manifestPath).filter { $0["stage"]?.stringValue == stage }.map
                {
                    ($0["row_id"]!.stringValue!, $0["request_keys"]!)
                })
        }
        let labelsA = try Self.lines(first.runDirectory.outputPath(stage: "sentiment")).map { $0["label"] }
        let labelsB = try Self.lines(second.runDirectory.outputPath(stage: "sentiment")).map { $0["label"] }
        let replyA = try keys(first.runDirectory, "reply")
        let replyB = try keys(second.runDirectory, "reply")
        for (index, (a, b)) in zip(labelsA, labelsB).enumerated() {
            let row = "r\(index)"
            if a == b {
                #expect(replyA[row] == replyB[row], "\(row): same label, same key")
            } else {
                #expect(replyA[row] != replyB[row], "\(row): changed label, changed key")
            }
        }
        #expect(zip(labelsA, labelsB).contains { $0 != $1 })
        #expect(zip(labelsA, labelsB).contains { $0 == $1 })
    }

    @Test("a row whose upstream stage failed gets upstream_failed and sends no request")
    func upstreamFailed() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 4, marked: [1])
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        let stub = try await StubEngine.start(answer: StubPipelineTests.violating)
        defer { Task { await stub.stop() } }
        let config = try Self.config(
            ws, baseURL: stub.baseURL,
            stages: """
                  - {id: sentiment, type: classify, template: classify, labels: [positive, negative], max_validation_retries: 0}
                  - {id: reply, type: generate, template: reply}
                  - {id: other, type: classify, template: classify, labels: [x, y]}
                """)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        let replies = try Self.lines(report.runDirectory.outputPath(stage: "reply"))
        #expect(replies[1]["error"]?["class"] == "upstream_failed")
        #expect(replies[1]["error"]?["message"]?.stringValue?.contains("'sentiment'") == true)
        #expect(replies.filter { $0["error"] == nil }.count == 3)
        let line = try #require(
            try Self.lines(report.runDirectory.manifestPath).first { $0["row_id"] == "r1" && $0["stage"] == "reply" })
        #expect(line["request_keys"] == [])
        // A stage that does not read the failed one still sends its request for the row.
        let other = try #require(
            try Self.lines(report.runDirectory.manifestPath).first { $0["row_id"] == "r1" && $0["stage"] == "other" })
        #expect(other["request_keys"]?.arrayValue?.isEmpty == false)
    }

    @Test(
        "bad references are config errors naming the file, line and stage",
        arguments: [
            (
                "  - {id: a, type: generate, template: t1}\n  - {id: b, type: generate, template: t2}",
                "cannot be ordered", "{{b.text}}", "{{a.text}}"
            ),
            (
                "  - {id: a, type: generate, template: t1}\n  - {id: b, type: generate, template: t2}",
                "has no output 'label'", "", "{{a.label}}"
            ),
            ("  - {id: a, type: generate, template: t1}", "reads its own output", "{{a.text}}", ""),
        ])
    func badReferences(stages: String, fragment: String, t1: String, t2: String) throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        try ws.writePromptPack()
        try ws.write("prompts/t1.mustache", "x \(t1)\n")
        try ws.write("prompts/t2.mustache", "y \(t2)\n")
        let config = try Self.config(ws, baseURL: "http://127.0.0.1:9", stages: stages)
        let error = #expect(throws: LabelForgeError.self) { _ = try RunPlan.prepare(configPath: config, limit: nil) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("config.yaml:") == true, "\(error?.message ?? "")")
    }

    @Test("filter predicates: all/any/not, comparisons, exists; a missing field fails every test but exists: false")
    func predicates() throws {
        let row: [String: JSONValue] = ["s.label": "negative", "s.confidence": 0.9, "n": 3]
        func check(_ p: RowPredicate) -> Bool { p.rejection { row[$0] } == nil }
        #expect(check(.test(field: "s.label", op: "in", value: ["negative", "neutral"])))
        #expect(!check(.test(field: "s.label", op: "eq", value: "positive")))
        #expect(
            check(.all([.test(field: "s.confidence", op: "gte", value: 0.8), .test(field: "n", op: "lt", value: 4)])))
        #expect(
            !check(.any([.test(field: "s.confidence", op: "gt", value: 0.95), .test(field: "n", op: "ne", value: 3)])))
        #expect(check(.not(.test(field: "missing", op: "eq", value: 1))))
        #expect(!check(.test(field: "missing", op: "ne", value: 1)))
        #expect(check(.test(field: "missing", op: "exists", value: false)))
        #expect(check(.test(field: "n", op: "eq", value: 3.0)))
    }

    @Test("exact dedup normalizes Unicode (NFKC), case and whitespace")
    func normalization() {
        #expect(DedupStage.normalized("  Ｈｅｌｌｏ\tWORLD \n") == DedupStage.normalized("hello world"))
        #expect(DedupStage.normalized("ﬁne") == "fine")
        #expect(DedupStage.normalized("a b") != DedupStage.normalized("ab"))
        // The ASCII fast path gives what the general path gives.
        var state: UInt64 = 42
        let alphabet = Array("aZ09 \t\n\r\u{0B}\u{0C}\u{1C}\u{1F}.,;-_~Q".unicodeScalars)
        for _ in 0..<500 {
            let text = String(
                String.UnicodeScalarView(
                    (0..<Int(state % 40)).map { _ in
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        return alphabet[Int(state >> 33) % alphabet.count]
                    }))
            #expect(DedupStage.normalized(text) == DedupStage.unicodeNormalized(text), "\(Array(text.utf8))")
        }
    }
}
