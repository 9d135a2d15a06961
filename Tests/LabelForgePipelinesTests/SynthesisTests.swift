import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// Synthesis against the stub: `synthesize` (schema-guided, fanned out, with lineage), the
/// `quality_filter` shorthand, near-duplicate removal, and `synthesize_conversation` turn by turn.
@Suite struct SynthesisTests {
    static func workspace() throws -> TestWorkspace {
        let ws = try TestWorkspace()
        let passages = (0..<6).map {
            #"{"id":"p\#($0)","passage":"Passage number \#($0) tells how the river flooded the valley in spring."}"#
        }
        try ws.write("data/passages.jsonl", passages.joined(separator: "\n") + "\n")
        try ws.write("prompts/pack.yaml", "name: synth-test\nversion: \"1\"\n")
        try ws.write("prompts/question.mustache", "Write a question about this passage: {{passage}}\n")
        try ws.write("prompts/judge.mustache", "Judge this question: {{questions.question}}\n")
        try ws.write(
            "prompts/user.mustache",
            "Ask about: {{passage}}\nConversation so far:\n{{#conversation}}{{role}}: {{content}}\n{{/conversation}}")
        try ws.write("prompts/assistant.mustache", "Answer from this passage only: {{passage}}\n")
        return ws
    }

    static func config(_ ws: TestWorkspace, baseURL: String, stages: String) throws -> String {
        try ws.write(
            "config.yaml",
            """
            run: {name: synth-test, seed: 5}
            dataset: {path: \(ws.path("data/passages.jsonl")), id_field: id}
            engines:
              - {name: vllm, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
            \(stages)
            """)
    }

