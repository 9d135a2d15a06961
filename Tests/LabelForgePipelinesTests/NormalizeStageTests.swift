import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `normalize`: a dataset-wide rescaling of a numeric output, overall or per group.
@Suite struct NormalizeStageTests {
    /// Scores 1–5 from the review's number; the topic (the number's parity) makes two groups.
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        let number = Int(prompt.split(separator: "number ")[1].prefix { $0.isNumber }) ?? 0
        return .content(#"{"rationale":"r","scores":{"quality":\#(1 + (number * 7) % 5)}}"#)
    }

    @Test("zscore per group and percentile overall equal the Eval module's on the same values")
    func normalize() async throws {
        let ws = try TestWorkspace()
        let rows = (0..<10).map {
            #"{"id":"r\#($0)","text":"Review number \#($0)","parity":"\#($0 % 2 == 0 ? "even" : "odd")"}"#
        }
        try ws.write("data/reviews.jsonl", rows.joined(separator: "\n") + "\n")
        try ws.writePromptPack()
        try ws.write("prompts/judge.mustache", "Score this review: {{text}}\n")
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let config = try ws.writeStubConfig(
            name: "normalize", baseURL: stub.baseURL,
            stages: """
                  - {id: judge, type: rubric_score, template: judge, criteria: [{name: quality}], sampling: {top_logprobs: null}}
                  - {id: by_parity, type: normalize, field: judge.score, method: zscore, group_by: parity}
                  - {id: overall, type: normalize, field: judge.scores.quality, method: percentile}
                """)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs"), cachePath: ws.path("c.sqlite")),
            logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed")
        func lines(_ stage: String) throws -> [JSONValue] {
            try String(contentsOfFile: report.runDirectory.outputPath(stage: stage), encoding: .utf8)
                .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        }
        let scores = (0..<10).map { Double(1 + ($0 * 7) % 5) }
        let byParity = try lines("by_parity")
        #expect(byParity.map { $0["raw"]?.doubleValue } == scores)
        for parity in [0, 1] {
            let indices = (0..<10).filter { $0 % 2 == parity }
            let expected = Normalization.zscore.apply(indices.map { scores[$0] })
            for (k, i) in indices.enumerated() {
                #expect(abs((byParity[i]["value"]?.doubleValue ?? .nan) - expected[k]) < 1e-6)
                #expect(byParity[i]["group"]?.stringValue == (parity == 0 ? "even" : "odd"))
            }
        }
        let overall = try lines("overall")
        let expected = Normalization.percentile.apply(scores)
        #expect(zip(overall, expected).allSatisfy { abs(($0["value"]?.doubleValue ?? .nan) - $1) < 1e-6 })
        #expect(overall.allSatisfy { $0["group"] == .null })
    }
}
