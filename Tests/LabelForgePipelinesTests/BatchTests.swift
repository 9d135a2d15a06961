import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM
import LabelForgePipelines
import LabelForgeTesting
import Testing

/// Batch engines (`kind: batch`) against the batch stub: every row completes through item failures,
/// expiry, whole-batch failures and kills; nothing that succeeded is submitted again; the cache is
/// the online engine's; the cost is the batch price; a budget stops a run below its cap.
@Suite(.serialized) struct BatchTests {
    static let keyVariable = "LABELFORGE_TEST_BATCH_KEY"

    init() { setenv(Self.keyVariable, "sk-batch-test-secret", 1) }

    static let files = ["outputs/sentiment.jsonl", "dataset.jsonl"]

    /// A classify config over `rows` reviews with `engine` (a YAML flow mapping's inner keys).
    func config(
        _ ws: TestWorkspace, _ name: String, engine: String, rows: Int, cache: String = "cache.sqlite",
        extra: String = ""
    ) throws -> String {
        try ws.write(
            name,
            """
            run: {seed: 3}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: llm, model: {id: stub-model, revision: r1}, pricing: {input: 2.0, output: 10.0}, \(engine)}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path(cache))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], sampling: {max_tokens: 16}}
            \(extra)
            """)
    }

    func batchEngine(_ stub: StubBatchAPI, provider: String = "openai", more: String = "") -> String {
        "kind: batch, provider: \(provider), base_url: \"\(stub.baseURL)/v1\", api_key_env: \(Self.keyVariable), "
            + "poll_s: 0.05, gather_s: 0.3, max_retries: 6\(more)"
    }

    func run(_ config: String, _ ws: TestWorkspace, resume: String? = nil, budgetUSD: Double? = nil) async throws
        -> RunReport
    {
        var options = RunOptions(configPath: config, runsDir: ws.path("runs"), resume: resume)
        options.budgetUSD = budgetUSD
        return try await Runner(options: options, logger: CapturedLogs().logger).run()
    }

    func outputs(_ dir: String) throws -> [Data] {
        try Self.files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
    }

    /// The attempt on which the stub first answers `id` (its draws are reproducible).
    func firstSuccess(_ id: String, failing share: Double) -> Int {
        var attempt = 1
        while StubBatchAPI.draw(id, attempt: attempt) < share { attempt += 1 }
        return attempt
    }