    static func lines(_ path: String) throws -> [JSONValue] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(String($0))
        }
    }

    static func schema(in body: JSONValue) -> JSONValue? {
        body["structured_outputs"]?["json"] ?? body["response_format"]?["json_schema"]?["schema"]
    }

    static func text(of body: JSONValue) -> String {
        (body["messages"]?.arrayValue ?? []).map {
            $0["content"]?.stringValue ?? CanonicalJSON.string($0["content"] ?? nil)
        }
        .joined(separator: "\n")
    }

    /// Questions: passage `k`'s samples are the same 30 words but for one (the seed's parity), so
    /// minhash finds them near-duplicates; passage 5's begin with "why" and the judge
    /// scores those 1, the others 4.
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        let prompt = text(of: body)
        let number = Int(prompt.split(separator: "number ").last?.prefix { $0.isNumber } ?? "0") ?? 0
        if let schema = schema(in: body), schema["properties"]?["scores"] != nil {
            let score = prompt.contains("why") ? 1 : 4
            return .content(#"{"rationale":"ok","scores":{"clarity":\#(score),"grounded":\#(score)}}"#)
        }
        if schema(in: body) != nil {
            var words = (0..<30).map { "w\(number)x\($0)" }
            words[0] = number == 5 ? "why" : "how"
            words[15] = (body["seed"]?.intValue ?? 0) % 2 == 0 ? "quickly" : "suddenly"
            let question = words.joined(separator: " ")
            return .content(#"{"question":"\#(question)","difficulty":"easy"}"#)
        }
        return .content("unused")
    }

    @Test(
        "synthesize fans out with lineage; quality_filter expands and keeps rejected scores; minhash dedup clusters; a rerun is all cache hits"
    )
    func synthesizeFilterDedup() async throws {
        let ws = try Self.workspace()
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let stages = """
              - id: questions
                type: synthesize
                template: question
                n: 3
                schema:
                  type: object
                  properties:
                    question: {type: string}
                    difficulty: {type: string, enum: [easy, hard]}
                  required: [question, difficulty]
              - id: quality
                type: quality_filter
                template: judge
                criteria:
                  - {name: clarity, description: the question is clear, scale: {min: 1, max: 5}}
                  - {name: grounded, description: the passage answers it, scale: {min: 1, max: 5}}
                min_score: 3
              - id: unique
                type: dedup
                method: minhash
                field: questions.question
                threshold: 0.7
            """
        let config = try Self.config(ws, baseURL: stub.baseURL, stages: stages)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        #expect(report.stages.map(\.0) == ["questions", "quality_judge", "quality", "unique"])
        let dir = report.runDirectory
        let resolved = try String(contentsOfFile: dir.path + "/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains("type: rubric_score") && resolved.contains("type: filter"))
        #expect(!resolved.contains("quality_filter"))

        let questions = try Self.lines(dir.outputPath(stage: "questions"))
        #expect(questions.count == 18)
        #expect(questions.allSatisfy { $0["difficulty"] == "easy" && $0["question"]?.stringValue != nil })
        #expect(
            questions.map { $0["lineage"]?["seed_row_id"]?.stringValue }
                == (0..<6).flatMap { i in
                    Array(repeating: "p\(i)", count: 3)
                })
        #expect(
            questions.map { $0["lineage"]?["sample_index"]?.intValue }
                == Array(repeating: [0, 1, 2], count: 6).flatMap { $0 })
        #expect(questions.allSatisfy { $0["lineage"]?["stage"] == "questions" })
        // Each sample has its own seed, so its own request.
        #expect(
            Set(stub.bodies.filter { Self.schema(in: $0)?["properties"]?["question"] != nil }.map { $0["seed"] }).count
                == 18)

        // Passage 5's three questions fail the judge; their scores are kept with them.
        let rejected = try Self.lines(dir.outputsPath + "/quality.rejected.jsonl")
        #expect(rejected.count == 3)
        #expect(rejected.allSatisfy { $0["values"]?["quality_judge.score"]?.doubleValue == 1 })
        #expect(rejected.allSatisfy { $0["values"]?["quality_judge.scores"]?["clarity"] == 1 })
        #expect(try Self.lines(dir.outputPath(stage: "quality")).count == 15)

        // Each passage's samples differ in one word: one survivor per passage, the first sample.
        let unique = try Self.lines(dir.outputPath(stage: "unique"))
        let removed = try Self.lines(dir.outputsPath + "/unique.rejected.jsonl")
        #expect(unique.count == 5)
        #expect(removed.count == 10)
        let firstSamples = questions.filter { $0["lineage"]?["sample_index"] == 0 }.map { $0["row_id"] }
        #expect(unique.allSatisfy { firstSamples.contains($0["row_id"]) })
        #expect(unique.allSatisfy { $0["duplicates"] == 2 })
        for row in removed {
            let jaccard = try #require(row["jaccard"]?.doubleValue)
            #expect(jaccard >= 0.7 && jaccard <= 1)
            #expect(unique.contains { $0["row_id"] == row["duplicate_of"] })
        }
        let stats = try JSONValue.parse(
            try Data(contentsOf: URL(fileURLWithPath: dir.outputsPath + "/unique.dedup.json")))
        #expect(stats["clusters"] == 5 && stats["removed"] == 10 && stats["cluster_sizes"]?["3"] == 5)
        #expect(try Self.lines(dir.outputsPath + "/unique.pairs.jsonl").count >= 10)
        let reportText = try String(contentsOfFile: dir.path + "/report.md", encoding: .utf8)
        #expect(reportText.contains("## Dedup: unique (minhash)"))

        // A rerun: all cache hits, byte-identical outputs.
        let requests = stub.chatRequests
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.chatRequests == requests)
        for file in [
            "questions", "quality_judge", "quality", "quality.rejected", "unique", "unique.rejected", "unique.pairs",
        ] {
            let a = try String(contentsOfFile: dir.outputsPath + "/\(file).jsonl", encoding: .utf8)
            let b = try String(contentsOfFile: second.runDirectory.outputsPath + "/\(file).jsonl", encoding: .utf8)
            #expect(a == b, "\(file)")
        }
    }

    @Test("quality_filter on each criterion and min_scores expand to the matching filter")
    func qualityFilterForms() async throws {
        let ws = try Self.workspace()
        func resolvedKeep(_ extra: [String]) throws -> JSONValue? {
            let lines = [
                "  - {id: questions, type: synthesize, template: question}",
                "  - id: q", "    type: quality_filter", "    template: judge",
                "    criteria: [{name: clarity, description: c}, {name: grounded, description: g}]",
            ]
            let config = try Self.config(
                ws, baseURL: "http://127.0.0.1:9", stages: (lines + extra.map { "    " + $0 }).joined(separator: "\n"))
            let stages = try RunConfig.load(file: config).stages
            #expect(stages.map(\.id) == ["questions", "q_judge", "q"])
            return (stages[2].options as? FilterOptions)?.keep.json
        }
        #expect(try resolvedKeep(["min_score: 3"]) == ["field": "q_judge.score", "gte": 3])
        #expect(
            try resolvedKeep(["min_score: 4", "on: each"])
                == [
                    "all": [
                        ["field": "q_judge.scores.clarity", "gte": 4], ["field": "q_judge.scores.grounded", "gte": 4],
                    ]
                ])
        #expect(
            try resolvedKeep(["min_score: 2.5", "score: expected"]) == ["field": "q_judge.expected_score", "gte": 2.5])
        #expect(
            try resolvedKeep(["min_scores: {grounded: 2}"]) == [
                "all": [["field": "q_judge.scores.grounded", "gte": 2]]
            ])
        #expect(throws: LabelForgeError.self) { try resolvedKeep(["min_scores: {nonsense: 2}"]) }
        #expect(throws: LabelForgeError.self) { try resolvedKeep([]) }
    }

    /// Conversations about a passage: the stub user asks "Question k?" and the assistant answers
    /// "Answer k."; passage 1's user ends with a stop phrase on turn 2, passage 2's is silent on turn 3.
    @Sendable static func conversation(_ body: JSONValue) -> StubAnswer {
        let messages = body["messages"]?.arrayValue ?? []
        let prompt = text(of: body)
        if messages.first?["role"] == "system" {
            let asked = messages.filter { $0["role"] == "user" }.count
            return .content("Answer \(asked).")
        }
        let asked = prompt.split(separator: "\n").filter { $0.hasPrefix("user:") }.count
        if prompt.contains("number 1 "), asked == 1 { return .content("Thanks, that is all. <END> ignored") }
        if prompt.contains("number 2 "), asked == 2 { return .content("  ") }
        if prompt.contains("number 3 "), asked == 0 { return .content("What flooded? <END>") }
        return .content("Question \(asked + 1)?")
    }

    @Test(
        "synthesize_conversation: one request and seed per turn, the turns so far in each, stop phrase and empty turn end it"
    )
    func conversations() async throws {
        let ws = try Self.workspace()
        let stub = try await StubEngine.start(answer: Self.conversation)
        defer { Task { await stub.stop() } }
        let config = try Self.config(
            ws, baseURL: stub.baseURL,
            stages: """
                  - id: chat
                    type: synthesize_conversation
                    template: user
                    assistant_template: assistant
                    turns: 3
                    stop_phrases: ["<END>"]
                """)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        let dir = report.runDirectory
        let outputs = try Self.lines(dir.outputPath(stage: "chat"))
        #expect(outputs.count == 6)
        let full: JSONValue = [
            ["role": "user", "content": "Question 1?"], ["role": "assistant", "content": "Answer 1."],
            ["role": "user", "content": "Question 2?"], ["role": "assistant", "content": "Answer 2."],
            ["role": "user", "content": "Question 3?"], ["role": "assistant", "content": "Answer 3."],
        ]
        #expect(outputs[0]["messages"] == full && outputs[0]["turns"] == 3 && outputs[0]["stop_reason"] == "turns")
        // Passage 1: the user's second turn holds the stop phrase; the conversation ends on Answer 1.
        #expect(outputs[1]["messages"]?.arrayValue?.count == 2 && outputs[1]["stop_reason"] == "stop_phrase")
        // Passage 2: an empty third user turn ends it after two exchanges.
        #expect(outputs[2]["messages"]?.arrayValue?.count == 4 && outputs[2]["stop_reason"] == "empty_turn")
        // Passage 3: a stop phrase in the first question still gets its answer (one exchange at least).
        #expect(outputs[3]["messages"]?.arrayValue?.first?["content"] == "What flooded?")
        #expect((outputs[3]["messages"]?.arrayValue?.count ?? 0) >= 2 && outputs[3]["turns"] != 0)

        // Row p0: six requests, each its own seed; the assistant's carry the system prompt and the turns so far.
        let manifest = try Self.lines(dir.manifestPath).filter { $0["row_id"] == "p0" && $0["stage"] == "chat" }
        #expect(manifest.first?["request_keys"]?.arrayValue?.count == 6)
        let p0 = stub.bodies.filter { Self.text(of: $0).contains("number 0 ") }
        #expect(p0.count == 6)
        #expect(Set(p0.map { $0["seed"] }).count == 6)
        let last = try #require(p0.first { ($0["messages"]?.arrayValue?.count ?? 0) == 6 })
        let messages = try #require(last["messages"]?.arrayValue)
        #expect(messages[0]["role"] == "system")
        #expect(messages[5]["content"] == "Question 3?")
        let turn2 = try #require(p0.first { ($0["messages"]?.arrayValue?.count ?? 0) == 4 }?["seed"]?.intValue)
        #expect(Int64(Seed.derive(runSeed: 5, stageID: "chat#turn2.assistant", rowID: "p0", sampleIndex: 0)) == turn2)

        // A rerun is all cache hits and byte-identical.
        let requests = stub.chatRequests
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.chatRequests == requests)
        #expect(
            try String(contentsOfFile: dir.outputPath(stage: "chat"), encoding: .utf8)
                == String(contentsOfFile: second.runDirectory.outputPath(stage: "chat"), encoding: .utf8))
    }
}

