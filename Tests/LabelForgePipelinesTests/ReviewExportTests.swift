import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct ReviewExportTests {
    /// A finished run on the stub: a classify stage (with confidence) and a tag stage.
    static func run(
        _ ws: TestWorkspace, seed: Int = 5,
        answer: @escaping @Sendable (JSONValue) -> StubAnswer = StubEngine.followConstraint
    ) async throws -> (RunArtifacts, StubEngine) {
        try ws.writeReviews(count: 12)
        try ws.writePromptPack()
        let stub = try await StubEngine.start(answer: answer)
        let config = try ws.write(
            "c\(seed).yaml",
            """
            run: {name: export-test, seed: \(seed)}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vllm, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], gold_field: sentiment}
              - id: attributes
                type: tag
                attributes:
                  - {name: topic, type: enum, values: [quality, price]}
                  - {name: urgent, type: boolean}
                  - {name: aspects, type: list, values: [battery, screen]}
                  - {name: note, type: string}
            """)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        return (try RunArtifacts.load(report.runDirectory.path), stub)
    }

    @Test("Label Studio: tasks with data and predictions whose names match the labeling config")
    func labelStudio() async throws {
        let ws = try TestWorkspace()
        let (run, stub) = try await Self.run(ws)
        let export = try ReviewExport(run: run, stage: "sentiment")
        let rows = try export.rows()
        #expect(rows.count == 12)
        let tasks = try #require(export.labelStudioTasks(rows).arrayValue)
        let config = export.labelStudioConfig(rows)
        #expect(config.contains(#"<Text name="text" value="$text"/>"#))
        #expect(config.contains(#"<Choices name="sentiment" toName="text" choice="single">"#))
        for label in ["positive", "negative", "neutral"] { #expect(config.contains(#"<Choice value="\#(label)"/>"#)) }
        for task in tasks {
            // Label Studio's import format: `data` of strings, `predictions` with a model version,
            // a score in [0, 1], and results naming a control and an object of the config.
            let data = try #require(task["data"]?.objectValue)
            #expect(data["text"]?.stringValue?.hasPrefix("Review number") == true)
            #expect(data["row_id"]?.stringValue != nil)
            #expect(data["sentiment"] == nil, "the gold label is hidden from reviewers")
            let prediction = try #require(task["predictions"]?.arrayValue?.first)
            #expect(prediction["model_version"]?.stringValue == "stub-model@r1+test@1")
            let score = try #require(prediction["score"]?.doubleValue)
            #expect(score > 0 && score <= 1)
            let result = try #require(prediction["result"]?.arrayValue?.first)
            #expect(result["type"] == "choices" && result["from_name"] == "sentiment" && result["to_name"] == "text")
            let choice = try #require(result["value"]?["choices"]?.arrayValue?.first?.stringValue)
            #expect(config.contains(#"<Choice value="\#(choice)"/>"#))
        }

        // A tag stage: one control per attribute, of the attribute's kind.
        let tags = try ReviewExport(run: run, stage: "attributes")
        let tagConfig = tags.labelStudioConfig(try tags.rows())
        #expect(tagConfig.contains(#"<Choices name="attributes.topic" toName="text" choice="single">"#))
        #expect(tagConfig.contains(#"<Choices name="attributes.aspects" toName="text" choice="multiple">"#))
        #expect(tagConfig.contains(#"<TextArea name="attributes.note" toName="text""#))
        let firstTask = try #require(tags.labelStudioTasks(try tags.rows()).arrayValue?.first)
        let results = try #require(firstTask["predictions"]?.arrayValue?.first?["result"]?.arrayValue)
        let names = Set(results.compactMap { $0["from_name"]?.stringValue })
        #expect(names.isSubset(of: ["attributes.topic", "attributes.urgent", "attributes.aspects", "attributes.note"]))
        #expect(!names.isEmpty)
        #expect(results.allSatisfy { ["choices", "textarea"].contains($0["type"]?.stringValue ?? "") })
        await stub.stop()
    }

    @Test("Argilla: records with fields, suggestions (value, score, agent) and metadata that fit the settings")
    func argilla() async throws {
        let ws = try TestWorkspace()
        let (run, stub) = try await Self.run(ws)
        let export = try ReviewExport(run: run, stage: "sentiment")
        let rows = try export.rows()
        let settings = export.argillaSettings(rows)
        let question = try #require(settings["questions"]?.arrayValue?.first)
        #expect(question["type"] == "label_selection" && question["name"] == "sentiment")
        let labels = Set(question["labels"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let fieldNames = Set(settings["fields"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
        for record in export.argillaRecords(rows) {
            #expect(record["id"]?.stringValue != nil)
            let fields = try #require(record["fields"]?.objectValue)
            #expect(Set(fields.keys).isSubset(of: fieldNames) && fields.values.allSatisfy { $0.stringValue != nil })
            let suggestion = try #require(record["suggestions"]?.arrayValue?.first)
            #expect(suggestion["question_name"] == "sentiment")
            #expect(labels.contains(suggestion["value"]?.stringValue ?? ""))
            #expect(suggestion["agent"]?.stringValue == "stub-model@r1+test@1")
            #expect(suggestion["score"]?.doubleValue != nil)
            #expect(record["metadata"]?["run_id"]?.stringValue == run.runID)
        }
        await stub.stop()
    }

    @Test("a seeded sample is reproducible and in output order; disagreements with an identical run are none")
    func sampleAndDisagreements() async throws {
        let ws = try TestWorkspace()
        let (run, stub) = try await Self.run(ws)
        let export = try ReviewExport(run: run, stage: "sentiment")
        let all = try export.rows().map(\.rowID)
        let a = try export.rows(sample: 4, seed: 7).map(\.rowID)
        let again = try export.rows(sample: 4, seed: 7).map(\.rowID)
        #expect(a.count == 4 && a == again)
        #expect(a == all.filter { a.contains($0) })
        let otherSeed = try export.rows(sample: 4, seed: 8).map(\.rowID)
        #expect(otherSeed != a)
        #expect(try export.rows(disagreeingWith: run).isEmpty)
        // Another run whose engine answers `negative` for reviews 1, 10 and 11: exactly those differ.
        let (other, otherStub) = try await Self.run(ws, seed: 6) { body in
            let prompt = CanonicalJSON.string(body["messages"] ?? nil)
            if body["structured_outputs"]?["choice"] != nil,
                ["Review number 1:", "Review number 10:", "Review number 11:"].contains(where: prompt.contains)
            {
                return .content("negative")
            }
            return StubEngine.followConstraint(body)
        }
        let differing = try export.rows(disagreeingWith: other).map(\.rowID)
        #expect(differing == ["r1", "r10", "r11"], "\(differing) of \(all.count)")
        await stub.stop()
        await otherStub.stop()
    }

    @Test("import-review reads Label Studio's JSON export: choices, text, ratings and regions become gold fields")
    func importReview() throws {
        let ws = try TestWorkspace()
        // The shape of Label Studio's export (its docs' task format): tasks with data, annotations
        // (result, was_cancelled, …) and predictions.
        let path = try ws.write(
            "export.json",
            """
            [
              {"id": 1, "project": 83, "data": {"text": "great blender", "row_id": "r0"},
               "annotations": [{"id": "1001", "was_cancelled": false, "ground_truth": false, "lead_time": 4.2,
                 "result": [
                   {"id": "a1", "from_name": "sentiment", "to_name": "text", "type": "choices", "origin": "manual", "value": {"choices": ["positive"]}},
                   {"id": "a2", "from_name": "attributes.note", "to_name": "text", "type": "textarea", "value": {"text": ["fast"]}},
                   {"id": "a3", "from_name": "judge.helpfulness", "to_name": "text", "type": "rating", "value": {"rating": 4}}
                 ], "task": 1, "completed_by": 10}],
               "predictions": [{"model_version": "model 1", "result": []}]},
              {"id": 2, "data": {"image": "https://example.com/opensource/label-studio/1.jpg"},
               "annotations": [{"id": "1002", "was_cancelled": false,
                 "result": [
                   {"from_name": "tag", "id": "Dx", "source": "$image", "to_name": "img", "type": "rectanglelabels",
                    "value": {"height": 10.4, "rectanglelabels": ["Moonwalker"], "rotation": 0, "width": 12.4, "x": 50.8, "y": 5.8}}
                 ]}]},
              {"id": 3, "data": {"text": "skipped"}, "annotations": [{"was_cancelled": true, "result": [{"from_name": "sentiment", "type": "choices", "value": {"choices": ["negative"]}}]}]}
            ]
            """)
        let (rows, skipped) = try ReviewImport.rows(labelStudioExport: path)
        #expect(skipped == 1)
        #expect(rows.count == 2)
        #expect(rows[0]["gold_sentiment"] == "positive")
        #expect(rows[0]["gold_attributes_note"] == "fast")
        #expect(rows[0]["gold_judge_helpfulness"] == 4)
        #expect(rows[0]["row_id"] == "r0" && rows[0]["text"] == "great blender")
        #expect(rows[1]["gold_tag"]?["rectanglelabels"] == ["Moonwalker"])
        let bad = try ws.write("bad.json", #"{"data": {}}"#)
        let error = #expect(throws: LabelForgeError.self) { try ReviewImport.rows(labelStudioExport: bad) }
        #expect(error?.message.contains("a Label Studio export is a JSON list of tasks") == true)
    }
}
