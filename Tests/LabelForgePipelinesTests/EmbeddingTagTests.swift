import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `tag` with `method: embedding` against the stub's vLLM-format `/v1/embeddings`: each attribute
/// is labeled exactly as a `classify` stage with `method: embedding` and the same labels labels it,
/// which the same run holds beside it.
@Suite struct EmbeddingTagTests {
    static let topics = ["quality", "shipping", "price", "service"]

    /// A pool of 8 examples with a `topic` and a boolean `flag`, and row 2's own text (left out
    /// when row 2 is labeled).
    static func writePool(_ ws: TestWorkspace) throws -> String {
        var lines = (0..<8).map { i in
            CanonicalJSON.string([
                "text": .string("Example \(i): a review of \(topics[i % 4])."), "topic": .string(topics[i % 4]),
                "flag": .bool(i % 2 == 0),
            ])
        }
        lines.append(
            CanonicalJSON.string(["text": .string(TestWorkspace.reviewText(2)), "topic": "price", "flag": false]))
        return try ws.write("data/pool.jsonl", lines.joined(separator: "\n") + "\n")
    }

    /// Classify stages `topic` and `flag` and a tag stage `attributes` with the same labels, all
    /// with the pool (`few-shot`) or none (zero-shot, by the values' descriptions).
    static func config(_ ws: TestWorkspace, baseURL: String, pool: String?) throws -> String {
        let topicLabels = "[{name: quality, description: how well it is made}, shipping, price, service]"
        let flagLabels = "[{name: \"true\", description: an even review}, {name: \"false\", description: an odd one}]"
        let classifyExamples = { (field: String) in
            pool.map { "\n    examples: {path: \($0), label_field: \(field)}" } ?? ""
        }
        return try ws.write(
            "config.yaml",
            """
            run: {name: embedding-tag, seed: 5}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - id: topic
                type: classify
                method: embedding
                field: text
                label_prefix: "a review about "
                labels: \(topicLabels)\(classifyExamples("topic"))
              - id: flag
                type: classify
                method: embedding
                field: text
                label_prefix: "a review about "
                labels: \(flagLabels)\(classifyExamples("flag"))
              - id: attributes
                type: tag
                method: embedding
                field: text
                label_prefix: "a review about "
                attributes:
                  - {name: topic, type: enum, values: \(topicLabels)}
                  - {name: flag, type: boolean, values: \(flagLabels), gold_field: flag}\(pool.map { "\n    examples: {path: \($0)}" } ?? "")
            """)
    }

