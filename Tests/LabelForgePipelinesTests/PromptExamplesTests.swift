import Foundation
import LabelForgeCore
import LabelForgeTesting
import LabelForgeVectors
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `examples:` of an LLM `classify`: worked examples chosen per row and rendered by the template,
/// against the stub (its vectors are a hash of each text, so the expected choice is computed here).
@Suite struct PromptExamplesTests {
    /// Six pool examples, and one whose text is row 3's own.
    static let pool: [(text: String, sentiment: String)] =
        (0..<6).map { ("Example review \($0) about a kettle.", ["positive", "negative", "neutral"][$0 % 3]) }
        + [(TestWorkspace.reviewText(3), "neutral")]

    static func workspace(select: String, k: Int = 2, extra: String = "", rows: Int = 8, delay: Duration = .zero)
        async throws -> (TestWorkspace, StubEngine, String)
    {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows)
        try ws.writePromptPack()
        try ws.write(
            "prompts/fewshot.mustache", "{{#examples}}EX: {{text}} => {{sentiment}}|{{/examples}}\nROW: {{text}}\n")
        try ws.write(
            "data/pool.jsonl",
            pool.map { CanonicalJSON.string(["text": .string($0.text), "sentiment": .string($0.sentiment)]) }
                .joined(separator: "\n") + "\n")
        let stub = try await StubEngine.start(delay: delay)
        let engine = select == "fixed" ? "" : ", engine: vectors"
        let config = try ws.write(
            "config-\(select)-\(k).yaml",
            """
            run: {name: fewshot, seed: 5}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: chat, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: mood, type: classify, template: fewshot, labels: [positive, negative, neutral], examples: {path: data/pool.jsonl, k: \(k), select: \(select)\(engine)\(extra)}}
            """)
        return (ws, stub, config)
    }

    /// The example texts each row's prompt showed, by row text, in the order shown.
    static func shown(_ stub: StubEngine) -> [String: [String]] {
        var shown: [String: [String]] = [:]
        for body in stub.bodies {
            let prompt = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            guard let row = prompt.components(separatedBy: "ROW: ").last?.trimmingCharacters(in: .newlines) else {
                continue
            }
            shown[row] = prompt.components(separatedBy: "EX: ").dropFirst().map {
                $0.components(separatedBy: " => ").first ?? ""
            }
        }
        return shown
    }

    static func run(_ config: String, _ ws: TestWorkspace) async throws -> RunReport {
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        return report
    }

    @Test("fixed: the pool's first k, never the row's own text; a rerun sends nothing and writes the same bytes")
    func fixed() async throws {
        let (ws, stub, config) = try await Self.workspace(select: "fixed")
        let first = try await Self.run(config, ws)
        let shown = Self.shown(stub)
        #expect(shown.count == 8)
        for i in 0..<8 {
            #expect(shown[TestWorkspace.reviewText(i)] == [Self.pool[0].text, Self.pool[1].text], "row \(i)")
        }
        let sent = stub.chatRequests
        let again = try await Self.run(config, ws)
        #expect(stub.chatRequests == sent)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: again.runDirectory.outputPath(stage: "mood")))
                == Data(contentsOf: URL(fileURLWithPath: first.runDirectory.outputPath(stage: "mood"))))
    }

    @Test("similar: the k nearest by cosine, nearest first, leaving the row's own text out; k is in the cache key")
    func similar() async throws {
        let (ws, stub, config) = try await Self.workspace(select: "similar")
        _ = try await Self.run(config, ws)
        let shown = Self.shown(stub)
        for i in 0..<8 {
            let text = TestWorkspace.reviewText(i)
            let row = StubEngine.embedding(of: text)
            let expected = Self.pool.map(\.text).filter { $0 != text }
                .map { ($0, VectorSearch.cosine(row, StubEngine.embedding(of: $0))) }
                .sorted { $0.1 > $1.1 }.prefix(2).map(\.0)
            #expect(shown[text] == expected, "row \(i)")
        }
        #expect(shown[TestWorkspace.reviewText(3)]?.contains(TestWorkspace.reviewText(3)) == false)
        // Another k is another prompt: every row asks again.
        let sent = stub.chatRequests
        let three = try ws.write(
            "k3.yaml",
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "k: 2", with: "k: 3"))
        _ = try await Self.run(three, ws)
        #expect(stub.chatRequests == sent + 8)
    }

    @Test("diverse: maximal marginal relevance, each next example near the row and far from those picked")
    func diverse() async throws {
        let (ws, stub, config) = try await Self.workspace(select: "diverse", k: 3, extra: ", diversity: 0.5")
        _ = try await Self.run(config, ws)
        let shown = Self.shown(stub)
        func unit(_ text: String) -> [Double] {
            let v = StubEngine.embedding(of: text).map(Double.init)
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        for i in 0..<8 {
            let text = TestWorkspace.reviewText(i)
            let row = unit(text)
            var remaining = Self.pool.map(\.text).filter { $0 != text }
            var picked: [String] = []
            while picked.count < 3 {
                let scores = remaining.map { candidate in
                    0.5 * dot(row, unit(candidate)) - 0.5 * (picked.map { dot(unit(candidate), unit($0)) }.max() ?? 0)
                }
                let best = scores.indices.max { scores[$0] < scores[$1] }!
                picked.append(remaining.remove(at: best))
            }
            #expect(shown[text] == picked, "row \(i)")
        }
    }

    @Test("select: similar without an engine, and a pool line without text, are refused with where")
    func errors() async throws {
        let (ws, _, config) = try await Self.workspace(select: "similar")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let noEngine = #expect(throws: LabelForgeError.self) {
            try RunConfig.load(
                file: try ws.write("e.yaml", text.replacingOccurrences(of: ", engine: vectors", with: "")))
        }
        #expect(noEngine?.message.contains("select: similar needs 'engine'") == true, "\(noEngine?.message ?? "")")
        try ws.write("data/pool.jsonl", "{\"text\": \"a\"}\n{\"sentiment\": \"neutral\"}\n")
        let noText = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: config) }
        #expect(noText?.message.contains("pool.jsonl line 2: no text in 'text'") == true, "\(noText?.message ?? "")")
    }

    @Test("80 rows waiting on the pool's vectors at once (more than the window holds) all finish")
    func manyRows() async throws {
        let (ws, _, config) = try await Self.workspace(select: "similar", rows: 80, delay: .milliseconds(30))
        let report = try await Self.run(config, ws)
        #expect(report.rows == 80)
    }
}