    @Test(
        "10,000 rows, 5% of items failed and 2% expired: all complete, none resubmitted after success, half price",
        .exclusiveCPU)
    func tenThousandRows() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 10_000)
        try ws.writePromptPack()
        let stub = try await StubBatchAPI.start(faults: StubBatchFaults(itemFailure: 0.05, itemExpiry: 0.02))
        let batchConfig = try config(
            ws, "batch.yaml", engine: batchEngine(stub, more: ", max_batch_requests: 4000"), rows: 10_000)
        // Through the CLI, in a process of its own: 10,000 rows in flight at once would crowd this
        // test process's threads, which other suites share.
        let batch = try await cliRun(batchConfig, runs: ws.path("runs-batch"))
        #expect(batch.summary["status"] == "completed" && batch.summary["counts"]?["rows_failed"] == 0)
        #expect(batch.summary["counts"]?["rows"] == 10_000)
        #expect(batch.stdout.contains("batches (llm): \(stub.batchesCreated) submitted, 0 running"), "\(batch.stdout)")
        // Progress: a notice per batch submitted and ended, with the counts so far.
        #expect(batch.stderr.contains("batch batch_1 (llm, openai): 4000 request(s) submitted; batches: 1 submitted"))
        #expect(batch.stderr.contains("batch batch_1 (llm): expired,"), "\(batch.stderr.prefix(2000))")
        let lines = try String(contentsOfFile: batch.dir + "/outputs/sentiment.jsonl", encoding: .utf8)
        #expect(lines.split(separator: "\n").count == 10_000)

        // Each item was submitted until its first success and never after it.
        let submissions = stub.submissions
        #expect(submissions.count == 10_000)
        var resubmitted = 0
        for (id, count) in submissions {
            #expect(count == firstSuccess(id, failing: 0.07), "item \(id) submitted \(count) times")
            #expect(stub.successes[id] == 1)
            resubmitted += count - 1
        }
        #expect(resubmitted > 500, "about 7% of 10,000 items fail at first: \(resubmitted) resubmissions")
        // 10,000 items in batches of at most 4,000, then the resubmissions.
        #expect(stub.batchesCreated >= 4)

        // Half the price the same requests cost online: an online run on an empty cache reports it
        // (the manifest's summary records each run's cost).
        let spent = try #require(batch.summary["cost"]?.arrayValue?.first)
        #expect(spent["requests"] == 10_000)
        let online2 = try await StubEngine.start()
        let onlineEngine = "kind: openai, base_url: \"\(online2.baseURL)\", max_retries: 0, max_in_flight: 32"
        let fresh = try await cliRun(
            try config(ws, "fresh.yaml", engine: onlineEngine, rows: 10_000, cache: "fresh.sqlite"),
            runs: ws.path("runs-fresh"))
        let batchUSD = try #require(spent["usd"]?.doubleValue)
        let onlineUSD = try #require(fresh.summary["cost"]?.arrayValue?.first?["usd"]?.doubleValue)
        #expect(abs(batchUSD / onlineUSD - 0.5) < 0.005, "batch \(batchUSD) against online \(onlineUSD)")

        // The same config online against the stub: every answer from the cache, the same bytes.
        let before = online2.chatRequests
        let again = try await cliRun(
            try config(ws, "online.yaml", engine: onlineEngine, rows: 10_000), runs: ws.path("runs-online"))
        #expect(online2.chatRequests == before && again.summary["engine_requests"] == 0)
        #expect(try outputs(again.dir) == outputs(batch.dir))
        // Every batch is in the manifest with its items and its id.
        let manifest = try String(contentsOfFile: batch.dir + "/manifest.jsonl", encoding: .utf8)
        #expect(manifest.components(separatedBy: #""batch_id":"batch_"#).count - 1 == stub.batchesCreated)
        await stub.stop()
        await online2.stop()
    }

    /// `labelforge run --config path --runs-dir runs`, with the batch key in its environment: its
    /// output, run directory and the manifest's summary.
    func cliRun(_ path: String, runs: String) async throws -> (
        stdout: String, stderr: String, dir: String, summary: JSONValue
    ) {
        let result = try await CLI.run(
            ["run", "--config", path, "--runs-dir", runs], environment: [Self.keyVariable: "sk-batch-test-secret"])
        #expect(result.exitCode == 0, "\(result.stderr)")
        let dir = try RunFiles.onlyRun(in: runs)
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        let last = try #require(manifest.split(separator: "\n").last)
        return (result.stdout, result.stderr, dir, try JSONValue.parse(String(last)))
    }

    @Test("A whole batch failed, a slow batch: resubmitted and waited for; Ctrl-C cancels the remote batch")
    func failedSlowAndCancelled() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 300)
        try ws.writePromptPack()
        let stub = try await StubBatchAPI.start(faults: StubBatchFaults(failedBatches: [1], pollsToEnd: 20))
        let path = try config(ws, "batch.yaml", engine: batchEngine(stub), rows: 300)
        let report = try await run(path, ws)
        #expect(report.status == "completed" && report.rowsFailed == 0)
        #expect(stub.statuses == ["failed", "completed"], "\(stub.statuses)")
        #expect(stub.submissions.values.allSatisfy { $0 == 2 })

        // Interrupted while its batch runs: the batch is cancelled at the provider.
        try ws.writeReviews(count: 400)
        stub.setFaults(StubBatchFaults(pollsToEnd: 1_000_000))
        let task = Task { try await run(path, ws) }
        let submitted = try await Waiting.until(timeout: .seconds(60)) { stub.batchesCreated == 3 }
        #expect(submitted)
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        _ = await task.result
        #expect(stub.cancelled == ["batch_3"])
        #expect(stub.statuses.last == "cancelled")
        await stub.stop()
    }

    @Test("SIGKILL while polling a resubmission, then --resume: recorded batches polled, nothing submitted twice")
    func killWhilePolling() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 200)
        try ws.writePromptPack()
        // Batch 1 ends with 10% of its items failed; batch 2 (their resubmission) stays in progress.
        let stub = try await StubBatchAPI.start(faults: StubBatchFaults(itemFailure: 0.1, stuckBatches: [2]))
        let path = try config(ws, "batch.yaml", engine: batchEngine(stub), rows: 200)
        let runs = ws.path("runs")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LabelForgeBinary.path())
        process.arguments = ["run", "--config", path, "--runs-dir", runs]
        process.environment = ProcessInfo.processInfo.environment.merging([Self.keyVariable: "sk-batch"]) {
            _, new in new
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let polling = try await Waiting.until(timeout: .seconds(120)) {
            guard stub.batchesCreated == 2, let dir = try? RunFiles.onlyRun(in: runs) else { return false }
            let manifest = (try? String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)) ?? ""
            return manifest.contains(#""batch_id":"batch_2""#)
        }
        #expect(polling, "the run never recorded its second batch")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        stub.setFaults(StubBatchFaults(itemFailure: 0.1))
        let resumed = try await CLI.run(
            ["run", "--resume", try RunFiles.onlyRun(in: runs)], environment: [Self.keyVariable: "sk-batch"])
        #expect(resumed.exitCode == 0, "\(resumed.stderr)")
        // Batch 2 was polled, not submitted again; each item went until its first success, never after.
        #expect(stub.submissions.count == 200)
        for (id, count) in stub.submissions {
            #expect(count == firstSuccess(id, failing: 0.1), "item \(id) submitted \(count) times")
            #expect(stub.successes[id] == 1)
        }
        let dir = try RunFiles.onlyRun(in: runs)
        let labels = try String(contentsOfFile: dir + "/outputs/sentiment.jsonl", encoding: .utf8)
        #expect(labels.split(separator: "\n").count == 200)
        await stub.stop()
    }

    @Test("A budget of 30% stops below the cap; resumed with a raised budget, the outputs are an uncapped run's")
    func budget() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 200)
        try ws.writePromptPack()
        let stub = try await StubEngine.start()
        let engine = "kind: openai, base_url: \"\(stub.baseURL)\", max_retries: 0, max_in_flight: 8"
        let full = try await run(try config(ws, "full.yaml", engine: engine, rows: 200, cache: "full.sqlite"), ws)
        let fullCost = try #require(full.cost.first).usd
        let capped = try config(
            ws, "capped.yaml", engine: engine, rows: 200, cache: "capped.sqlite",
            extra: "budget: {usd: \(fullCost * 0.3)}")
        let before = stub.chatRequests
        let stopped = await #expect(throws: LabelForgeError.self) { _ = try await run(capped, ws) }
        #expect(stopped?.code == .budgetReached, "\(stopped?.message ?? "")")
        #expect(stopped?.message.contains("--resume") == true)
        // What it sent stayed under the cap, and came within one request's worst case of it (requests
        // wait for those in flight before the run stops).
        let sent = stub.chatRequests - before
        #expect(sent > 0 && Double(sent) < 0.3 * 200, "\(sent) requests")
        let dir = try #require(
            try FileManager.default.contentsOfDirectory(atPath: ws.path("runs")).map { ws.path("runs/" + $0) }
                .first { $0 != full.runDirectory.path })
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        let summary = try JSONValue.parse(String(try #require(manifest.split(separator: "\n").last)))
        let spent = try #require(summary["cost"]?.arrayValue?.first?["usd"]?.doubleValue)
        #expect(summary["status"] == "stopped" && summary["abort_reason"]?.stringValue?.contains("budget.usd") == true)
        #expect(spent <= fullCost * 0.3 && spent > fullCost * 0.3 - 3 * fullCost / 200, "spent \(spent)")
        let resumed = try await run(capped, ws, resume: dir, budgetUSD: fullCost * 10)
        #expect(resumed.status == "completed")
        #expect(try outputs(dir) == outputs(full.runDirectory.path))
        await stub.stop()
    }

    @Test("plan's cost estimate is within 10% of the cost the run reports, with new and cached requests")
    func planEstimate() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 100)
        try ws.writePromptPack()
        let stub = try await StubBatchAPI.start()
        let path = try config(ws, "batch.yaml", engine: batchEngine(stub), rows: 100)
        _ = try await run(path, ws)
        try ws.writeReviews(count: 300)
        let plan = try await Runner(
            options: RunOptions(configPath: path, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).plan()
        let estimate = try #require(plan.stages[0].cost)
        #expect(plan.stages[0].new == 200 && plan.stages[0].cached == 100)
        #expect(estimate.outputMethod.contains("batch prices (50% off)"), "\(estimate.outputMethod)")
        let report = try await run(path, ws)
        let reported = try #require(report.cost.first).usd
        #expect(abs(estimate.new / reported - 1) < 0.1, "plan \(estimate.new) against reported \(reported)")
        await stub.stop()
    }

    @Test("Anthropic message batches: every row completes through errored and expired items; same cache keys")
    func anthropic() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 300)
        try ws.writePromptPack()
        let stub = try await StubBatchAPI.start(faults: StubBatchFaults(itemFailure: 0.05, itemExpiry: 0.05))
        let path = try config(ws, "anthropic.yaml", engine: batchEngine(stub, provider: "anthropic"), rows: 300)
        let report = try await run(path, ws)
        #expect(report.status == "completed" && report.rowsFailed == 0)
        for (id, count) in stub.submissions { #expect(count == firstSuccess(id, failing: 0.1)) }
        let headers = stub.requestHeaders
        #expect(
            headers.allSatisfy {
                $0["x-api-key"] == "sk-batch-test-secret" && $0["anthropic-version"] == "2026-10-21"
            })
        // The OpenAI provider's run of the same config finds every answer cached.
        let openAI = try config(ws, "openai.yaml", engine: batchEngine(stub), rows: 300)
        let created = stub.batchesCreated
        let again = try await run(openAI, ws)
        #expect(again.engineRequests == 0 && stub.batchesCreated == created)
        #expect(try outputs(again.runDirectory.path) == outputs(report.runDirectory.path))
        await stub.stop()
    }

    @Test("vLLM batch files: the command answers the input file; the outputs are read back")
    func vllmFiles() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 50)
        try ws.writePromptPack()
        // A stand-in for `vllm run-batch`: one output line per input line, in its format.
        let script = try ws.write(
            "run_batch.py",
            """
            import json, sys
            args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
            with open(args["-i"]) as f, open(args["-o"] + ".tmp", "w") as out:
                for n, line in enumerate(f):
                    req = json.loads(line)
                    body = {"id": "cmpl", "object": "chat.completion", "model": args["--model"],
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "negative"},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
                    out.write(json.dumps({"id": f"vllm-{n}", "custom_id": req["custom_id"],
                                          "response": {"status_code": 200, "request_id": f"r{n}", "body": body},
                                          "error": None}) + "\\n")
            import os; os.rename(args["-o"] + ".tmp", args["-o"])
            """)
        let path = try config(
            ws, "vllm.yaml",
            engine: "kind: batch, provider: vllm-file, poll_s: 0.05, gather_s: 0.3, "
                + "command: [python3, \(script), -i, '{input}', -o, '{output}', --model, '{model}']", rows: 50)
        let report = try await run(path, ws)
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let labels = try String(contentsOfFile: report.runDirectory.outputPath(stage: "sentiment"), encoding: .utf8)
        #expect(labels.components(separatedBy: #""label":"negative""#).count - 1 == 50)
        let files = try FileManager.default.contentsOfDirectory(atPath: report.runDirectory.path + "/batches")
        #expect(files.contains { $0.hasSuffix(".input.jsonl") } && files.contains { $0.hasSuffix(".output.jsonl") })
        let spent = try #require(report.cost.first)
        #expect(spent.usage.input == 500 && spent.usage.output == 50)
    }
}