    @Test(
        "each enum and boolean attribute is labeled as classify with method: embedding labels it, zero-shot and from a pool; every text is sent once; rerun and replay write the same bytes",
        arguments: [false, true])
    func attributesAsClassifiers(fewShot: Bool) async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        let pool = fewShot ? try Self.writePool(ws) : nil
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL, pool: pool)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let directory = report.runDirectory
        let tags = try StageGraphTests.lines(directory.outputPath(stage: "attributes"))
        let topics = try StageGraphTests.lines(directory.outputPath(stage: "topic"))
        let flags = try StageGraphTests.lines(directory.outputPath(stage: "flag"))
        #expect(tags.count == 12)
        for (i, tag) in tags.enumerated() {
            #expect(tag["topic"] == topics[i]["label"], "row \(i)")
            #expect(tag["flag"] == .bool(flags[i]["label"] == "true"), "row \(i)")
            for (name, classified) in [("topic", topics[i]), ("flag", flags[i])] {
                #expect(tag["confidence"]?[name] == classified["confidence"], "row \(i) \(name)")
                #expect(tag["scores"]?[name] == classified["scores"], "row \(i) \(name)")
            }
        }
        #expect(Set(tags.map { $0["topic"] }).count > 1 && Set(tags.map { $0["flag"] }).count == 2)
        // 12 rows, 4 + 2 label texts, 9 example texts (row 2's is also a row's): each sent once,
        // whichever stage asked first.
        let sent = stub.embeddingRequests.flatMap { $0 }
        let expected = 12 + 6 + (fewShot ? 8 : 0)
        #expect(sent.count == expected && Set(sent).count == expected, "\(sent.count) sent")

        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(second.cacheHitRate == 1 && stub.embeddingRequests.flatMap { $0 }.count == expected)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: directory.outputPath(stage: "attributes")))
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: second.runDirectory.outputPath(stage: "attributes"))) == bytes)
        await stub.stop()
        let replay = try await Runner(
            options: RunOptions(
                configPath: "", runsDir: ws.path("replays"),
                replay: ReplayOptions(runDirectory: directory.path)), logger: CapturedLogs().logger
        ).run()
        #expect(replay.status == "completed")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: replay.runDirectory.outputPath(stage: "attributes"))) == bytes)

        // Review: least confident first, by each row's least confident attribute; a described
        // value is offered by its name.
        let export = try ReviewExport(run: try RunArtifacts.load(directory.path), stage: "attributes")
        #expect(export.questions.map(\.kind) == [.single(Self.topics), .single(["true", "false"])])
        let least = tags.map { $0["confidence"]?.objectValue?.values.compactMap(\.doubleValue).min() ?? 9 }
        #expect(
            try export.rows(order: .confidence, limit: 3).map { ReviewExport.confidence(of: $0.output) }
                == Array(least.sorted().prefix(3)))
    }

    @Test(
        "method: embedding on tag: string and list attributes, a boolean with nothing to compare with, an attribute named as an output, and its keys under method: llm are refused"
    )
    func configErrors() throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        let base = try String(
            contentsOfFile: Self.config(ws, baseURL: "http://127.0.0.1:9", pool: nil), encoding: .utf8)
        let cases: [(String, String, String)] = [
            (
                "- {name: topic, type: enum,", "- {name: note, type: string}\n      - {name: topic, type: enum,",
                "attribute 'note' is a string: method: embedding labels enum and boolean attributes only"
            ),
            (
                "{name: flag, type: boolean, values: [{name: \"true\", description: an even review}, {name: \"false\", description: an odd one}], gold_field: flag}",
                "{name: flag, type: boolean}", "boolean attribute 'flag' has nothing to compare rows with"
            ),
            ("- {name: topic, type: enum,", "- {name: confidence, type: enum,", "cannot be named 'confidence'"),
            ("shipping, price, service]}", "shipping, price, shipping]}", "value 'shipping' is listed twice"),
            (
                "    method: embedding\n    field: text\n    label_prefix: \"a review about \"\n    attributes:",
                "    attributes:", "describes its values, which only method: embedding reads"
            ),
            (
                "    method: embedding\n    field: text\n    label_prefix: \"a review about \"\n    attributes:",
                "    field: text\n    attributes:", "'field' applies with method: embedding only"
            ),
        ]
        for (i, (from, to, message)) in cases.enumerated() {
            let tagPart = base.range(of: "  - id: attributes")!
            var text = base
            text.replaceSubrange(
                tagPart.lowerBound..., with: base[tagPart.lowerBound...].replacingOccurrences(of: from, with: to))
            #expect(text != base, "case \(i) changes the config")
            let error = #expect(throws: LabelForgeError.self) {
                try RunConfig.load(file: try ws.write("case\(i).yaml", text))
            }
            #expect(error?.message.contains(message) == true, "case \(i): \(error?.message ?? "")")
            #expect(error?.message.contains("case\(i).yaml:") == true, "case \(i): \(error?.message ?? "")")
        }
        // A pool's label is the attribute's own field: `label_field` is not a tag's key.
        let pool = try Self.writePool(ws)
        let withPool = try String(
            contentsOfFile: Self.config(ws, baseURL: "http://127.0.0.1:9", pool: pool), encoding: .utf8)
        let labelField = withPool.replacingOccurrences(
            of: "    examples: {path: \(pool)}", with: "    examples: {path: \(pool), label_field: topic}")
        let error = #expect(throws: LabelForgeError.self) {
            try RunConfig.load(file: try ws.write("label-field.yaml", labelField))
        }
        #expect(error?.message.contains("label_field") == true, "\(error?.message ?? "")")
    }

    @Test(
        "diff of a zero-shot and a few-shot run: the examples each learns from, and the accuracy gained per labeled example"
    )
    func gainPerLabeledExample() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 30)
        let sentiments = ["positive", "negative", "neutral"]
        let pool = (0..<12).map { i in
            CanonicalJSON.string([
                "text": .string(TestWorkspace.reviewText(100 + i)), "sentiment": .string(sentiments[i % 3]),
            ])
        }
        try ws.write("data/pool.jsonl", pool.joined(separator: "\n") + "\n")
        let stub = try await StubEngine.start()
        var runs: [String] = []
        for (name, examples) in [
            ("zero", ""), ("few", "\n    examples: {path: \(ws.path("data/pool.jsonl")), label_field: sentiment}"),
        ] {
            let config = try ws.write(
                "\(name).yaml",
                """
                run: {name: \(name), seed: 5}
                dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
                engines:
                  - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
                cache: {path: \(ws.path("cache.sqlite"))}
                stages:
                  - id: sentiment
                    type: classify
                    method: embedding
                    field: text
                    labels: [positive, negative, neutral]
                    gold_field: sentiment\(examples)
                """)
            runs.append(
                try await Runner(
                    options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
                )
                .run().runDirectory.path)
        }
        let diff = try RunDiff.compare(try RunArtifacts.load(runs[0]), try RunArtifacts.load(runs[1]))
        let gold = try #require(diff.gold.first)
        #expect(gold.labeledExamples?.a == 0 && gold.labeledExamples?.b == 12)
        let difference = try #require(gold.difference?.difference)
        #expect(gold.gainPerExample == difference / 12)
        #expect(
            diff.rendered(markdown: false).contains(
                String(format: "%+.3f points per labeled example (a learns from 0, b from 12)", difference / 12 * 100)))
        #expect(diff.json["gold"]?.arrayValue?.first?["labeled_examples"] == ["a": 0, "b": 12])
        // A stage that differs in more than its examples (here its temperature): the examples do not
        // explain the difference, so there is no per-example figure.
        let warmer = try ws.write(
            "warm.yaml",
            String(contentsOfFile: ws.path("few.yaml"), encoding: .utf8).replacingOccurrences(
                of: "    gold_field: sentiment", with: "    temperature: 0.5\n    gold_field: sentiment"))
        let warm = try await Runner(
            options: RunOptions(configPath: warmer, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run().runDirectory.path
        let other = try RunDiff.compare(try RunArtifacts.load(runs[0]), try RunArtifacts.load(warm))
        #expect(other.gold.first?.labeledExamples == nil && other.gold.first?.gainPerExample == nil)
        // The same run on both sides gains nothing per example: there is no per-example figure.
        let same = try RunDiff.compare(try RunArtifacts.load(runs[1]), try RunArtifacts.load(runs[1]))
        #expect(same.gold.first?.gainPerExample == nil && same.gold.first?.labeledExamples?.b == 12)
        await stub.stop()
    }

    @Test(
        "a row whose text is empty or white space fails with empty_text in an embedding classifier and tagger, without a request"
    )
    func emptyText() async throws {
        let ws = try TestWorkspace()
        try ws.write(
            "data/reviews.jsonl",
            [#"{"id":"a","text":""}"#, #"{"id":"b","text":"  \n"}"#, #"{"id":"c","text":"Sturdy and well made."}"#]
                .joined(separator: "\n") + "\n")
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL, pool: nil)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        let rows = try StageGraphTests.lines(report.runDirectory.path + "/manifest.jsonl").filter {
            $0["type"] == "row"
        }
        for stage in ["topic", "flag", "attributes"] {
            let errors = rows.filter { $0["stage"]?.stringValue == stage }
                .sorted { ($0["row_id"]?.stringValue ?? "") < ($1["row_id"]?.stringValue ?? "") }
                .map { $0["error"]?["class"]?.stringValue }
            #expect(errors == ["empty_text", "empty_text", nil], "\(stage): \(errors)")
        }
        #expect(!stub.embeddingRequests.flatMap { $0 }.contains { $0.allSatisfy(\.isWhitespace) })
        await stub.stop()
    }
}
