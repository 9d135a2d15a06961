import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import LabelForgeTesting
import Logging
import Testing

@testable import LabelForgeKernel

/// The kernel on its own: a `RunSetup` built in code (no YAML), run by `RunSession` with in-memory
/// engines and cache (no socket, no process), at a fixed time, with a stage defined here (the
/// kernel knows no concrete stage).
@Suite struct RunSessionTests {
    /// 2026-01-02 03:04:05 UTC.
    static let fixedDate = Date(timeIntervalSince1970: 1_767_323_045)

    @Test("a setup built in code runs through in-memory engines: outputs in input order, one request per row")
    func runsInMemory() async throws {
        let kit = try Kit(rows: 5)
        let transport = InMemoryTransport(answer: Kit.shout)
        let report = try await kit.run(engines: InMemoryEngines(["e": transport]), runs: "first")
        #expect(report.status == "completed")
        #expect(report.rows == 5 && report.rowsFailed == 0)
        #expect(transport.requests.count == 5)
        let lines = try kit.outputLines(report)
        #expect(lines.count == 5)
        for (index, line) in lines.enumerated() {
            let json = try JSONValue.parse(line)
            #expect(json["row_id"]?.stringValue == "r\(index)")
            #expect(json["shout"]?.stringValue == "TEXT NUMBER \(index)")
        }
        let manifest = try Kit.records(report)
        guard case .run(let run) = manifest.first else {
            Issue.record("no run line first")
            return
        }
        #expect(run.createdAt == "2026-01-02T03:04:05.000Z")
        #expect(run.engines.map(\.name) == ["e"])
        let rows = manifest.compactMap { record -> RowRecord? in
            if case .row(let row) = record { return row }
            return nil
        }
        #expect(rows.map(\.cache) == Array(repeating: "miss", count: 5))
        #expect(rows.allSatisfy { $0.latencyMs == 0 }, "the fixed clock stands still")
    }

    @Test("a second run on the same cache sends nothing, and two cache-served runs write the same manifest bytes")
    func cacheServedRunsAreIdentical() async throws {
        let kit = try Kit(rows: 4)
        let first = try await kit.run(engines: InMemoryEngines(["e": InMemoryTransport(answer: Kit.shout)]), runs: "a")
        let quiet = InMemoryTransport(answer: Kit.shout)
        let second = try await kit.run(engines: InMemoryEngines(["e": quiet]), runs: "b")
        let third = try await kit.run(engines: InMemoryEngines(["e": quiet]), runs: "c")
        #expect(quiet.requests.isEmpty)
        #expect(try kit.outputLines(first) == kit.outputLines(second))
        let secondManifest = try String(contentsOfFile: second.runDirectory.manifestPath, encoding: .utf8)
        let thirdManifest = try String(contentsOfFile: third.runDirectory.manifestPath, encoding: .utf8)
        #expect(secondManifest.contains("\"cache\":\"hit\""))
        #expect(secondManifest == thirdManifest)
    }

    @Test("a request that fails fails its row only: its line records the error, the other rows' outputs are written")
    func failingRowKeepsOthers() async throws {
        let kit = try Kit(rows: 6)
        let transport = InMemoryTransport { request in
            let text = Kit.userText(request)
            if text.hasSuffix(" 3") { throw LabelForgeError(.engineHTTP, "bad request for row 3", httpStatus: 400) }
            return try Kit.shout(request)
        }
        let report = try await kit.run(engines: InMemoryEngines(["e": transport]), runs: "fail")
        #expect(report.status == "completed")
        #expect(report.rowsFailed == 1)
        let lines = try kit.outputLines(report).map { try JSONValue.parse($0) }
        #expect(lines.map { $0["row_id"]?.stringValue } == ["r0", "r1", "r2", "r3", "r4", "r5"])
        #expect(lines.map { $0["shout"] == nil } == [false, false, false, true, false, false])
        #expect(lines[3]["error"]?["class"]?.stringValue == "engine_http_error")
        let failed = try Kit.records(report).compactMap { record -> RowRecord? in
            if case .row(let row) = record, row.error != nil { return row }
            return nil
        }
        #expect(failed.map(\.rowID) == ["r3"])
        #expect(failed.first?.error?.errorClass == "engine_http_error")
    }

    @Test("an engine that cannot start is recorded: the run line names no engine, the summary says failed")
    func startFailureIsRecorded() async throws {
        let kit = try Kit(rows: 2)
        let setup = try kit.setup(runs: "nostart")
        let error = await #expect(throws: LabelForgeError.self) {
            _ = try await kit.session(engines: InMemoryEngines([:])).run(setup, cache: kit.cache)
        }
        #expect(error?.message.contains("no in-memory transport") == true)
        #expect(error?.message.contains(setup.directory.manifestPath) == true)
        let records = try ManifestReader(path: setup.directory.manifestPath).map { $0 }
        guard case .run(let run) = records.first, case .summary(let summary) = records.last else {
            Issue.record("expected a run line and a summary")
            return
        }
        #expect(run.engines.isEmpty)
        #expect(summary.status == "failed")
    }

    @Test("recorded engines: answers come from the cache only, a miss fails its row without a request")
    func recordedEnginesReadTheCacheOnly() async throws {
        let kit = try Kit(rows: 3)
        _ = try await kit.run(engines: InMemoryEngines(["e": InMemoryTransport(answer: Kit.shout)]), runs: "fill")
        var setup = try kit.setup(runs: "offline")
        setup.engines = .recorded([])
        let report = try await kit.session(engines: InMemoryEngines([:])).run(setup, cache: kit.cache)
        #expect(report.rowsFailed == 0 && report.engineRequests == 0)

        let more = try Kit(rows: 4, cache: kit.cache, directory: kit.directory + "/more")
        var missing = try more.setup(runs: "offline")
        missing.engines = .recorded([])
        let partial = try await more.session(engines: InMemoryEngines([:])).run(missing, cache: more.cache)
        #expect(partial.rowsFailed == 1, "the fourth row's answer is not in the cache")
    }
}

