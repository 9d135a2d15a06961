import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// Faults on the wire (`StubEngine` with `StubFaults`, in vLLM's wire format): the run completes,
/// every fault is retried within its budget, rows whose retries run out are recorded with their
/// error class and run again by `--resume … --retry-failed`, and every other row's output equals
/// a fault-free run's byte for byte.
@Suite(.serialized) struct FaultTests {
    static let files = [
        "outputs/sentiment.jsonl", "outputs/reply.jsonl", "outputs/unique.jsonl", "outputs/unique.rejected.jsonl",
        "outputs/judge.jsonl", "dataset.jsonl",
    ]
    /// The stages before the barrier, whose lines belong to one row each whatever other rows do.
    static let rowWiseFiles = ["outputs/sentiment.jsonl", "outputs/reply.jsonl"]

    /// Constrained answers follow the constraint by the prompt (a validation retry's new seed
    /// gets the same answer); free text repeats per review number modulo 5, so the dedup has
    /// duplicates to remove.
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        if body["structured_outputs"] != nil || body["response_format"] != nil {
            return StubEngine.followConstraintByContent(body)
        }
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        let number = Int(prompt.components(separatedBy: "number ").dropFirst().first?.prefix { $0.isNumber } ?? "") ?? 0
        return .content("Reply \(number % 5), sample \((body["seed"]?.intValue ?? 0) % 2)")
    }

    /// A workspace with `rows` reviews and a pipeline with fan-out and a barrier:
    /// classify → generate (n: 2) → exact dedup → classify.
    func workspace(rows: Int) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        try ws.write("prompts/judge.mustache", "Is this reply good? {{reply.text}}\n")
        return ws
    }

    /// The pipeline's config; `timeout` is the engine's `timeout_s` (the faulty runs' `slow`
    /// answers come later than it). An answer that ignores the constraint is an answer: it is
    /// cached, and `--retry-failed` reuses it, so a request whose every validation attempt drew
    /// `ignoresSchema` (2.5% each) would stay failed. Five attempts make that about 1 in 10^8 per
    /// request (three made it 1 in 64,000, about one run in ten here).
    func config(_ ws: TestWorkspace, name: String, baseURL: String, timeout: Int = 60) throws -> String {
        try ws.write(
            name,
            """
            run: {seed: 5}
            dataset: {path: data/reviews.jsonl, id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: m, revision: r}, max_in_flight: 32, timeout_s: \(timeout), max_retries: 3}
            prompts: {pack: prompts}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], max_validation_retries: 4}
              - {id: reply, type: generate, template: reply, n: 2}
              - {id: unique, type: dedup, field: reply.text}
              - {id: judge, type: classify, template: judge, labels: [good, bad], max_validation_retries: 4}
            """)
    }

    func run(_ config: String, _ ws: TestWorkspace, runs: String, cache: String) async throws -> (CLIResult, String) {
        let result = try await CLI.run(
            ["run", "--config", config, "--runs-dir", ws.path(runs), "--cache-path", ws.path(cache)])
        let name = try FileManager.default.contentsOfDirectory(atPath: ws.path(runs)).first { !$0.hasPrefix(".") }
        return (result, ws.path(runs) + "/" + (try #require(name)))
    }

    /// Output lines of `files` by row ID (a fanned-out row's lines together, in order).
    static func lines(in dir: String, files: [String]) throws -> [String: [String]] {
        var byRow: [String: [String]] = [:]
        for file in files {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let row = try JSONValue.parse(String(line))
                let id = (row["parent_row_id"] ?? row["row_id"])?.textForm ?? ""
                byRow[id, default: []].append(file + ": " + line)
            }
        }
        return byRow
    }

    /// Input rows with a failed row-wise stage, the failures that are not a consequence of
    /// another (`upstream_failed`), and the error classes of all failures.
    static func failures(in dir: String) throws -> (rows: Set<String>, root: Int, classes: [String: Int]) {
        var rows: Set<String> = []
        var root = 0
        var classes: [String: Int] = [:]
        for line in try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n") {
            let record = try JSONValue.parse(String(line))
            guard record["type"] == "row", let error = record["error"], !error.isNull else { continue }
            if ["sentiment", "reply"].contains(record["stage"]?.stringValue ?? "") {
                rows.insert((record["parent_row_id"] ?? record["row_id"])?.textForm ?? "")
            }
            let errorClass = error["class"]?.textForm ?? "?"
            if errorClass != "upstream_failed" { root += 1 }
            classes[errorClass, default: 0] += 1
        }
        return (rows, root, classes)
    }

    func contents(_ dir: String) throws -> [Data] {
        try Self.files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
    }

    @Test(
        "20% faults of 8 kinds on 2,000 rows with a barrier: the run completes, every fault is retried (Retry-After honoured), rows out of retries resume with --retry-failed, all other rows byte-identical"
    )
    func twentyPercentFaults() async throws {
        let rows = 2000
        let ws = try workspace(rows: rows)

        let clean = try await StubEngine.start(answer: Self.answer)
        let cleanStart = ContinuousClock.now
        let (reference, referenceDir) = try await run(
            try config(ws, name: "clean.yaml", baseURL: clean.baseURL), ws, runs: "ref", cache: "ref.sqlite")
        let cleanSeconds = (ContinuousClock.now - cleanStart) / .seconds(1)
        let cleanRequests = clean.chatRequests
        await clean.stop()
        #expect(reference.exitCode == 0, "\(reference.stderr)")

        let faultyStart = ContinuousClock.now
        // A timeout no answer comes near on a loaded machine (the stub answers in microseconds), and
        // slow answers that come long after it: which requests time out does not depend on load.
        let faults = StubFaults(rate: 0.2, seed: 7, slowDelay: .seconds(30), retryAfterSeconds: 1)
        let faulty = try await StubEngine.start(faults: faults, answer: Self.answer)
        let config = try config(ws, name: "faulty.yaml", baseURL: faulty.baseURL, timeout: 10)
        let (result, dir) = try await run(config, ws, runs: "runs", cache: "c.sqlite")
        let report = faulty.faultReport
        let faultySeconds = (ContinuousClock.now - faultyStart) / .seconds(1)
        let faultyRequests = faulty.chatRequests
        await faulty.stop()
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("completed"), "\(result.stdout)")

        // Every kind was injected, at about the configured rate.
        for kind in StubFault.allCases {
            #expect(report.injected[kind, default: 0] > 0, "no \(kind.rawValue) injected")
        }
        #expect(report.totalInjected > rows / 2, "\(report.injected)")
        #expect(report.retryAfterViolations == 0, "a 429's Retry-After was not honoured")
        #expect(
            report.resent >= report.totalInjected - report.injected[.ignoresSchema, default: 0] - report.neverRetried)

        // Rows whose retries ran out are recorded with their error class; every other row's
        // row-wise outputs equal the fault-free run's.
        let (failedRows, rootFailures, classes) = try Self.failures(in: dir)
        // Each failure is a request whose retries ran out, or an answer that kept ignoring the
        // schema through its validation retries.
        let failedRequests = report.neverRetried
        #expect(
            rootFailures <= failedRequests + report.injected[.ignoresSchema, default: 0],
            "\(rootFailures) failures, \(failedRequests) requests out of retries: \(classes)")
        let known: Set = ["engine_http_error", "timeout", "engine_unavailable", "invalid_response", "upstream_failed"]
        #expect(Set(classes.keys).isSubset(of: known), "\(classes)")
        let expected = try Self.lines(in: referenceDir, files: Self.rowWiseFiles)
        let got = try Self.lines(in: dir, files: Self.rowWiseFiles)
        var identical = 0
        for (row, lines) in expected where !failedRows.contains(row) {
            #expect(got[row] == lines, "row \(row) differs from the fault-free run")
            if got[row] == lines { identical += 1 }
        }
        #expect(identical == rows - failedRows.count)

        // Retrying the failed rows on a healthy server ends byte-identical to the fault-free run.
        let healthy = try await StubEngine.start(port: faulty.port, answer: Self.answer)
        let retried = try await CLI.run(["run", "--resume", dir, "--retry-failed", "--cache-path", ws.path("c.sqlite")])
        let sentOnRetry = healthy.chatRequests
        await healthy.stop()
        #expect(retried.exitCode == 0, "\(retried.stderr)")
        #expect(try contents(dir) == contents(referenceDir))
        #expect(try Self.failures(in: dir).classes.isEmpty)
        // Only the failed rows' requests went to the engine again; the rest came from the cache.
        #expect(sentOnRetry <= failedRequests * 8, "\(sentOnRetry) requests on retry for \(failedRows.count) rows")
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        let pairs = manifest.split(separator: "\n").map { try! JSONValue.parse(String($0)) }
            .filter { $0["type"] == "row" }.map { "\($0["row_id"]!.textForm)/\($0["stage"]!.textForm)" }
        #expect(Set(pairs).count == pairs.count, "a (row, stage) is recorded twice")
        let identicalAfterRetry = try contents(dir) == contents(referenceDir)

        // bench/faults.sh prints these.
        if let path = ProcessInfo.processInfo.environment["LABELFORGE_FAULT_FIGURES"] {
            let figures: JSONValue = [
                "rows": .int(Int64(rows)), "fault_rate": .double(faults.rate),
                "injected": .object(
                    Dictionary(
                        uniqueKeysWithValues: report.injected.map { ($0.key.rawValue, JSONValue.int(Int64($0.value))) })
                ),
                "injected_total": .int(Int64(report.totalInjected)), "requests_resent": .int(Int64(report.resent)),
                "retry_after_violations": .int(Int64(report.retryAfterViolations)),
                "requests_out_of_retries": .int(Int64(report.neverRetried)),
                "rows_failed": .int(Int64(failedRows.count)),
                "failures_by_class": .object(classes.mapValues { .int(Int64($0)) }),
                "rows_identical": .int(Int64(identical)), "identical_after_retry_failed": .bool(identicalAfterRetry),
                "requests_on_retry_failed": .int(Int64(sentOnRetry)),
                "clean_run": ["seconds": .double(cleanSeconds), "requests": .int(Int64(cleanRequests))],
                "faulty_run": ["seconds": .double(faultySeconds), "requests": .int(Int64(faultyRequests))],
            ]
            try CanonicalJSON.data(figures).write(to: URL(fileURLWithPath: path))
        }

        let again = try await CLI.run(["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")])
        #expect(again.exitCode == 64 && again.stderr.contains("--retry-failed"), "\(again.stderr)")
    }

    @Test("the server stops mid-run and comes back: the run completes and, after --retry-failed, equals a clean run")
    func serverRestart() async throws {
        let rows = 300
        let ws = try workspace(rows: rows)
        let clean = try await StubEngine.start(answer: Self.answer)
        let (reference, referenceDir) = try await run(
            try config(ws, name: "clean.yaml", baseURL: clean.baseURL), ws, runs: "ref", cache: "ref.sqlite")
        await clean.stop()
        #expect(reference.exitCode == 0, "\(reference.stderr)")

        let stub = try await StubEngine.start(delay: .milliseconds(5), answer: Self.answer)
        let config = try config(ws, name: "restart.yaml", baseURL: stub.baseURL)
        async let outcome = run(config, ws, runs: "runs", cache: "c.sqlite")
        let midRun = try await Waiting.until(timeout: .seconds(300)) { stub.chatRequests >= 200 }
        #expect(midRun, "the run never reached 200 requests: \(stub.chatRequests)")
        try await stub.restart(after: .seconds(1))
        let (result, dir) = try await outcome
        await stub.stop()
        #expect(result.exitCode == 0, "\(result.stderr)")
        if try !Self.failures(in: dir).classes.isEmpty {
            let healthy = try await StubEngine.start(port: stub.port, answer: Self.answer)
            let retried = try await CLI.run([
                "run", "--resume", dir, "--retry-failed", "--cache-path", ws.path("c.sqlite"),
            ])
            await healthy.stop()
            #expect(retried.exitCode == 0, "\(retried.stderr)")
        }
        #expect(try contents(dir) == contents(referenceDir))
    }
}
