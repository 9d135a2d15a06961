import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct EmbedStageTests {
    static func config(_ ws: TestWorkspace, baseURL: String, batchSize: Int, extra: String = "") throws -> String {
        try ws.write(
            "config.yaml",
            """
            run: {name: embed-test, seed: 3}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: chat, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0, max_in_flight: 2}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
              - {id: vec, type: embed, field: text, prefix: "passage: ", batch_size: \(batchSize)}
            \(extra)
            """)
    }

    /// The rows of an `.npy` file of float32 vectors, and its shape.
    static func readNpy(_ path: String) throws -> (shape: [Int], rows: [[Float]]) {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(data[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': ("))
        #expect((10 + headerLength) % 64 == 0 && header.hasSuffix("\n"))
        let shapeText = header.split(separator: "(")[1].split(separator: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let floats = EmbeddingsResponse.decodeFloats(Data(data[(10 + headerLength)...]))
        let dimension = shape.count == 2 ? shape[1] : 0
        let rows = dimension == 0 ? [] : (0..<shape[0]).map { Array(floats[($0 * dimension)..<(($0 + 1) * dimension)]) }
        #expect(floats.count == shape.reduce(1, *))
        return (shape, rows)
    }

    @Test("embed: one vector per row in outputs/<stage>.npy, index/dimension/norm in the JSONL, requests batched")
    func vectors() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 10)
        try ws.writePromptPack()
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL, batchSize: 4)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        let dir = report.runDirectory
        let (shape, rows) = try Self.readNpy(dir.outputsPath + "/vec.npy")
        #expect(shape == [10, 8])
        let texts = (0..<10).map { "passage: Review number \($0): it's \"fine\" & works." }
        #expect(rows == texts.map(StubEngine.embedding(of:)))
        let lines = try StageGraphTests.lines(dir.outputPath(stage: "vec"))
        #expect(lines.map { $0["index"]?.intValue } == Array(0..<10))
        #expect(lines.allSatisfy { $0["dimension"] == 8 && abs(($0["norm"]?.doubleValue ?? 0) - 1) < 1e-5 })
        // vLLM's wire format, in batches of at most 4 texts; every text sent once.
        let batches = stub.embeddingRequests
        #expect(batches.allSatisfy { (1...4).contains($0.count) })
        #expect(batches.flatMap { $0 }.sorted() == texts.sorted())

        // Another batch size re-uses every cached vector: no embeddings request, same bytes.
        let second = try await Runner(
            options: RunOptions(
                configPath: try Self.config(ws, baseURL: stub.baseURL, batchSize: 3), runsDir: ws.path("runs")),
            logger: CapturedLogs().logger
        ).run()
        #expect(stub.embeddingRequests.count == batches.count)
        #expect(second.cacheHitRate == 1)
        for file in ["vec.npy", "vec.jsonl"] {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: dir.outputsPath + "/" + file))
                    == Data(contentsOf: URL(fileURLWithPath: second.runDirectory.outputsPath + "/" + file)))
        }
        await stub.stop()
    }

    /// Six short reviews and, third, one far over the stub's 40-token window.
    static let longReview = Array(repeating: "The battery lasts two days and charges fast.", count: 6).joined(
        separator: " ")

    static func writeReviewsWithOneLong(_ ws: TestWorkspace) throws {
        let texts = ["Great blender.", "Too loud.", longReview, "Works.", "Broke in a week.", "Fine for the price."]
        try ws.write(
            "data/reviews.jsonl",
            texts.enumerated().map { CanonicalJSON.string(["id": .string("r\($0)"), "text": .string($1)]) }.joined(
                separator: "\n") + "\n")
        try ws.writePromptPack()
    }

    static func embedOnly(_ ws: TestWorkspace, baseURL: String, truncate: String) throws -> String {
        try ws.write(
            "embed.yaml",
            """
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: vec, type: embed, field: text, batch_size: 8\(truncate)}
            """)
    }

    @Test("with truncate: false, a text over the model's window fails only its own row, even inside a batch")
    func oneTextTooLong() async throws {
        let ws = try TestWorkspace()
        try Self.writeReviewsWithOneLong(ws)
        let stub = try await StubEngine.start(maxModelLen: 40)
        let report = try await Runner(
            options: RunOptions(
                configPath: try Self.embedOnly(ws, baseURL: stub.baseURL, truncate: ", truncate: false"),
                runsDir: ws.path("runs")),
            logger: CapturedLogs().logger
        ).run()
        let lines = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "vec"))
        #expect(lines.filter { $0["error"] != nil }.map { $0["row_id"] } == ["r2"])
        #expect(lines[2]["error"]?["class"] == "engine_http_error")
        #expect(report.rowsFailed == 1)
        let (_, rows) = try Self.readNpy(report.runDirectory.outputsPath + "/vec.npy")
        #expect(rows.count == 5)
        #expect(stub.embeddingRequests.count >= 2, "the batch, then each of its texts alone")
        #expect(stub.embeddingLimits.allSatisfy { $0 == nil }, "no request carried a limit: \(stub.embeddingLimits)")
        await stub.stop()
    }

    @Test(
        "by default a text over the model's window is cut to it (the server's max_model_len), counted, and its vector is the cut text's"
    )
    func cutToWindow() async throws {
        let ws = try TestWorkspace()
        try Self.writeReviewsWithOneLong(ws)
        let stub = try await StubEngine.start(maxModelLen: 40)
        let config = try Self.embedOnly(ws, baseURL: stub.baseURL, truncate: "")
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        #expect(report.stages.first { $0.id == "vec" }?.stats.truncated == 1)
        let (_, rows) = try Self.readNpy(report.runDirectory.outputsPath + "/vec.npy")
        // vLLM keeps the first 40 tokens, its 2 special ones included.
        let cut = StubEngine.tokens(Self.longReview).prefix(38).joined()
        #expect(rows[2] == StubEngine.embedding(of: cut))
        #expect(rows[0] == StubEngine.embedding(of: "Great blender."))
        let summary = try String(contentsOfFile: report.runDirectory.manifestPath, encoding: .utf8)
        #expect(summary.contains(#""truncated":1"#))
        // From the cache, the count stays.
        let again = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(again.cacheHitRate == 1 && again.stages.first { $0.id == "vec" }?.stats.truncated == 1)
        await stub.stop()
    }

    @Test("an engine no stage uses is neither started nor contacted")
    func unusedEngine() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 3)
        try ws.writePromptPack()
        let stub = try await StubEngine.start()
        let config = try ws.write(
            "c.yaml",
            """
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: chat, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
              - {name: nowhere, kind: openai, task: embed, base_url: "http://127.0.0.1:9", model: {id: e, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages: [{id: sentiment, type: classify, template: classify, labels: [positive, negative]}]
            """)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let runLine = try JSONValue.parse(
            String(
                try String(contentsOfFile: report.runDirectory.manifestPath, encoding: .utf8).split(separator: "\n")[0])
        )
        #expect(runLine["engines"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["chat"])
        await stub.stop()
    }

    @Test("an embed stage on an engine that does not serve embeddings is a config error naming both")
    func engineTask() throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        try ws.writePromptPack()
        let path = try ws.write(
            "c.yaml",
            """
            dataset: {path: \(ws.path("data/reviews.jsonl"))}
            engines: [{name: chat, kind: openai, base_url: "http://127.0.0.1:9", model: {id: m, revision: r}}]
            prompts: {pack: \(ws.path("prompts"))}
            stages: [{id: vec, type: embed, field: text}]
            """)
        let error = #expect(throws: LabelForgeError.self) { try RunPlan.prepare(configPath: path, limit: nil) }
        #expect(error?.message.contains("stage 'vec' (embed) needs an engine with task: embed") == true)
        #expect(error?.message.contains("engine 'chat' has task: chat") == true)
    }

    @Test("the batcher sends waiting texts together, at most batch_size at a time, and answers each caller")
    func batcher() async throws {
        let transport = InMemoryTransport(gated: true)
        let batcher = RequestBatcher(base: transport, batchSize: 3, maxConcurrentBatches: 1)
        let texts = (0..<7).map { "text \($0)\(String(repeating: "x", count: $0))" }
        let vectors = try await withThrowingTaskGroup(of: (Int, [[Float]]).self) { group in
            for (index, text) in texts.enumerated() {
                group.addTask {
                    let reply = try await batcher.send(
                        EngineRequest(kind: .embeddings, body: EmbeddingsRequest(input: [text]).body(modelID: "m")))
                    return (index, try EmbeddingsResponse(raw: reply.body).vectors)
                }
            }
            // Let every caller queue behind the first request, then release the engine.
            let queued = try await Waiting.until { transport.requests.count == 1 && batcher.waiting == 6 }
            #expect(queued, "\(batcher.waiting) callers queued behind the first request")
            transport.open()
            var vectors: [Int: [[Float]]] = [:]
            for try await (index, vector) in group { vectors[index] = vector }
            return vectors
        }
        for (index, text) in texts.enumerated() {
            // The in-memory engine's first dimension is the text's length.
            #expect(vectors[index] == [[Float(text.count), 1, -0.5]])
        }
        let sizes = transport.requests.map { $0.body["input"]?.arrayValue?.count ?? 0 }
        #expect(sizes.reduce(0, +) == 7)
        #expect(sizes.allSatisfy { $0 <= 3 })
        #expect(sizes.count == 3, "\(sizes)")
    }
}
