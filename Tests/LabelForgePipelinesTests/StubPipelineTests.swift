import Foundation
import LabelForgeCore
import LabelForgePipelines
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel

/// Pipelines against a stub that speaks vLLM's wire format: faults and schema violations on demand.
@Suite struct StubPipelineTests {
    static func config(
        _ ws: TestWorkspace, baseURL: String, apiKeyEnv: String? = nil, extraRun: String = "",
        maxValidationRetries: Int = 2
    ) throws -> String {
        try ws.write(
            "config.yaml",
            """
            run:
              name: stub-test
              seed: 7
            \(extraRun)
            dataset:
              path: \(ws.path("data/reviews.jsonl"))
              id_field: id
            engines:
              - name: vllm
                kind: openai
                dialect: vllm
                base_url: \(baseURL)
            \(apiKeyEnv.map { "    api_key_env: \($0)" } ?? "")
                model: {id: stub-model, revision: test-rev}
                max_retries: 1
            prompts:
              pack: \(ws.path("prompts"))
            cache:
              path: \(ws.path("cache/cache.sqlite"))
            stages:
              - id: sentiment
                type: classify
                template: classify
                labels: [positive, negative, neutral]
                gold_field: sentiment
                max_validation_retries: \(maxValidationRetries)
              - id: attributes
                type: tag
                template: tag
                attributes:
                  - {name: topic, type: enum, values: [quality, price]}
                  - {name: mentions_price, type: boolean}
                max_validation_retries: \(maxValidationRetries)
            """)
    }

    /// Ignores every constraint for rows whose prompt contains VIOLATE; follows it otherwise.
    @Sendable static func violating(_ body: JSONValue) -> StubAnswer {
        if CanonicalJSON.string(body["messages"] ?? nil).contains("VIOLATE") {
            return .content(StubEngine.schema(in: body) == nil ? "I think it is positive!" : #"{"topic": 3}"#)
        }
        return StubEngine.followConstraint(body)
    }

    @Test("schema-violating responses are retried, then recorded as row errors; other rows complete")
    func schemaViolation() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12, marked: [2, 5])
        try ws.writePromptPack()
        let stub = try await StubEngine.start(answer: Self.violating)
        defer { Task { await stub.stop() } }
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()

