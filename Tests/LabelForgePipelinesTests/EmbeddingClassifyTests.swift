import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import LabelForgeVectors
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `classify` with `method: embedding` against the stub's vLLM-format `/v1/embeddings` (its vectors
/// are a hash of each text, so the expected label is computed here from the same vectors).
@Suite struct EmbeddingClassifyTests {
    static let labels = ["quality", "shipping", "price", "service"]

    static func config(_ ws: TestWorkspace, baseURL: String, extra: String = "") throws -> String {
        try ws.write(
            "config.yaml",
            """
            run: {name: embedding-classify, seed: 5}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - id: topic
                type: classify
                method: embedding
                field: text
                prefix: "query: "
                label_prefix: "a review about "
                labels: [\(labels.joined(separator: ", "))]
            \(extra)
            """)
    }

    @Test(
        "the nearest label by cosine, a softmax confidence, each label's score; every text sent once; a rerun sends nothing and writes the same bytes"
    )
    func nearestLabel() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let lines = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "topic"))
        #expect(lines.count == 12)
        let labelVectors = Self.labels.map { StubEngine.embedding(of: "a review about " + $0) }
        var chosen: Set<String> = []
        for (i, line) in lines.enumerated() {
            let row = StubEngine.embedding(of: "query: Review number \(i): it's \"fine\" & works.")
            let similarities = labelVectors.map { VectorSearch.cosine(row, $0) }
            let best = similarities.indices.max { similarities[$0] < similarities[$1] }!
            #expect(line["label"]?.stringValue == Self.labels[best])
            chosen.insert(Self.labels[best])
            for (label, similarity) in zip(Self.labels, similarities) {
                #expect(abs((line["scores"]?[label]?.doubleValue ?? 9) - similarity) < 1e-5)
            }
            let weights = similarities.map { exp(($0 - similarities[best]) / 0.05) }
            #expect(abs((line["confidence"]?.doubleValue ?? 9) - weights[best] / weights.reduce(0, +)) < 1e-5)
        }
        #expect(chosen.count > 1, "the stub's vectors pick more than one label")
        // 12 row texts and 4 label texts, each sent once (a label's vector serves every row).
        let sent = stub.embeddingRequests.flatMap { $0 }
        #expect(sent.count == 16 && Set(sent).count == 16)

        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.embeddingRequests.flatMap { $0 }.count == 16)
        #expect(second.cacheHitRate == 1)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: second.runDirectory.outputPath(stage: "topic")))
                == Data(contentsOf: URL(fileURLWithPath: report.runDirectory.outputPath(stage: "topic"))))
    }

    @Test("method: embedding needs a field and an engine with task: embed; its keys are refused with method: llm")
    func configErrors() throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        let base = try String(contentsOfFile: Self.config(ws, baseURL: "http://127.0.0.1:9"), encoding: .utf8)
        let noField = base.replacingOccurrences(
            of: "    field: text\n", with: "")
        let error = #expect(throws: LabelForgeError.self) {
            try RunConfig.load(file: try ws.write("nofield.yaml", noField))
        }
        #expect(error?.message.contains("needs 'field'") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("nofield.yaml:") == true)

        let chatEngine = base.replacingOccurrences(
            of: "task: embed, ", with: "")
        let taskError = #expect(throws: LabelForgeError.self) {
            _ = try RunPlan.prepare(configPath: try ws.write("chat.yaml", chatEngine), limit: nil)
        }
        #expect(taskError?.message.contains("needs an engine with task: embed") == true, "\(taskError?.message ?? "")")

        let llm = base.replacingOccurrences(
            of: "method: embedding", with: "method: llm")
        let keyError = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: try ws.write("llm.yaml", llm)) }
        #expect(keyError?.message.contains("'field' applies with method: embedding only") == true)
    }
}
