import Foundation
import LabelForgeCore
import LabelForgeTesting
import Subprocess
import SystemPackage
import Testing

/// Crash safety: the CLI killed with SIGKILL at arbitrary moments, then resumed, must end with
/// exactly the outputs of an uninterrupted run — no row lost, none duplicated.
@Suite(.serialized) struct ResumeTests {
    static let rows = 40

    func workspace(stub: StubEngine) throws -> (TestWorkspace, String) {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: Self.rows)
        try ws.writePromptPack()
        let config = try ws.write(
            "config.yaml",
            """
            run: {seed: 11}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: m, revision: r}, max_in_flight: 4}
            prompts: {pack: \(ws.path("prompts"))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - id: attributes
                type: tag
                template: tag
                attributes: [{name: topic, type: enum, values: [quality, price, shipping]}, {name: flag, type: boolean}]
            """)
        return (ws, config)
    }

    static let files = ["outputs/sentiment.jsonl", "outputs/attributes.jsonl", "dataset.jsonl"]

    func outputs(_ dir: String) throws -> [Data] {
        try Self.files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
    }

    /// Starts the CLI and SIGKILLs it once the stub has answered `requests` requests and holds the
    /// next ones back: a moment in the run's own progress, whatever the machine's load, with the run
    /// certainly unfinished.
    func runAndKill(_ arguments: [String], afterRequests requests: Int, to stub: StubEngine) async throws {
        let before = stub.chatRequests
        stub.holdAnswers(after: requests)
        _ = try await Subprocess.run(
            .path(FilePath(LabelForgeBinary.path())), arguments: Arguments(arguments), input: .none, output: .discarded,
            error: .discarded
        ) { execution in
            let reached = try await Waiting.until(every: .milliseconds(1)) { stub.chatRequests - before > requests }
            #expect(reached, "the run never sent request \(requests + 1): the kill would come at no chosen moment")
            try? execution.send(signal: .kill)
        }
        stub.releaseHeld()
    }

    /// Runs `config` once per moment (a count of requests the stub received), SIGKILLs it then,
    /// resumes it when unfinished, and checks that the trial's `files` equal `expected` and that its
    /// manifest ends completed with one run line; `check` sees each trial's manifest lines. Returns
    /// how many trials were killed mid-run.
    func killAndResumeTrials(
        config: String, in ws: TestWorkspace, stub: StubEngine, atRequests moments: [Int], files: [String],
        expected: [Data], check: (_ trial: Int, _ dir: String, _ lines: [JSONValue]) -> Void
    ) async throws -> Int {
        var resumedTrials = 0
        for (trial, requests) in moments.enumerated() {
            let runs = ws.path("trial\(trial)")
            let cache = ws.path("cache\(trial).sqlite")
            try await runAndKill(
                ["run", "--config", config, "--runs-dir", runs, "--cache-path", cache], afterRequests: requests,
                to: stub)
            // A hidden `.…partial` directory is a run killed while its directory was being staged.
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).filter {
                !$0.hasPrefix(".")
            }
            guard let name = names.first else {
                // Killed before the run directory existed: nothing to resume, start again.
                let again = try await CLI.run(["run", "--config", config, "--runs-dir", runs, "--cache-path", cache])
                #expect(again.exitCode == 0)
                continue
            }
            let dir = runs + "/" + name
            let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
            if !manifest.contains(#""status":"completed""#) {
                let resumed = try await CLI.run(["run", "--resume", dir, "--cache-path", cache])
                #expect(resumed.exitCode == 0, "trial \(trial): \(resumed.stderr)")
                resumedTrials += 1
            }
            let outputs = try files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
            #expect(outputs == expected, "trial \(trial) (killed after \(requests) requests): outputs differ")
            let lines = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
                .map { try JSONValue.parse(String($0)) }
            #expect(lines.filter { $0["type"] == "run" }.count == 1)
            #expect(lines.last?["status"] == "completed")
            check(trial, dir, lines)
        }
        return resumedTrials
    }

    /// Runs `config` uninterrupted into `ref/` with its own cache; returns the run directory.
    func referenceRun(_ config: String, in ws: TestWorkspace) async throws -> String {
        let reference = try await CLI.run(
            ["run", "--config", config, "--runs-dir", ws.path("ref"), "--cache-path", ws.path("ref-cache.sqlite")])
        #expect(reference.exitCode == 0, "\(reference.stderr)")
        return try RunFiles.onlyRun(in: ws.path("ref"))
    }

    /// `type: row` lines as `row_id/stage` pairs.
    static func rowPairs(_ lines: [JSONValue]) -> [String] {
        lines.filter { $0["type"] == "row" }.map { "\($0["row_id"]!.textForm)/\($0["stage"]!.textForm)" }
    }

    @Test("SIGKILL at 5 moments, then --resume: outputs identical, no row lost or duplicated")
    func killAndResume() async throws {
        // 10 ms a request, so requests are still in flight when the kill lands.
        let stub = try await StubEngine.start(delay: .milliseconds(10), answer: StubEngine.followConstraintBySeed)
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)

        let referenceDir = try await referenceRun(config, in: ws)
        let expected = try outputs(referenceDir)

        // The run sends 80 requests (40 rows, 2 stages): kill it near its start, middle and end.
        let resumedTrials = try await killAndResumeTrials(
            config: config, in: ws, stub: stub, atRequests: [2, 20, 40, 60, 76], files: Self.files, expected: expected
        ) { trial, _, lines in
            let pairs = Self.rowPairs(lines)
            #expect(pairs.count == Self.rows * 2, "trial \(trial): \(pairs.count) row lines")
            #expect(Set(pairs).count == pairs.count, "trial \(trial): duplicated row lines")
        }
        // Every kill moment lies before the run's last request: every trial was interrupted mid-run.
        #expect(resumedTrials == 5, "only \(resumedTrials) of 5 trials were killed mid-run")
    }

    /// Free text repeats per review number modulo 7, so the exact dedup has duplicates to remove.
    @Sendable static func repeating(_ body: JSONValue) -> StubAnswer {
        guard body["structured_outputs"] == nil, body["response_format"] == nil else {
            return StubEngine.followConstraintBySeed(body)
        }
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        let number = Int(prompt.components(separatedBy: "number ").dropFirst().first?.prefix { $0.isNumber } ?? "") ?? 0
        return .content("Reply \(number % 7), sample \((body["seed"]?.intValue ?? 0) % 2)")
    }

    /// A pipeline with a dataset-wide stage in the middle: classify → generate (n: 2) → exact
    /// dedup → classify; returns the workspace, the config and the files to compare.
    func barrierWorkspace(stub: StubEngine) throws -> (TestWorkspace, String, [String]) {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: Self.rows)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        try ws.write("prompts/judge.mustache", "Is this reply good? {{reply.text}}\n")
        let config = try ws.write(
            "config.yaml",
            """
            run: {seed: 11}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: m, revision: r}, max_in_flight: 4}
            prompts: {pack: \(ws.path("prompts"))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: reply, type: generate, template: reply, n: 2}
              - {id: unique, type: dedup, field: reply.text}
              - {id: judge, type: classify, template: judge, labels: [good, bad]}
            """)
        let files = [
            "outputs/sentiment.jsonl", "outputs/reply.jsonl", "outputs/unique.jsonl", "outputs/unique.rejected.jsonl",
            "outputs/judge.jsonl", "dataset.jsonl",
        ]
        return (ws, config, files)
    }

    @Test("SIGKILL at 5 moments of a pipeline with a barrier in the middle, then --resume: outputs identical")
    func killAndResumeAcrossBarrier() async throws {
        let stub = try await StubEngine.start(delay: .milliseconds(20), answer: Self.repeating)
        defer { Task { await stub.stop() } }
        let (ws, config, files) = try barrierWorkspace(stub: stub)

        let referenceDir = try await referenceRun(config, in: ws)
        let expected = try files.map { try Data(contentsOf: URL(fileURLWithPath: referenceDir + "/" + $0)) }
        let kept = try String(contentsOfFile: referenceDir + "/outputs/unique.jsonl", encoding: .utf8).split(
            separator: "\n"
        ).count
        #expect(kept > 0 && kept <= 14, "at most 7 × 2 distinct replies survive the dedup, not \(kept)")

        // 40 sentiment and 80 reply requests come before the barrier, one judge request per kept reply
        // after it: two kills before the barrier's input is complete, one as it completes, two after.
        let resumedTrials = try await killAndResumeTrials(
            config: config, in: ws, stub: stub, atRequests: [10, 60, 120, 120 + kept / 2, 120 + kept - 1],
            files: files, expected: expected
        ) { trial, dir, lines in
            let pairs = Self.rowPairs(lines)
            // sentiment 40 + reply 80 + unique 80 + judge on the kept replies.
            #expect(pairs.count == Self.rows + 4 * Self.rows + kept, "trial \(trial): \(pairs.count) row lines")
            #expect(Set(pairs).count == pairs.count, "trial \(trial): duplicated row lines")
            #expect(lines.filter { $0["type"] == "barrier" }.count == 1, "trial \(trial): one barrier line")
            #expect(!FileManager.default.fileExists(atPath: dir + "/.state"))
        }
        #expect(resumedTrials == 5, "only \(resumedTrials) of 5 trials were killed mid-run")
    }

    @Test(
        "SIGKILL at each crash point (barrier input committed, barrier outputs written, barrier committed, before and after the summary), then --resume: outputs identical",
        arguments: [
            "barrier-input-committed", "barrier-outputs-written", "barrier-committed", "before-summary",
            "after-summary",
        ])
    func crashPoints(_ point: String) async throws {
        let stub = try await StubEngine.start(answer: Self.repeating)
        defer { Task { await stub.stop() } }
        let (ws, config, files) = try barrierWorkspace(stub: stub)
        let referenceDir = try await referenceRun(config, in: ws)

        let killed = try await CLI.run(
            ["run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite")],
            environment: ["LABELFORGE_CRASH_AT": point])
        #expect(killed.exitCode == 128 + 9, "the run did not die at \(point): \(killed.stderr)")
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        if manifest.contains(#""status":"completed""#) {
            // Killed after the commit point: the run is complete; `labelforge report` rebuilds the HTML.
            #expect(point == "after-summary")
            let report = try await CLI.run(["report", dir])
            #expect(report.exitCode == 0, "\(report.stderr)")
        } else {
            let resumed = try await CLI.run(["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")])
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
        }
        for file in files {
            #expect(
                FileManager.default.contents(atPath: dir + "/" + file)
                    == FileManager.default.contents(atPath: referenceDir + "/" + file), "\(point): \(file) differs")
        }
        let lines = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }
        let pairs = Self.rowPairs(lines)
        #expect(Set(pairs).count == pairs.count, "\(point): duplicated row lines")
        #expect(lines.filter { $0["type"] == "barrier" }.count == 1, "\(point): one barrier line")
        #expect(FileManager.default.fileExists(atPath: dir + "/report.html"))
    }

    @Test("a torn last manifest line is repaired, not rejected")
    func tornLine() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.followConstraintBySeed)
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let first = try await CLI.run([
            "run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite"),
        ])
        #expect(first.exitCode == 0)
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        let expected = try outputs(dir)
        // Cut the manifest to its first 30 lines plus half of the 31st, as a kill mid-write would.
        let lines = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        let torn = lines.prefix(30).joined(separator: "\n") + "\n" + lines[30].prefix(lines[30].count / 2)
        try torn.write(toFile: dir + "/manifest.jsonl", atomically: true, encoding: .utf8)

        let resumed = try await CLI.run(["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")])
        #expect(resumed.exitCode == 0, "\(resumed.stderr)")
        #expect(try outputs(dir) == expected)
        let repaired = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(repaired.allSatisfy { (try? JSONValue.parse(String($0))) != nil })
        #expect(repaired.filter { $0.contains(#""type":"row""#) }.count == Self.rows * 2)
    }

    @Test("resuming refuses a run whose dataset changed, naming the file")
    func changedDataset() async throws {
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        _ = try await CLI.run([
            "run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite"),
        ])
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        try (manifest.prefix(5).joined(separator: "\n") + "\n").write(
            toFile: dir + "/manifest.jsonl", atomically: true, encoding: .utf8)
        try ws.writeReviews(count: Self.rows + 1)
        let resumed = try await CLI.run(["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")])
        #expect(resumed.exitCode == 64)
        #expect(resumed.stderr.contains("reviews.jsonl changed"))
    }

    @Test("SIGINT stops cleanly: exit 130, the manifest flushed, and the message says how to resume")
    func interrupt() async throws {
        let stub = try await StubEngine.start(delay: .milliseconds(100), answer: StubEngine.followConstraintBySeed)
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        stub.holdAnswers(after: 8)
        let result = try await Subprocess.run(
            .path(FilePath(LabelForgeBinary.path())),
            arguments: ["run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite")],
            input: .none, output: .discarded, error: .string(limit: 1 << 16)
        ) { execution in
            // Mid-run: the first 8 of the 80 requests are answered, the rest held until the signal.
            try await Waiting.until { stub.chatRequests > 8 }
            try? execution.send(signal: .interrupt)
        }
        stub.releaseHeld()
        #expect(result.terminationStatus == .exited(130))
        #expect(result.standardError.contains("labelforge run --resume"))
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        #expect(manifest.contains(#""status":"interrupted""#))
        let resumed = try await CLI.run(["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")])
        #expect(resumed.exitCode == 0)
    }

    @Test("running the same plan again while an unfinished run exists says so and how to resume")
    func unfinishedWarning() async throws {
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let (ws, config) = try workspace(stub: stub)
        let arguments = ["run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite")]
        _ = try await CLI.run(arguments)
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        try (manifest.prefix(10).joined(separator: "\n") + "\n").write(
            toFile: dir + "/manifest.jsonl", atomically: true, encoding: .utf8)
        let again = try await CLI.run(arguments)
        #expect(again.exitCode == 0)
        #expect(again.stderr.contains("an unfinished run of this plan exists in \(dir)"))
        #expect(again.stderr.contains("labelforge run --resume \(dir)"))
    }
}