/// A stage defined outside the kernel: one chat request per row, its answer upper-cased.
struct ShoutStage: RowWiseStage {
    struct Options: ParsedStageOptions {
        static let keys: [String] = []
        static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> Options { Options() }
        var resolvedJSON: [String: JSONValue] { [:] }
    }

    let config: RunConfig.Stage
    var version: Int { 1 }
    var outputFields: [String] { ["shout"] }
    var optionReferences: [String] { ["text"] }
    var engineUses: [EngineUse] { [EngineUse(engine: config.engine, task: .chat)] }

    func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        let engine = try context.endpoint(.chat)
        let body: JSONValue = [
            "model": .string(engine.modelID),
            "messages": [["role": "user", "content": .string(row.fields["text"]?.stringValue ?? "")]],
            "seed": .int(Int64(context.seed(config.id, row: row.rowID, sample: sample))),
        ]
        do {
            let answer = try await context.send(
                PreparedRequest(EngineRequest(kind: .chat, body: body), on: engine), on: engine)
            let content = answer.response["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue ?? ""
            return StageResult(output: ["shout": .string(content)])
        } catch {
            return .failed(StageFailure(error))
        }
    }
}

/// A config, plan and directory made in code for `ShoutStage`, over a JSONL file of `rows` texts.
struct Kit {
    let directory: String
    let plan: RunPlan
    let cache: InMemoryCache

    init(rows: Int, cache: InMemoryCache = InMemoryCache(), directory: String? = nil) throws {
        let directory =
            directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent(
                "kernel-\(UUID().uuidString)"
            ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let data = (0..<rows).map { #"{"id": "r\#($0)", "text": "text number \#($0)"}"# }.joined(separator: "\n")
        try (data + "\n").write(toFile: directory + "/data.jsonl", atomically: true, encoding: .utf8)
        let catalog = StageCatalog(types: [
            StageType("shout", options: ShoutStage.Options.self) { stage, _ in ShoutStage(config: stage) }
        ])
        let config = RunConfig(
            file: directory + "/config", name: "kernel", seed: 7, determinism: .standard, maxFailureRatio: 0.5,
            limit: nil,
            dataset: RunConfig.Dataset(
                path: directory + "/data.jsonl", format: .jsonl, idField: "id", imageFields: [],
                imageLimits: ImageFile.Limits()),
            engines: [
                RunConfig.Engine(
                    name: "e", kind: .openAI, dialect: "vllm", model: RunConfig.Model(id: "memory-model"),
                    baseURLs: ["memory://e"], slots: 1, contextPerSlot: 2048, maxInFlight: 4, timeoutSeconds: 5,
                    maxRetries: 0)
            ],
            promptPack: nil, cachePath: nil, matchEngineVersion: false,
            stages: [
                RunConfig.Stage(
                    id: "shout", type: "shout", engine: "e", template: "shout",
                    sampling: RunConfig.Sampling(temperature: 0, topP: nil, maxTokens: 16, topLogprobs: nil),
                    goldField: nil, maxValidationRetries: 0, options: ShoutStage.Options(), engineTask: "chat")
            ],
            catalog: catalog)
        self.directory = directory
        self.cache = cache
        self.plan = try RunPlan.prepare(config: config, limit: nil) {
            ResolvedModel(engine: $0.name, id: $0.model.id, revision: "rev-1")
        }
    }

    /// A new run's setup, its directory under `runs`.
    func setup(runs: String) throws -> RunSetup {
        let directory = try RunDirectory.create(
            runsDir: self.directory + "/" + runs, planHash: plan.planHash,
            resolvedConfig: ResolvedYAML.string(plan.resolved), now: RunSessionTests.fixedDate)
        return RunSetup(plan: plan, directory: directory, createdDirectory: true, runLine: RunSetup.RunLine())
    }

    func session(engines: any EngineProvider) -> RunSession {
        RunSession(
            logger: Logger(label: "kernel-test"), engines: engines,
            environment: .fixed(at: RunSessionTests.fixedDate))
    }

    func run(engines: any EngineProvider, runs: String) async throws -> RunReport {
        try await session(engines: engines).run(try setup(runs: runs), cache: cache)
    }

    func outputLines(_ report: RunReport) throws -> [String] {
        try String(contentsOfFile: report.runDirectory.outputPath(stage: "shout"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
    }

    static func records(_ report: RunReport) throws -> [ManifestRecord] {
        try ManifestReader(path: report.runDirectory.manifestPath).map { $0 }
    }

    static func userText(_ request: EngineRequest) -> String {
        request.body["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
    }

    /// The chat answer: the user's text upper-cased.
    @Sendable static func shout(_ request: EngineRequest) throws -> JSONValue {
        InMemoryTransport.chatCompletion(content: userText(request).uppercased())
    }
}
