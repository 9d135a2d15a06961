import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeTesting
import Synchronization
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// Values appended from any thread (a progress callback), read once the run is over.
final class Collected<Item: Sendable>: Sendable {
    private let stored = Mutex<[Item]>([])
    func append(_ item: Item) { stored.withLock { $0.append(item) } }
    var items: [Item] { stored.withLock { $0 } }
}

@Suite struct MineStageTests {
    static let pairs = [
        ("how do I reset my router", "Hold the reset button for ten seconds."),
        ("battery drains fast", "Lower the screen brightness to save battery."),
        ("how do I reset my router", "Unplug the router and plug it back in."),
        ("screen is cracked", "Cracked screens are covered by the warranty."),
        ("shipping takes long", "Standard shipping takes five to seven days."),
        ("refund policy", "Refunds are issued within 14 days."),
        ("does it come in blue", "The case is available in blue and red."),
        ("warranty length", "The warranty lasts two years."),
    ]

    static func config(_ ws: TestWorkspace, baseURL: String, format: String = "triplet") throws -> String {
        let lines = pairs.enumerated().map { i, pair in
            CanonicalJSON.string(["id": .string("q\(i)"), "query": .string(pair.0), "passage": .string(pair.1)])
        }
        try ws.write("data/pairs.jsonl", lines.joined(separator: "\n") + "\n")
        try ws.write(
            "data/extra.jsonl",
            #"{"text":"Our store opens at nine."}"# + "\n" + #"{"text":"Gift cards never expire."}"# + "\n")
        try ws.writePromptPack()
        return try ws.write(
            "mine.yaml",
            """
            run: {name: mine-test, seed: 9}
            dataset: {path: \(ws.path("data/pairs.jsonl")), id_field: id}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - id: mined
                type: mine_hard_negatives
                query: query
                positive: passage
                corpus: {path: \(ws.path("data/extra.jsonl")), field: text}
                query_prefix: "query: "
                num_negatives: 3
                range_max: 6
                output_format: \(format)
            """)
    }

    @Test("mine_hard_negatives: every positive of a query excluded, negatives best first, a training file and stats")
    func mines() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        let dir = report.runDirectory
        let rows = try StageGraphTests.lines(dir.outputPath(stage: "mined"))
        #expect(rows.count == Self.pairs.count)
        let positivesOf = Dictionary(grouping: Self.pairs, by: \.0).mapValues { Set($0.map(\.1)) }
        for (row, pair) in zip(rows, Self.pairs) {
            let negatives = row["negatives"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let scores = row["negative_scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(negatives.count == 3 && scores.count == 3)
            // The repeated query's two positives are both excluded, for both of its rows.
            #expect(positivesOf[pair.0]!.isDisjoint(with: negatives))
            #expect(scores == scores.sorted(by: >))
            // Scores are cosines of the stub's vectors (the query with its prefix).
            let q = StubEngine.embedding(of: "query: " + pair.0)
            for (negative, score) in zip(negatives, scores) {
                let n = StubEngine.embedding(of: negative)
                let cosine = zip(q, n).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(abs(cosine - score) < 1e-5)
            }
        }
        // Each distinct text embedded once: 7 queries, 8 passages + 2 corpus lines.
        #expect(stub.embeddingRequests.flatMap { $0 }.count == 7 + 10)
        let triplets = try StageGraphTests.lines(dir.outputsPath + "/mined.triplet.jsonl")
        #expect(triplets.count == 3 * Self.pairs.count)
        #expect(triplets.allSatisfy { $0["query"] != nil && $0["passage"] != nil && $0["negative"] != nil })
        let stats = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: dir.outputsPath + "/mined.stats.json")))
        #expect(stats["queries"] == 7 && stats["corpus"] == 10 && stats["rows_short_of_negatives"] == 0)
        let markdown = try String(contentsOfFile: dir.reportPath, encoding: .utf8)
        #expect(markdown.contains("## Mining: mined") && markdown.contains("rows with fewer negatives than asked: 0"))

