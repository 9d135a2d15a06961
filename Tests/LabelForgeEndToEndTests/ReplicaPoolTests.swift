import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// An engine with several `base_urls`: requests go to the replica with the fewest outstanding,
/// within each replica's limit; a replica that dies is taken out, probed, and put back.
@Suite(.serialized) struct ReplicaPoolTests {
    @Test(
        "three replicas, one dies mid-run and comes back after 0.5 s: the run completes, every request answered once, the replica serves again, the manifest says who served"
    )
    func replicaDiesAndComesBack() async throws {
        let rows = 1200
        let stubs = [
            try await StubEngine.start(delay: .milliseconds(40), answer: StubEngine.followConstraintBySeed),
            try await StubEngine.start(delay: .milliseconds(40), answer: StubEngine.followConstraintBySeed),
            try await StubEngine.start(delay: .milliseconds(40), answer: StubEngine.followConstraintBySeed),
        ]
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows)
        try ws.writePromptPack()
        let urls = stubs.map { "\"\($0.baseURL)\"" }.joined(separator: ", ")
        try ws.write(
            "config.yaml",
            """
            run: {seed: 12}
            dataset: {path: data/reviews.jsonl, id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_urls: [\(urls)], model: {id: m, revision: r}, max_in_flight: 12, max_in_flight_per_replica: 4, max_retries: 6}
            prompts: {pack: prompts}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
            """)
        async let result = CLI.run(
            ["run", "--config", "config.yaml", "--runs-dir", "runs", "--cache-path", ws.path("c.sqlite")],
            workingDirectory: ws.root)
        let dying = stubs[1]
        while stubs.reduce(0, { $0 + $1.chatAnswered }) < 200 { try await Task.sleep(for: .milliseconds(10)) }
        try await dying.restart(after: .milliseconds(500))
        let answeredBeforeReturn = dying.chatAnswered
        let run = try await result
        #expect(run.exitCode == 0, "\(run.stderr)")
        let rerun = try await CLI.run(
            ["run", "--config", "config.yaml", "--runs-dir", "runs2", "--cache-path", ws.path("c.sqlite")],
            workingDirectory: ws.root)
        for stub in stubs { await stub.stop() }
        #expect(rerun.stdout.contains("engine requests sent: 0"), "the cache key ignores the replica: \(rerun.stdout)")

        // No request lost, none answered twice.
        #expect(stubs.reduce(0) { $0 + $1.chatAnswered } == rows, "\(stubs.map(\.chatAnswered))")
        // The replica took traffic again after it came back.
        #expect(dying.chatAnswered > answeredBeforeReturn, "\(dying.chatAnswered) after \(answeredBeforeReturn)")
        // Each replica held at most 4 requests at once: 3 × 4 = 12, so all three did work.
        for stub in stubs { #expect(stub.chatAnswered > rows / 10, "\(stubs.map(\.chatAnswered))") }

        // The manifest records which replica served each row (never part of a cache key).
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        var servedBy: [String: Int] = [:]
        for line in try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n") {
            let record = try JSONValue.parse(String(line))
            guard record["type"] == "row" else { continue }
            let replicas = try #require(record["served_by"]?.arrayValue, "\(record)")
            for replica in replicas { servedBy[replica.textForm, default: 0] += 1 }
        }
        #expect(Set(servedBy.keys) == Set(stubs.map(\.baseURL)))
        #expect(servedBy.values.reduce(0, +) == rows)
    }
}
