import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// Runs whose cache is a bucket on a real S3 server (SeaweedFS): shards on separate caches-free
/// machines share it, two runs write it at once, and a server that stops mid-run loses nothing.
@Suite(.serialized) struct S3RunTests {
    /// Answers that depend on the prompt only, slowly enough that a run takes a few seconds.
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        if body["structured_outputs"] != nil || body["response_format"] != nil {
            return StubEngine.followConstraintByContent(body)
        }
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        let number = Int(prompt.components(separatedBy: "number ").dropFirst().first?.prefix { $0.isNumber } ?? "") ?? 0
        return .content("Reply \(number % 4)")
    }

    static let files = ["outputs/sentiment.jsonl", "outputs/reply.jsonl", "outputs/unique.jsonl", "dataset.jsonl"]

    func workspace(rows: Int) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        return ws
    }

    /// classify → generate → exact dedup, with `cache` as the config's cache block.
    @discardableResult
    func config(_ ws: TestWorkspace, _ name: String, baseURL: String, cache: String, maxFailureRatio: Double = 0.5)
        throws -> String
    {
        try ws.write(
            name,
            """
            run: {seed: 9, max_failure_ratio: \(maxFailureRatio)}
            dataset: {path: data/reviews.jsonl, id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r}, max_in_flight: 4, max_retries: 0}
            prompts: {pack: prompts}
            cache: \(cache)
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: reply, type: generate, template: reply}
              - {id: unique, type: dedup, field: reply.text}
            """)
    }

    func run(
        _ arguments: [String], _ ws: TestWorkspace, runs: String,
        environment: [String: String] = SeaweedServer.credentials
    )
        async throws -> (CLIResult, String?)
    {
        let result = try await CLI.run(arguments + ["--runs-dir", ws.path(runs)], environment: environment)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: ws.path(runs)))?.filter { !$0.hasPrefix(".") }
        return (result, names?.first.map { ws.path(runs) + "/" + $0 })
    }

    func contents(_ dir: String) -> [Data?] {
        Self.files.map { try? Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
    }

    static func cacheStatuses(_ dir: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n") {
            let record = try JSONValue.parse(String(line))
            if record["type"] == "row", let cache = record["cache"]?.stringValue { counts[cache, default: 0] += 1 }
        }
        return counts
    }

    /// Every file under `dir` as text, to look for a secret.
    static func allText(under dir: String) -> String {
        let files = FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? []
        return files.compactMap { try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
    }

    @Test(
        "shards share an S3 cache and nothing else: merge --continue from the bucket equals an unsharded run; two runs writing the bucket at once agree; a rerun is all hits"
    )
    func shardsOnS3() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: 30)
        let s3 =
            "{kind: s3, bucket: \(SeaweedServer.bucket), prefix: team/shards, endpoint: \"\(server.endpoint)\", region: us-east-1}"
        try config(ws, "s3.yaml", baseURL: stub.baseURL, cache: s3)
        try config(ws, "local.yaml", baseURL: stub.baseURL, cache: "{path: ref.sqlite}")

        let (reference, referenceDir) = try await run(["run", "--config", ws.path("local.yaml")], ws, runs: "ref")
        #expect(reference.exitCode == 0, "\(reference.stderr)")

        // Two shards at once, each with no cache but the bucket.
        async let first = run(["run", "--config", ws.path("s3.yaml"), "--shard", "0/2"], ws, runs: "s0")
        async let second = run(["run", "--config", ws.path("s3.yaml"), "--shard", "1/2"], ws, runs: "s1")
        let shards = try await [first, second]
        for (result, _) in shards { #expect(result.exitCode == 0, "\(result.stderr)") }
        let dirs = shards.compactMap(\.1)
        let merged = try await run(["merge", "--continue"] + dirs, ws, runs: "merged")
        #expect(merged.0.exitCode == 0, "\(merged.0.stderr)")
        let mergedDir = try #require(merged.1)
        #expect(contents(mergedDir) == contents(try #require(referenceDir)))
        #expect(contents(mergedDir).allSatisfy { $0 != nil })

        // Two full runs at once on the bucket: both complete, byte-identical (first writer wins per key).
        async let a = run(["run", "--config", ws.path("s3.yaml")], ws, runs: "a")
        async let b = run(["run", "--config", ws.path("s3.yaml")], ws, runs: "b")
        let (ra, rb) = try await (a, b)
        #expect(ra.0.exitCode == 0 && rb.0.exitCode == 0, "\(ra.0.stderr) \(rb.0.stderr)")
        #expect(contents(try #require(ra.1)) == contents(try #require(rb.1)))
        #expect(contents(try #require(ra.1)) == contents(try #require(referenceDir)))
        // Everything the shards asked was in the bucket already.
        let statuses = try Self.cacheStatuses(ra.1!)
        #expect(statuses["miss"] == nil, "\(statuses)")

        // No credential in any file of any run, nor in what labelforge printed.
        let everything = Self.allText(under: ws.path(""))
        #expect(!everything.contains(SeaweedServer.secretKey))
        for result in [merged.0, ra.0, rb.0] + shards.map(\.0) {
            #expect(!(result.stdout + result.stderr).contains(SeaweedServer.secretKey))
        }

        // The bucket's entries, listed and checked by `labelforge cache`.
        let stats = try await CLI.run(
            ["cache", "stats", "--config", ws.path("s3.yaml"), "--json"], environment: SeaweedServer.credentials)
        let entries = try JSONValue.parse(stats.stdout)["entries"]?.intValue ?? 0
        #expect(stats.exitCode == 0 && entries == stub.chatRequests - 60, "\(stats.stdout) \(stats.stderr)")
        let verify = try await CLI.run(
            ["cache", "verify", "--config", ws.path("s3.yaml")], environment: SeaweedServer.credentials)
        #expect(verify.exitCode == 0 && verify.stdout.contains("entries checked: \(entries), failed verification: 0"))

        // `inspect --row` reads the run's answers from the bucket its config names.
        let inspected = try await CLI.run(
            ["inspect", try #require(ra.1), "--row", "r3", "--json"], environment: SeaweedServer.credentials)
        #expect(inspected.exitCode == 0 && !inspected.stdout.contains("not in this cache"), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("\"response\""), "\(inspected.stdout)")

        // Wrong credentials: a clear error before any request, naming where they came from.
        let (wrong, wrongDir) = try await run(
            ["run", "--config", ws.path("s3.yaml")], ws, runs: "wrong",
            environment: ["AWS_ACCESS_KEY_ID": SeaweedServer.accessKey, "AWS_SECRET_ACCESS_KEY": "wrong-secret-77"])
        #expect(wrong.exitCode != 0)
        #expect(wrong.stderr.contains("refused the credentials from AWS_ACCESS_KEY_ID"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("wrong-secret-77"))
        #expect(wrongDir == nil, "a run that never started left \(wrongDir ?? "")")
    }

    @Test(
        "the S3 server stops mid-run: with a tiered cache the run completes and keeps every answer locally; with an S3 cache rows fail with cache_error and --retry-failed completes them once it is back"
    )
    func serverStopsMidRun() async throws {
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        // 40 rows × 2 requests at 4 in flight, 100 ms each: about 2 s.
        let stub = try await StubEngine.start(delay: .milliseconds(100), answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: 40)
        let endpoint = server.endpoint
        try config(
            ws, "tiered.yaml", baseURL: stub.baseURL,
            cache:
                "{kind: tiered, path: local.sqlite, bucket: \(SeaweedServer.bucket), prefix: tiered, endpoint: \"\(endpoint)\"}"
        )
        try config(
            ws, "s3.yaml", baseURL: stub.baseURL,
            cache: "{kind: s3, bucket: \(SeaweedServer.bucket), prefix: plain, endpoint: \"\(endpoint)\"}",
            maxFailureRatio: 1)
        try config(ws, "local.yaml", baseURL: stub.baseURL, cache: "{path: ref.sqlite}")
        let (reference, referenceDir) = try await run(["run", "--config", ws.path("local.yaml")], ws, runs: "ref")
        #expect(reference.exitCode == 0, "\(reference.stderr)")

        // Tiered: the server stops once a quarter of the 80 requests reached the engine (the
        // engine holds its answers from there until it has, whatever the machine's load); the run
        // completes, warning once.
        var sent = stub.chatRequests
        stub.holdAnswers(after: 20)
        async let tiered = run(["run", "--config", ws.path("tiered.yaml")], ws, runs: "tiered")
        #expect(try await Waiting.until { stub.chatRequests - sent > 20 }, "the tiered run never got going")
        server.stop()
        stub.releaseHeld()
        let (tieredResult, tieredDir) = try await tiered
        #expect(tieredResult.exitCode == 0, "\(tieredResult.stderr)")
        #expect(tieredResult.stderr.contains("the shared cache failed"), "\(tieredResult.stderr)")
        #expect(contents(try #require(tieredDir)) == contents(try #require(referenceDir)))
        // Nothing lost locally: a rerun with the server back is all hits, from the local tier.
        try await server.restart()
        let (rerun, rerunDir) = try await run(["run", "--config", ws.path("tiered.yaml")], ws, runs: "tiered-again")
        #expect(rerun.exitCode == 0, "\(rerun.stderr)")
        let rerunStatuses = try Self.cacheStatuses(try #require(rerunDir))
        #expect(rerunStatuses["miss"] == nil && rerunStatuses["hit"] == 80, "\(rerunStatuses)")

        // S3 only: the server stops mid-run; rows fail with cache_error, the others are recorded.
        sent = stub.chatRequests
        stub.holdAnswers(after: 20)
        async let plain = run(["run", "--config", ws.path("s3.yaml")], ws, runs: "plain")
        #expect(try await Waiting.until { stub.chatRequests - sent > 20 }, "the S3 run never got going")
        server.stop()
        stub.releaseHeld()
        let (plainResult, plainDir) = try await plain
        let dir = try #require(plainDir)
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        #expect(manifest.contains("\"class\":\"cache_error\""), "\(plainResult.stderr)")
        #expect(manifest.contains("did not answer"))
        try await server.restart()
        let retried = try await CLI.run(
            ["run", "--resume", dir, "--retry-failed"], environment: SeaweedServer.credentials)
        #expect(retried.exitCode == 0, "\(retried.stderr)")
        let after = try String(contentsOfFile: dir + "/outputs/sentiment.jsonl", encoding: .utf8)
        #expect(contents(dir) == contents(referenceDir!), "\(retried.stdout) \(after.prefix(600))")
    }
}