extension BatchTests {
    @Test("Batch requests are what the official SDKs type; the SDKs run batches against the stub")
    func wireFormats() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 20)
        try ws.writePromptPack()
        let stub = try await StubBatchAPI.start()
        let tag = """
              - id: attributes
                type: tag
                template: tag
                attributes: [{name: topic, type: enum, values: [quality, price]}, {name: flag, type: boolean}]
            """
        for provider in ["openai", "anthropic"] {
            // A cache each: the second provider would otherwise find every answer cached.
            let path = try config(
                ws, provider + ".yaml", engine: batchEngine(stub, provider: provider), rows: 20,
                cache: provider + ".sqlite")
            try ws.write(provider + ".yaml", try String(contentsOfFile: path, encoding: .utf8) + tag)
            let report = try await run(path, ws)
            #expect(report.status == "completed" && report.rowsFailed == 0)
        }
        var lines: [JSONValue] = []
        for file in stub.uploads {
            for line in file.split(separator: 0x0A) { lines.append(try JSONValue.parse(Data(line))) }
        }
        let creates = stub.createBodies
        let sent: JSONValue = [
            "openai_creates": .array(creates.filter { $0["input_file_id"] != nil }), "openai_lines": .array(lines),
            "anthropic_creates": .array(creates.filter { $0["requests"] != nil }),
        ]
        try CanonicalJSON.data(sent).write(to: URL(fileURLWithPath: ws.path("sent.json")))
        let python = try #require(ProjectPaths.venvPython())
        let script = try #require(ProjectPaths.projectFile("scripts/check_batch_wire.py"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, stub.baseURL, ws.path("sent.json")]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "openai and anthropic (scripts/test_deps.sh): \(printed)")
        #expect(printed.contains("anthropic 2.17.0") && printed.contains("openai 3.63.0"), "\(printed)")
        #expect(lines.count == 40 && creates.count >= 2)
        await stub.stop()
    }
}