        // A rerun: no new request, byte-identical outputs and training file.
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.embeddingRequests.flatMap { $0 }.count == 17)
        for file in ["mined.jsonl", "mined.triplet.jsonl", "mined.stats.json"] {
            #expect(
                FileManager.default.contents(atPath: dir.outputsPath + "/" + file)
                    == FileManager.default.contents(atPath: second.runDirectory.outputsPath + "/" + file), "\(file)")
        }
        await stub.stop()
    }

    @Test("rerank the mined negatives: one cached request per pair, one query's pairs sent together, scores in order")
    func rerankNegatives() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start()
        let base = try String(contentsOfFile: try Self.config(ws, baseURL: stub.baseURL), encoding: .utf8)
        let config = try ws.write(
            "rerank.yaml",
            base.replacingOccurrences(
                of: "prompts:",
                with:
                    "  - {name: ranker, kind: openai, dialect: vllm, task: rerank, base_url: \"\(stub.baseURL)\", model: {id: stub-model, revision: r1}, max_retries: 0}\nprompts:"
            )
                + "\n  - {id: ranked, type: rerank, query: query, documents: mined.negatives, batch_size: 2}\n")
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        let mined = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "mined"))
        let ranked = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "ranked"))
        #expect(ranked.count == Self.pairs.count)
        for ((row, minedRow), pair) in zip(zip(ranked, mined), Self.pairs) {
            let documents = minedRow["negatives"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let scores = row["scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(scores.count == documents.count)
            let q = StubEngine.embedding(of: pair.0)
            for (document, score) in zip(documents, scores) {
                let cosine = zip(q, StubEngine.embedding(of: document)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(abs(cosine - score) < 1e-5)
            }
            let order = row["order"]?.arrayValue?.compactMap(\.intValue) ?? []
            #expect(order.map { scores[$0] } == scores.sorted(by: >))
        }
        // At most batch_size documents per request, never two queries in one.
        let requests = stub.rerankRequests
        #expect(requests.allSatisfy { (1...2).contains($0.count) })
        #expect(requests.flatMap { $0 }.count == 3 * Self.pairs.count - 3, "the repeated query's pairs are cached")
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.rerankRequests.count == requests.count)
        #expect(
            FileManager.default.contents(atPath: report.runDirectory.outputPath(stage: "ranked"))
                == FileManager.default.contents(atPath: second.runDirectory.outputPath(stage: "ranked")))
        // vLLM's /score as the endpoint: its own requests and cache keys, the same scores.
        let scoreConfig = try ws.write(
            "score.yaml",
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "batch_size: 2}", with: "batch_size: 2, endpoint: score}"))
        let viaScore = try await Runner(
            options: RunOptions(configPath: scoreConfig, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.rerankRequests.count > requests.count)
        let scored = try StageGraphTests.lines(viaScore.runDirectory.outputPath(stage: "ranked"))
        #expect(scored.map { $0["scores"] } == ranked.map { $0["scores"] })
        await stub.stop()
    }

    @Test("mine_hard_negatives with a reranker: the candidate window and the positives scored again, then selected")
    func rerankedWindow() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start()
        let base = try String(contentsOfFile: try Self.config(ws, baseURL: stub.baseURL), encoding: .utf8)
        let config = try ws.write(
            "window.yaml",
            base.replacingOccurrences(
                of: "prompts:",
                with:
                    "  - {name: ranker, kind: openai, dialect: vllm, task: rerank, base_url: \"\(stub.baseURL)\", model: {id: stub-model, revision: r1}, max_retries: 0}\nprompts:"
            )
            .replacingOccurrences(of: "    num_negatives: 3", with: "    num_negatives: 3\n    rerank_engine: ranker"))
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        let rows = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "mined"))
        func relevance(_ query: String, _ text: String) -> Double {
            zip(StubEngine.embedding(of: query), StubEngine.embedding(of: text)).reduce(0.0) {
                $0 + Double($1.0) * Double($1.1)
            }
        }
        for (row, pair) in zip(rows, Self.pairs) {
            // Scores are the reranker's (the stub: cosine of the texts without the query prefix).
            let negatives = row["negatives"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let scores = row["negative_scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(!negatives.isEmpty && scores == scores.sorted(by: >))
            for (negative, score) in zip(negatives, scores) { #expect(abs(relevance(pair.0, negative) - score) < 1e-5) }
            #expect(abs((row["positive_score"]?.doubleValue ?? 9) - relevance(pair.0, pair.1)) < 1e-5)
        }
        #expect(!stub.rerankRequests.isEmpty)
        let missing = try ws.write(
            "missing.yaml",
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "rerank_engine: ranker", with: "rerank_engine: nowhere"))
        let error = #expect(throws: LabelForgeError.self) { try RunPlan.prepare(configPath: missing, limit: nil) }
        #expect(error?.message.contains("names engine 'nowhere'") == true)
        await stub.stop()
    }

    @Test("rerank with method judge: a chat model's P(yes) per pair, one cache entry per pair whatever row asks")
    func judge() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start()
        let base = try String(contentsOfFile: try Self.config(ws, baseURL: stub.baseURL), encoding: .utf8)
        try ws.write(
            "prompts/relevance.mustache",
            "Query: {{query}}\nPassage: {{document}}\nIs the passage relevant? yes or no.\n")
        let config = try ws.write(
            "judge.yaml",
            base.replacingOccurrences(
                of: "prompts:",
                with:
                    "  - {name: chat, kind: openai, dialect: vllm, base_url: \"\(stub.baseURL)\", model: {id: stub-model, revision: r1}, max_retries: 0}\nprompts:"
            )
                + "\n  - {id: judged, type: rerank, method: judge, template: relevance, query: query, documents: mined.negatives}\n"
        )
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let judged = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "judged"))
        for row in judged {
            let scores = row["scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(scores.count == 3 && scores.allSatisfy { (0...1).contains($0) })
            let order = row["order"]?.arrayValue?.compactMap(\.intValue) ?? []
            #expect(order.map { scores[$0] } == scores.sorted(by: >))
        }
        // Chat requests carry no seed: the repeated query's three pairs are asked once.
        #expect(stub.chatRequests == 3 * Self.pairs.count - 3)
        #expect(stub.bodies.allSatisfy { $0["seed"] == nil && $0["structured_outputs"]?["choice"] == ["yes", "no"] })
        await stub.stop()
    }

    /// A passage far longer than the stub's 40-token window (vLLM answers 400 to it unless cut).
    static let longPassage = Array(repeating: "Routers keep their settings in flash memory.", count: 8).joined(
        separator: " ")

    /// The mining config with one more pair whose positive is `longPassage`, a chat engine on the
    /// same stub, and `extra` appended to the mining stage, then `after` as more stages.
    static func longConfig(_ ws: TestWorkspace, baseURL: String, extra: String = "", after: String = "") throws
        -> String
    {
        let base = try String(contentsOfFile: try config(ws, baseURL: baseURL), encoding: .utf8)
        let line = CanonicalJSON.string([
            "id": "q8", "query": "where are router settings kept", "passage": .string(longPassage),
        ])
        let pairs = try String(contentsOfFile: ws.path("data/pairs.jsonl"), encoding: .utf8)
        try ws.write("data/pairs.jsonl", pairs + line + "\n")
        // The judge reads mining's output through the graph, not its text: retrying a failed mining row
        // may change other rows' negatives (the passage it needed now has a vector), never their prompts.
        try ws.write("prompts/judge.mustache", "Query: {{query}} Mined: {{mined.positive_score}}\n")
        return try ws.write(
            "long.yaml",
            base.replacingOccurrences(
                of: "prompts:",
                with:
                    "  - {name: chat, kind: openai, dialect: vllm, base_url: \"\(baseURL)\", model: {id: stub-model, revision: r1}, max_retries: 0}\nprompts:"
            ) + "\n" + extra + after)
    }

    @Test(
        "a request that fails inside mining fails only the rows it concerns, the summary counts failures after the barrier, and --retry-failed redoes exactly those rows"
    )
    func failureInsideBarrier() async throws {
        let ws = try TestWorkspace()
        // A classify stage after mining fails for one query: the engine refuses it.
        let answer: @Sendable (JSONValue) -> StubAnswer = { body in
            CanonicalJSON.string(body["messages"] ?? nil).contains("warranty length")
                ? .error(status: 400, message: "refused") : StubEngine.followConstraint(body)
        }
        var stub = try await StubEngine.start(maxModelLen: 40, answer: answer)
        let config = try Self.longConfig(
            ws, baseURL: stub.baseURL, extra: "    truncate: false\n",
            after:
                "  - {id: judge, type: classify, engine: chat, template: judge, labels: [good, bad], max_validation_retries: 0}\n"
        )
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        let mined = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "mined"))
        #expect(mined.count == Self.pairs.count + 1)
        // Only the row whose positive is over the window failed, with the engine's own error.
        let failed = mined.filter { $0["error"] != nil }
        #expect(failed.map { $0["row_id"] } == ["q8"], "\(failed)")
        #expect(failed.first?["error"]?["class"] == "engine_http_error")
        #expect(failed.first?["error"]?["message"]?.stringValue?.contains("maximum context length is 40") == true)
        #expect(mined.filter { $0["error"] == nil }.allSatisfy { $0["negatives"]?.arrayValue?.count == 3 })
        // q8 failed in mining (its judge: upstream_failed), q7 ("warranty length") in the judge after it.
        #expect(report.rowsFailed == 2, "\(report.rowsFailed)")
        let manifest = try String(contentsOfFile: report.runDirectory.manifestPath, encoding: .utf8)
        let summary = try JSONValue.parse(String(manifest.split(separator: "\n").last!))
        #expect(summary["counts"]?["rows_failed"] == 2)
        #expect(summary["counts"]?["stages"]?["mined"]?["errors_by_class"]?["engine_http_error"] == 1)

        // The server takes long texts now: --retry-failed sends exactly the failed requests again.
        let port = stub.port
        await stub.stop()
        stub = try await StubEngine.start(port: port)
        let retried = try await Runner(
            options: RunOptions(
                configPath: config, runsDir: ws.path("runs"), resume: report.runDirectory.path, retryFailed: true),
            logger: CapturedLogs().logger
        ).run()
        let afterRetry = try StageGraphTests.lines(retried.runDirectory.outputPath(stage: "judge"))
        #expect(
            retried.status == "completed" && retried.rowsFailed == 0,
            "\(retried.rowsFailed): \(afterRetry.filter { $0["error"] != nil })")
        #expect(stub.embeddingRequests.flatMap { $0 } == [Self.longPassage])
        // The judge asks again for q7 (it failed) and q8 (its upstream did); the rest come from the cache.
        #expect(stub.chatRequests == 2)
        await stub.stop()
    }

    @Test(
        "mining's requests are counted once each, listed on the rows and the barrier line, checked by replay and counted by plan"
    )
    func barrierRequestsRecorded() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL)
        // Before any run: plan counts the 17 distinct texts (7 queries, 8 positives, 2 corpus lines).
        let planned = try await Runner(options: RunOptions(configPath: config), logger: CapturedLogs().logger).plan()
        let estimate = try #require(planned.stages.first { $0.id == "mined" })
        #expect(estimate.planned && estimate.rows == Self.pairs.count && estimate.new == 17 && estimate.cached == 0)
        #expect(estimate.newPromptTokens > 0)

        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.cacheLookups == 17 && report.cacheHits == 0, "\(report.cacheHits)/\(report.cacheLookups)")
        let lines = try String(contentsOfFile: report.runDirectory.manifestPath, encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }
        let rows = lines.filter { $0["type"] == "row" }
        #expect(rows.count == Self.pairs.count && rows.allSatisfy { $0["request_keys"]?.arrayValue?.count == 2 })
        let barrier = try #require(lines.first { $0["type"] == "barrier" })
        #expect(barrier["requests"]?["lookups"] == 17 && barrier["requests"]?["cache_hits"] == 0)
        // The corpus file's two passages belong to no row: the barrier line lists their keys.
        let corpusKeys = (barrier["request_keys"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(corpusKeys.count == 2)

        // A rerun is all hits, counted the same way; plan knows it beforehand (its keys carry the window
        // the server reports, as the run's do).
        let replanned = try await Runner(options: RunOptions(configPath: config), logger: CapturedLogs().logger).plan()
        let cached = try #require(replanned.stages.first { $0.id == "mined" })
        #expect(cached.new == 0 && cached.cached == 17, "\(cached)")
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(second.cacheHits == 17 && second.cacheLookups == 17)

        // Replay checks every request the run made: a cache without the corpus passages' answers is refused,
        // naming them, before anything runs.
        let full = try SQLiteCache(path: ws.path("cache.sqlite"), logger: CapturedLogs().logger)
        let partial = try SQLiteCache(path: ws.path("partial.sqlite"), logger: CapturedLogs().logger)
        let rowKeys = rows.flatMap { $0["request_keys"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let entries = try await full.entries(for: rowKeys.map { CacheKey(hex: ContentHash.unprefixed($0)) })
        try await partial.store(Array(entries.values))
        let replay = Runner(
            options: RunOptions(
                configPath: "", runsDir: ws.path("replays"), cachePath: ws.path("partial.sqlite"),
                replay: ReplayOptions(runDirectory: report.runDirectory.path)), logger: CapturedLogs().logger)
        let refusal = await #expect(throws: LabelForgeError.self) { try await replay.run() }
        #expect(refusal?.message.contains("lacks 2 response(s)") == true, "\(refusal?.message ?? "")")
        #expect(refusal?.message.contains(corpusKeys[0]) == true)
        await stub.stop()
    }

    @Test("mining reports its own work on the progress line: texts embedded, queries searched")
    func barrierProgress() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let seen = Collected<RunProgress.Phase>()
        _ = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ) { progress in
            if let phase = progress.phase { seen.append(phase) }
        }.run()
        let phases = seen.items
        for (name, total) in [("queries embedded", 7), ("passages embedded", 10), ("queries searched", 7)] {
            let updates = phases.filter { $0.name == name }
            #expect(updates.allSatisfy { $0.stage == "mined" && $0.total == total }, "\(name)")
            #expect(updates.last?.done == total, "\(name): \(updates.map(\.done))")
        }
        #expect(phases.filter { $0.name == "passages embedded" }.map(\.done) == Array(1...10))
        await stub.stop()
    }

    @Test(
        "texts over the model's window are cut to it by default (vLLM's truncate_prompt_tokens from its max_model_len), counted per stage, and the limit is in the cache key"
    )
    func truncatesByDefault() async throws {
        let ws = try TestWorkspace()
        let stub = try await StubEngine.start(maxModelLen: 40)
        let config = try Self.longConfig(ws, baseURL: stub.baseURL)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        #expect(report.stages.first { $0.id == "mined" }?.stats.truncated == 1)
        let manifest = try String(contentsOfFile: report.runDirectory.manifestPath, encoding: .utf8)
        #expect(manifest.contains(#""truncated":1"#), "the barrier line and the summary count the cut text")
        // Texts longer in bytes than the window were counted with /tokenize (vLLM cuts them itself);
        // the queries, all shorter, never were.
        #expect(stub.tokenizeRequests > 0)
        let mined = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "mined"))
        #expect(mined.allSatisfy { $0["error"] == nil })
        // A rerun reads the count from the cache; a smaller limit is a different request.
        let again = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(again.cacheHits == again.cacheLookups)
        #expect(again.stages.first { $0.id == "mined" }?.stats.truncated == 1)
        let smaller = try ws.write(
            "smaller.yaml",
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "output_format: triplet", with: "output_format: triplet\n    truncate: 30"))
        let cut = try await Runner(
            options: RunOptions(configPath: smaller, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(cut.cacheHits == 0, "a new limit is a new request for every text")
        await stub.stop()
    }

    @Test("the output formats follow sentence-transformers' column names and order")
    func formats() {
        func text(_ format: MiningFormat, negatives: [String] = ["n1", "n2"]) -> String {
            var bytes: [UInt8] = []
            for line in format.lines(
                columns: ("query", "passage"), query: "q", positive: "p", negatives: negatives, positiveScore: 0.9,
                negativeScores: [0.5, 0.4], count: 2)
            {
                MiningFormat.write(line, into: &bytes)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(
            text(.triplet) == #"{"query":"q","passage":"p","negative":"n1"}"# + "\n"
                + #"{"query":"q","passage":"p","negative":"n2"}"# + "\n")
        #expect(text(.nTuple) == #"{"query":"q","passage":"p","negative_1":"n1","negative_2":"n2"}"# + "\n")
        #expect(
            text(.nTupleScores)
                == #"{"query":"q","passage":"p","negative_1":"n1","negative_2":"n2","scores":[0.9,0.5,0.4]}"# + "\n")
        #expect(
            text(.labeledPair)
                == #"{"query":"q","passage":"p","label":1}"# + "\n" + #"{"query":"q","passage":"n1","label":0}"# + "\n"
                + #"{"query":"q","passage":"n2","label":0}"# + "\n")
        #expect(text(.labeledList) == #"{"query":"q","passage":["p","n1","n2"],"labels":[1,0,0]}"# + "\n")
        // n-tuple rows need all n negatives.
        #expect(text(.nTuple, negatives: ["n1"]).isEmpty)
    }
}
