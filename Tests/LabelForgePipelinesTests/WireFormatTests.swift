import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// What goes on the wire, checked on the bodies the stub received.
@Suite struct WireFormatTests {
    static func run(_ ws: TestWorkspace, stub: StubEngine, dialect: String = "vllm", stages: String) async throws
        -> RunReport
    {
        let config = try ws.write(
            "config.yaml",
            """
            run: {name: wire, seed: 5}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: e, kind: openai, dialect: \(dialect), base_url: "\(stub.baseURL)", model: {id: m, revision: r}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache-\(dialect).sqlite"))}
            stages:
            \(stages)
            """)
        return try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
    }

    static func workspace(rows: Int = 3, marked: Set<Int> = []) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows, marked: marked)
        try ws.writePromptPack()
        try ws.write(
            "prompts/judge.mustache", "Which is better? {{first}} or {{second}}\n{{#criteria}}{{name}}{{/criteria}}\n")
        try ws.write("prompts/score.mustache", "Score: {{text}}\n{{#criteria}}{{name}}{{/criteria}}\n")
        return ws
    }

    @Test("logprobs are asked for only where a stage reads them, and top_logprobs: null turns them off")
    func logprobsOnlyWhenUsed() async throws {
        let ws = try Self.workspace()
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        _ = try await Self.run(
            ws, stub: stub,
            stages: """
                  - {id: a, type: classify, template: classify, labels: [positive, negative]}
                  - {id: b, type: classify, template: classify, labels: [x, y], sampling: {top_logprobs: null}}
                  - {id: c, type: rubric_score, mode: pairwise, candidates: [text, sentiment], template: judge, criteria: [{name: fit}]}
                """)
        let bodies = stub.bodies
        func asked(_ labels: [String]) -> [JSONValue] {
            bodies.filter { $0["structured_outputs"]?["choice"] == .array(labels.map(JSONValue.string)) }
        }
        #expect(asked(["positive", "negative"]).allSatisfy { $0["top_logprobs"] == 20 && $0["logprobs"] == true })
        #expect(asked(["x", "y"]).allSatisfy { $0["top_logprobs"] == nil && $0["logprobs"] == nil })
        let pairwise = bodies.filter { StubEngine.schema(in: $0) != nil }
        #expect(pairwise.count == 6)
        #expect(pairwise.allSatisfy { $0["top_logprobs"] == nil && $0["logprobs"] == nil })

        // In the openai dialect labels come wrapped in JSON, so classify's confidence cannot use logprobs.
        let openai = try await StubEngine.start()
        defer { Task { await openai.stop() } }
        _ = try await Self.run(
            ws, stub: openai, dialect: "openai",
            stages: "  - {id: a, type: classify, template: classify, labels: [positive, negative]}")
        #expect(openai.bodies.count == 3)
        #expect(openai.bodies.allSatisfy { $0["top_logprobs"] == nil })
    }

    @Test("a validation retry samples at the retry temperature, so it can change a greedy answer")
    func retryTemperature() async throws {
        let ws = try Self.workspace(rows: 2, marked: [1])
        let stub = try await StubEngine.start(answer: StubPipelineTests.violating)
        defer { Task { await stub.stop() } }
        _ = try await Self.run(
            ws, stub: stub,
            stages:
                "  - {id: a, type: classify, template: classify, labels: [positive, negative], max_validation_retries: 2}"
        )
        let violating = stub.bodies.filter { CanonicalJSON.string($0["messages"] ?? nil).contains("VIOLATE") }
        #expect(violating.map { $0["temperature"]?.doubleValue } == [0, 0.7, 0.7])
        #expect(Set(violating.map { $0["seed"] }).count == 3)
    }

    @Test("a relevance judge's retries carry seeds of their own: each attempt is its own request and cache entry")
    func judgeRetriesSeeded() async throws {
        let ws = try Self.workspace(rows: 1)
        try ws.write("prompts/relevant.mustache", "Is {{document}} relevant to {{query}}?\n")
        let stub = try await StubEngine.start { _ in .content("maybe") }
        defer { Task { await stub.stop() } }
        _ = try await Self.run(
            ws, stub: stub,
            stages:
                "  - {id: j, type: rerank, method: judge, query: text, documents: text, template: relevant, max_validation_retries: 2}"
        )
        let bodies = stub.bodies
        #expect(bodies.map { $0["temperature"]?.doubleValue } == [0, 0.7, 0.7])
        // The greedy first attempt is shared between rows (no seed); the sampled retries are seeded.
        #expect(bodies.first?["seed"] == nil)
        #expect(bodies.dropFirst().allSatisfy { $0["seed"]?.intValue != nil })
        #expect(Set(bodies.map { CanonicalJSON.string($0) }).count == 3, "the third attempt replayed the second")
    }

    @Test("a list attribute's array is bounded by its values, without uniqueItems, and repeats are collapsed")
    func listAttribute() async throws {
        let ws = try Self.workspace(rows: 1)
        let stub = try await StubEngine.start { _ in .content(#"{"tags":["price","price","quality","price"]}"#) }
        defer { Task { await stub.stop() } }
        let report = try await Self.run(
            ws, stub: stub,
            stages:
                "  - {id: t, type: tag, template: tag, attributes: [{name: tags, type: list, values: [price, quality, shipping]}]}"
        )
        let schema = try #require(
            stub.bodies.first.flatMap(StubEngine.schema)?["properties"]?["tags"])
        #expect(schema["maxItems"] == 3)
        #expect(schema["uniqueItems"] == nil)
        let output = try String(contentsOfFile: report.runDirectory.outputPath(stage: "t"), encoding: .utf8)
        #expect(output.contains(#""tags":["price","quality"]"#), "\(output)")
    }

    @Test("rubric stages default max_tokens to the longest answer their schema allows")
    func rubricMaxTokens() throws {
        let one = RubricOptions.defaultMaxTokens(
            criteria: [RunConfig.Criterion(name: "usefulness", min: 1, max: 5, anchors: [:])], pairwise: false)
        // {"rationale":"<300>","scores":{"usefulness":5}} is 342 characters; 16 tokens of slack.
        #expect(one == 342 + 16)
        let two = RubricOptions.defaultMaxTokens(
            criteria: ["accuracy", "fluency"].map { RunConfig.Criterion(name: $0, min: 1, max: 10, anchors: [:]) },
            pairwise: false)
        #expect(two > one)
        #expect(JSONSchemaBound.maxCompactLength(of: ["type": "string"]) == nil)
    }

    @Test("a string attribute is bounded, and llama.cpp's grammar carries the bound")
    func boundedString() throws {
        let options = TagOptions(attributes: [
            RunConfig.Attribute(name: "note", type: "string", values: [], description: nil, goldField: nil)
        ])
        let config = RunConfig.Stage(
            id: "t", type: "tag", engine: "e", template: "tag",
            sampling: RunConfig.Sampling(temperature: 0, topP: nil, maxTokens: 64, topLogprobs: nil),
            goldField: nil, maxValidationRetries: 0, options: options)
        let schema = TagStage(config: config, options: options).schema
        #expect(schema["properties"]?["note"]?["maxLength"] == 200)
        let grammar = try #require(JSONSchemaGrammar.gbnf(for: schema))
        #expect(grammar.contains("char{0,200}"), "\(grammar)")
    }
}