extension BatchTests {
    @Test("vLLM batch files through the S3 cache's bucket: a job elsewhere answers them")
    func vllmFilesThroughTheBucket() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        for (key, value) in SeaweedServer.credentials { setenv(key, value, 1) }
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 30)
        try ws.writePromptPack()
        let path = try config(
            ws, "vllm.yaml", engine: "kind: batch, provider: vllm-file, poll_s: 0.05, gather_s: 0.3", rows: 30)
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: "cache: {path: \(ws.path("cache.sqlite"))}",
            with: "cache: {kind: s3, bucket: \(SeaweedServer.bucket), prefix: vb, endpoint: \"\(server.endpoint)\"}")
        try ws.write("vllm.yaml", text)
        let objects = try S3Objects(
            location: S3Location(bucket: SeaweedServer.bucket, prefix: "vb", endpoint: server.endpoint),
            environment: SeaweedServer.credentials)
        // The cluster's side: answers each batch file the manifest names, as `vllm run-batch` would.
        let job = Task {
            var answered: Set<String> = []
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(50))
                guard let dir = try? RunFiles.onlyRun(in: ws.path("runs")),
                    let manifest = try? String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
                else { continue }
                for line in manifest.split(separator: "\n") where line.contains(#""type":"batch""#) {
                    let record = try JSONValue.parse(String(line))
                    guard let submission = record["submission"]?.stringValue, !answered.contains(submission),
                        let input = try await objects.get("vllm-batches/\(submission).input.jsonl")
                    else { continue }
                    var output = Data()
                    for request in input.split(separator: 0x0A) {
                        let id = try JSONValue.parse(Data(request))["custom_id"]!
                        let body: JSONValue = [
                            "id": "cmpl", "object": "chat.completion", "model": "stub-model",
                            "choices": [
                                [
                                    "index": 0, "message": ["role": "assistant", "content": "neutral"],
                                    "finish_reason": "stop",
                                ]
                            ],
                            "usage": ["prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13],
                        ]
                        output.append(
                            CanonicalJSON.data(
                                [
                                    "id": "r", "custom_id": id, "response": ["status_code": 200, "body": body],
                                    "error": nil,
                                ]
                                    as JSONValue))
                        output.append(0x0A)
                    }
                    try await objects.put("vllm-batches/\(submission).output.jsonl", output)
                    answered.insert(submission)
                }
            }
        }
        let report = try await run(path, ws)
        job.cancel()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let labels = try String(contentsOfFile: report.runDirectory.outputPath(stage: "sentiment"), encoding: .utf8)
        #expect(labels.components(separatedBy: #""label":"neutral""#).count - 1 == 30)
        #expect(try #require(report.cost.first).usage.input == 30 * 12)
    }

    /// Real public text at real size, when `LABELFORGE_REAL_JSONL` names a JSONL file with `id` and
    /// `text` (e.g. Debian package descriptions): the batch run, the online rerun, a budget stop.
    @Test(
        "Real data: every row through the batch stub with faults, then online from the cache, then a budget stop",
        .enabled(if: ProcessInfo.processInfo.environment["LABELFORGE_REAL_JSONL"] != nil))
    func realData() async throws {
        let source = ProcessInfo.processInfo.environment["LABELFORGE_REAL_JSONL"]!
        let ws = try TestWorkspace()
        try ws.write("data/reviews.jsonl", try String(contentsOfFile: source, encoding: .utf8))
        let rows = try String(contentsOfFile: source, encoding: .utf8).split(separator: "\n").count
        try ws.writePromptPack()
        let stub = try await StubBatchAPI.start(faults: StubBatchFaults(itemFailure: 0.05, itemExpiry: 0.02))
        let started = ContinuousClock.now
        let report = try await run(
            try config(ws, "batch.yaml", engine: batchEngine(stub, more: ", max_batch_requests: 1500"), rows: rows), ws)
        let batchSeconds = (ContinuousClock.now - started) / .seconds(1)
        let spent = try #require(report.cost.first)
        let online = try await StubEngine.start()
        let onlineEngine = "kind: openai, base_url: \"\(online.baseURL)\", max_retries: 0, max_in_flight: 32"
        let again = try await run(try config(ws, "online.yaml", engine: onlineEngine, rows: rows), ws)
        let fresh = try await run(
            try config(ws, "fresh.yaml", engine: onlineEngine, rows: rows, cache: "fresh.sqlite"), ws)
        let onlineCost = try #require(fresh.cost.first).usd
        let capped = try config(
            ws, "capped.yaml", engine: onlineEngine, rows: rows, cache: "capped.sqlite",
            extra: "budget: {usd: \(onlineCost * 0.3)}")
        let before = online.chatRequests
        let stopped = await #expect(throws: LabelForgeError.self) { _ = try await run(capped, ws) }
        let cappedRequests = online.chatRequests - before
        print(
            "REALDATA rows=\(report.rows) failed=\(report.rowsFailed) batches=\(stub.batchesCreated) "
                + "items=\(stub.submissions.count) submissions=\(stub.submissions.values.reduce(0, +)) "
                + "batch_s=\(batchSeconds) batch_usd=\(spent.usd) online_usd=\(onlineCost) "
                + "ratio=\(spent.usd / onlineCost) rerun_requests=\(again.engineRequests) "
                + "same_outputs=\(try outputs(again.runDirectory.path) == outputs(report.runDirectory.path)) "
                + "capped_requests=\(cappedRequests) of \(fresh.engineRequests) stop=\(stopped?.message ?? "none")"
        )
        #expect(report.status == "completed" && again.engineRequests == 0)
        #expect(stub.successes.values.allSatisfy { $0 == 1 })
        await stub.stop()
        await online.stop()
    }
}