extension SynthesisTests {
    @Test(
        "dedup embedding: clusters are the components of cosine ≥ threshold; the vectors are an embed stage's cached ones"
    )
    func embeddingDedup() async throws {
        let ws = try TestWorkspace()
        // 30 rows over 12 distinct texts: repeated texts have the same stub vector (cosine 1).
        let texts = (0..<30).map { "text number \(($0 * 7) % 12)" }
        try ws.write(
            "data/rows.jsonl",
            texts.enumerated().map { #"{"id":"r\#($0)","text":"\#($1)"}"# }.joined(separator: "\n") + "\n")
        try ws.write("prompts/pack.yaml", "name: t\nversion: \"1\"\n")
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let threshold = 0.8
        let config = try ws.write(
            "config.yaml",
            """
            run: {name: dedup-embedding, seed: 3}
            dataset: {path: \(ws.path("data/rows.jsonl")), id_field: id}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: vec, type: embed, field: text}
              - {id: unique, type: dedup, method: embedding, field: text, threshold: \(threshold)}
            """)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        // The embed stage asked for every distinct text once; dedup found them all in the cache.
        #expect(stub.embeddingRequests.flatMap { $0 }.count == 12)

        // Expected: components of the pairs whose stub vectors have cosine ≥ threshold.
        let vectors = texts.map(StubEngine.embedding(of:))
        var root = Array(0..<30)
        func find(_ x: Int) -> Int { root[x] == x ? x : find(root[x]) }
        for i in 0..<30 {
            for j in (i + 1)..<30
            where zip(vectors[i], vectors[j]).reduce(Float(0), { $0 + $1.0 * $1.1 }) >= Float(threshold) {
                let (a, b) = (find(i), find(j))
                root[max(a, b)] = min(a, b)
            }
        }
        let expectedKept = (0..<30).filter { find($0) == $0 }.map { "r\($0)" }
        let dir = report.runDirectory
        let kept = try Self.lines(dir.outputPath(stage: "unique")).map { $0["row_id"]?.stringValue ?? "" }
        #expect(kept == expectedKept)
        for row in try Self.lines(dir.outputsPath + "/unique.rejected.jsonl") {
            let index = Int(row["row_id"]!.stringValue!.dropFirst())!
            #expect(row["duplicate_of"]?.stringValue == "r\(find(index))")
            #expect(row["cosine"]?.doubleValue != nil)
        }
        let stats = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: dir.outputsPath + "/unique.dedup.json")))
        #expect(stats["method"] == "embedding" && stats["removed"]?.intValue == 30 - expectedKept.count)
    }
}