        #expect(report.status == "completed")
        #expect(report.rows == 12)
        #expect(report.rowsFailed == 2)
        // 10 good rows × 2 stages + 2 bad rows × 2 stages × 3 attempts.
        #expect(stub.chatRequests == 10 * 2 + 2 * 2 * 3)
        let sentiment = try String(contentsOfFile: report.runDirectory.outputPath(stage: "sentiment"), encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(sentiment.count == 12)
        #expect(sentiment.map { $0["row_id"]?.stringValue } == (0..<12).map { "r\($0)" })
        #expect(sentiment[2]["error"]?["class"] == "schema_violation")
        #expect(sentiment[2]["label"] == nil)
        #expect(sentiment[3]["label"] == "positive")
        let attributes = try String(
            contentsOfFile: report.runDirectory.outputPath(stage: "attributes"), encoding: .utf8)
        #expect(attributes.contains(#""row_id":"r5""#))
        let manifest = try String(contentsOfFile: report.runDirectory.manifestPath, encoding: .utf8).split(
            separator: "\n")
        let errors = manifest.filter { $0.contains(#""error":"#) && $0.contains(#""type":"row""#) }
        #expect(errors.count == 4)
        #expect(errors.allSatisfy { $0.contains("attempt 3 of 3") })
    }

    @Test("a second run is served from cache even at another URL with another API key, and leaks no secret")
    func cacheAcrossEndpoints() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 9)
        try ws.writePromptPack()
        let first = try await StubEngine.start()
        let second = try await StubEngine.start()
        defer {
            Task {
                await first.stop()
                await second.stop()
            }
        }
        let secretA = "sk-secret-\(UUID().uuidString)"
        let secretB = "sk-secret-\(UUID().uuidString)"
        setenv("LF_TEST_KEY_A", secretA, 1)
        setenv("LF_TEST_KEY_B", secretB, 1)
        let logs = CapturedLogs()

        let configA = try Self.config(ws, baseURL: first.baseURL, apiKeyEnv: "LF_TEST_KEY_A")
        let a = try await Runner(
            options: RunOptions(configPath: configA, runsDir: ws.path("runs")), logger: logs.logger
        ).run()
        let configB = try Self.config(ws, baseURL: second.baseURL, apiKeyEnv: "LF_TEST_KEY_B")
        let b = try await Runner(
            options: RunOptions(configPath: configB, runsDir: ws.path("runs")), logger: logs.logger
        ).run()

        #expect(first.chatRequests == 18)
        #expect(first.authorizations.allSatisfy { $0 == "Bearer \(secretA)" })
        #expect(second.chatRequests == 0)
        #expect(b.engineRequests == 0)
        #expect(b.cacheHitRate == 1)
        for stage in ["sentiment", "attributes"] {
            let outA = try Data(contentsOf: URL(fileURLWithPath: a.runDirectory.outputPath(stage: stage)))
            let outB = try Data(contentsOf: URL(fileURLWithPath: b.runDirectory.outputPath(stage: stage)))
            #expect(outA == outB)
        }
        for file in ws.files(under: "runs") {
            let text = try ws.read("runs/" + file)
            #expect(!text.contains(secretA) && !text.contains(secretB), "secret leaked into \(file)")
        }
        #expect(!logs.all.joined().contains(secretA))
        let resolved = try ws.read("runs/\(a.runDirectory.runID)/config.resolved.yaml")
        #expect(!resolved.contains("sk-secret"))
        #expect(resolved.contains("LF_TEST_KEY_A"))
    }

    @Test("a template that reads a missing field fails before any request")
    func missingField() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 3)
        try ws.writePromptPack()
        try ws.write("prompts/classify.mustache", "Sentiment of: {{text}} by {{author}}\n")
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let error = await #expect(throws: LabelForgeError.self) {
            try await Runner(
                options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
            ).run()
        }
        #expect(error?.message.contains("reviews.jsonl:1") == true)
        #expect(error?.message.contains("'author'") == true)
        #expect(stub.chatRequests == 0)
    }

    @Test("an unreachable engine fails the run with one error, recorded in the manifest")
    func unreachable() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 3)
        try ws.writePromptPack()
        let config = try Self.config(ws, baseURL: "http://127.0.0.1:9")
        let error = await #expect(throws: LabelForgeError.self) {
            try await Runner(
                options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
            ).run()
        }
        #expect(error?.code == .engineUnavailable)
        let runs = try FileManager.default.contentsOfDirectory(atPath: ws.path("runs"))
        let manifest = try ws.read("runs/\(try #require(runs.first))/manifest.jsonl").split(separator: "\n")
        #expect(manifest.count == 2)
        #expect(manifest[1].contains(#""status":"failed""#))
        #expect(manifest[1].contains("engine_unavailable"))
    }

    @Test("a clearly broken run aborts at max_failure_ratio instead of failing every row")
    func failureRatio() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 200)
        try ws.writePromptPack()
        let stub = try await StubEngine.start { _ in .error(status: 400, message: "context length exceeded") }
        defer { Task { await stub.stop() } }
        let config = try Self.config(ws, baseURL: stub.baseURL, extraRun: "  max_failure_ratio: 0.2")
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "aborted")
        #expect(report.rows < 100)
        #expect(report.abortReason?.contains("max_failure_ratio") == true)
    }

    @Test("--limit runs the first N rows only")
    func limit() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 10)
        try ws.writePromptPack()
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs"), limit: 4), logger: CapturedLogs().logger
        ).run()
        #expect(report.rows == 4)
        #expect(stub.chatRequests == 8)
    }
}
