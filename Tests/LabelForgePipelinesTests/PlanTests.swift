import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct PlanTests {
    @Test("plan: all new before a run, nothing new after it; a changed prompt makes only its stage and dependents new")
    func plan() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 10)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        let stub = try await StubEngine.start()
        let config = try ws.write(
            "c.yaml",
            """
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vllm, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: tags, type: tag, template: tag, attributes: [{name: topic, type: enum, values: [a, b]}]}
              - {id: reply, type: generate, template: reply}
            """)
        var lastReport: PlanReport?
        func plan() async throws -> [String: PlanReport.StageEstimate] {
            let report = try await Runner(
                options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
            ).plan()
            lastReport = report
            return Dictionary(uniqueKeysWithValues: report.stages.map { ($0.id, $0) })
        }
        let before = try await plan()
        #expect(before["sentiment"]?.new == 10 && before["tags"]?.new == 10)
        // The reply reads the sentiment label, which no cache holds yet: its rows wait.
        #expect(before["reply"]?.waiting == 10 && before["reply"]?.new == 0)
        // New prompts' tokens are estimated from their text (at least the review text, /4).
        #expect((before["sentiment"]?.newPromptTokens ?? 0) > 10 * 30 / 4)
        #expect(stub.chatRequests == 0, "planning sends nothing")
        // The stub is a reachable vLLM server: each new request's prompt was counted by /tokenize.
        #expect(lastReport?.tokenizedBy == ["vllm"] && stub.tokenizeRequests == 20)
        #expect(lastReport?.time == nil, "no earlier run to measure throughput")

        _ = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        let after = try await plan()
        #expect(after.values.allSatisfy { $0.new == 0 && $0.waiting == 0 })
        #expect((after["sentiment"]?.cachedPromptTokens ?? 0) > 0 && after["sentiment"]?.newPromptTokens == 0)
        #expect(after["sentiment"]?.cached == 10 && after["reply"]?.cached == 10)

        // One stage's prompt changes: only it is new; the others stay cached.
        try ws.write("prompts/tag.mustache", "Tag this review as JSON, please: {{text}}\n")
        let changed = try await plan()
        // The finished run measured the stub's throughput: the estimate is 10 requests at that rate.
        let time = try #require(lastReport?.time)
        #expect(time.requestsPerSecond > 0 && abs(time.seconds * time.requestsPerSecond - 10) < 1e-6)
        #expect(changed["tags"]?.new == 10 && changed["sentiment"]?.new == 0 && changed["reply"]?.new == 0)
        // An upstream prompt changes: its stage is new and the stage reading it waits.
        try ws.write(
            "prompts/classify.mustache",
            "Sentiment, one word: {{text}}\n{{#labels}}- {{name}}\n{{/labels}}{{label_names}}\n")
        let upstream = try await plan()
        #expect(upstream["sentiment"]?.new == 10 && upstream["reply"]?.waiting == 10)
        #expect(stub.chatRequests == 30)
        await stub.stop()
    }

    @Test(
        "plan prices the requests with the engine's pricing: new ones at max_tokens before any answer, then at the mean of the cached answers; cached ones as their usage cost; run reports what its requests cost; pricing leaves the plan hash as it was"
    )
    func cost() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 8)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this review: {{text}}\n")
        let stub = try await StubEngine.start()
        func config(_ pricing: String) throws -> String {
            try ws.write(
                "c.yaml",
                """
                dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
                engines:
                  - {name: vllm, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0\(pricing)}
                prompts: {pack: \(ws.path("prompts"))}
                cache: {path: \(ws.path("cache.sqlite"))}
                stages:
                  - {id: reply, type: generate, template: reply, sampling: {max_tokens: 50}}
                """)
        }
        func plan(_ path: String) async throws -> PlanReport {
            try await Runner(
                options: RunOptions(configPath: path, runsDir: ws.path("runs")), logger: CapturedLogs().logger
            )
            .plan()
        }
        let unpriced = try await plan(try config(""))
        #expect(unpriced.cost == nil && unpriced.stages[0].cost == nil)
        let priced = try config(", pricing: {input: 2.0, output: 10.0}")
        let before = try await plan(priced)
        #expect(before.planHash == unpriced.planHash, "prices do not change what a run is")
        let stage = before.stages[0]
        let cost = try #require(stage.cost)
        #expect(stage.new == 8 && cost.newOutputTokens == 8 * 50 && cost.outputMethod.contains("max_tokens (50)"))
        #expect(abs(cost.new - (Double(stage.newPromptTokens) * 2 + Double(8 * 50) * 10) / 1e6) < 1e-12)
        #expect(before.rendered.contains("cost: about $"), "\(before.rendered)")

        let run = try await Runner(
            options: RunOptions(configPath: priced, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        // What the run's requests used, from its manifest: the cached requests' cost.
        var tokensIn = 0
        var tokensOut = 0
        for line in try String(contentsOfFile: run.runDirectory.manifestPath, encoding: .utf8).split(separator: "\n") {
            let record = try JSONValue.parse(String(line))
            guard record["type"] == "row" else { continue }
            tokensIn += record["tokens_in"]?.intValue ?? 0
            tokensOut += record["tokens_out"]?.intValue ?? 0
        }
        #expect(tokensOut > 0)
        // The run reports what its requests cost: all 8 were sent (the cache was empty).
        let spent = try #require(run.cost.first)
        #expect(run.cost.count == 1 && spent.engine == "vllm" && spent.usage.requests == 8)
        #expect(spent.usage.input == tokensIn && spent.usage.output == tokensOut)
        #expect(abs(spent.usd - (Double(tokensIn) * 2 + Double(tokensOut) * 10) / 1e6) < 1e-12)
        let again = try await Runner(
            options: RunOptions(configPath: priced, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(again.cost.isEmpty, "a cached rerun sends nothing and costs nothing")
        let after = try await plan(priced)
        let cached = try #require(after.stages[0].cost)
        #expect(abs(cached.cached - (Double(tokensIn) * 2 + Double(tokensOut) * 10) / 1e6) < 1e-12)
        #expect(cached.new == 0 && after.stages[0].new == 0)

        // Four more rows: the new requests' output is priced at the mean of the 8 cached answers.
        try ws.writeReviews(count: 12)
        let more = try await plan(priced)
        let mean = try #require(more.stages[0].cost)
        #expect(more.stages[0].new == 4 && mean.outputMethod.contains("mean of its 8 cached answers"))
        #expect(mean.newOutputTokens == Int((Double(tokensOut) / 8 * 4).rounded()))

        // A negative price is refused, naming the line.
        let negative = try config(", pricing: {input: -1, output: 1}")
        let refused = await #expect(throws: LabelForgeError.self) { _ = try await plan(negative) }
        #expect(refused?.message.contains("pricing.input must be a price") == true, "\(refused?.message ?? "")")
        #expect(refused?.message.hasPrefix(negative + ":3") == true, "\(refused?.message ?? "")")
    }
}
