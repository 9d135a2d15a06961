import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `labelforge ablate`: the matrix, variant configs, one engine set and cache, the summary, resume.
@Suite struct AblationTests {
    static func workspace(baseURL: String) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        try ws.writePromptPack()
        try ws.write("prompts-b/pack.yaml", "name: b\nversion: \"1\"\n")
        try ws.write(
            "prompts-b/classify.mustache", "Variant B. Sentiment of: {{text}}\nAnswer with one of {{label_names}}.\n")
        try ws.write(
            "configs/base.yaml",
            """
            run: {name: base, seed: 1}
            dataset: {path: ../data/reviews.jsonl, id_field: id}
            engines:
              - {name: vllm, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
              - {name: unused, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: m, revision: r, path: ../models/m.gguf}}
            prompts: {pack: ../prompts}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], gold_field: sentiment, engine: vllm}
            """)
        return ws
    }

    /// Right for prompt pack A; for pack B, right only on even reviews with an odd seed.
    @Sendable static func answer(_ body: JSONValue) -> StubAnswer {
        let prompt = CanonicalJSON.string(body["messages"] ?? nil)
        let number = Int(prompt.split(separator: "number ")[1].prefix { $0.isNumber }) ?? 0
        let truth = ["positive", "negative", "neutral"][number % 3]
        guard prompt.contains("Variant B") else { return .content(truth) }
        let seed = body["seed"]?.intValue ?? 0
        return .content(number % 2 == 0 && seed % 2 == 1 ? truth : "neutral")
    }

    @Test("the matrix: product of the axes in order, minus exclude, plus include, named after the values")
    func matrix() throws {
        let ws = try Self.workspace(baseURL: "http://127.0.0.1:9")
        let file = try ws.write(
            "configs/ablation.yaml",
            """
            base: base.yaml
            matrix:
              prompts.pack: [../prompts, ../prompts-b]
              run.seed: [1, 2]
              stages.sentiment.sampling.temperature: [0, 0.5]
            exclude:
              - {run.seed: 2, stages.sentiment.sampling.temperature: 0}
            include:
              - {prompts.pack: ../prompts, run.seed: 3}
            """)
        let ablation = try AblationConfig.load(file: file)
        let variants = ablation.variants
        #expect(variants.count == 2 * 2 * 2 - 2 + 1)
        #expect(variants[0].name == "pack=prompts_seed=1_temperature=0")
        #expect(variants.last?.name == "pack=prompts_seed=3")
        #expect(Set(variants.map(\.name)).count == variants.count)
        // A variant's config: the base with the values set, paths absolute, loadable as is.
        let yaml = try ablation.configYAML(for: variants[5])
        let path = try ws.write("variant.yaml", yaml)
        let config = try RunConfig.load(file: path)
        #expect(config.promptPack == ws.path("prompts-b"))
        #expect(config.dataset.path == ws.path("data/reviews.jsonl"))
        // Every path of the base stays right in the variant's file, model files included.
        #expect(config.engines[1].model.path == ws.path("models/m.gguf"))
        #expect(config.seed == variants[5].assignments["run.seed"]?.intValue.map(UInt64.init))
        #expect(
            config.stages[0].sampling.temperature
                == variants[5].assignments["stages.sentiment.sampling.temperature"]?.doubleValue)

        let bad = try ws.write(
            "configs/bad.yaml", "base: base.yaml\nmatrix:\n  stages.nope.sampling.temperature: [0]\n")
        #expect(throws: LabelForgeError.self) {
            try AblationConfig.load(file: bad).configYAML(for: AblationConfig.load(file: bad).variants[0])
        }
        let unknown = try ws.write(
            "configs/unknown.yaml", "base: base.yaml\nmatrix: {run.seed: [1]}\nexclude: [{run.sed: 1}]\n")
        #expect(throws: LabelForgeError.self) { try AblationConfig.load(file: unknown) }
    }

    @Test(
        "named values (a whole stage list) name their variants; set: applies to every variant; an examples path in a value is made absolute; the checkout's configs/mvp-methods.yaml loads as 4 runnable variants"
    )
    func namedValuesAndSet() async throws {
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try Self.workspace(baseURL: stub.baseURL)
        try ws.write("data/pool.jsonl", "{\"text\": \"fine\", \"sentiment\": \"neutral\"}\n")
        let file = try ws.write(
            "configs/named.yaml",
            """
            base: base.yaml
            set:
              run.seed: 9
              engines:
                - {name: vllm, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}}
                - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}}
            matrix:
              stages:
                llm:
                  - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], gold_field: sentiment}
                shots:
                  - {id: sentiment, type: classify, method: embedding, field: text, labels: [positive, negative, neutral], examples: {path: ../data/pool.jsonl, label_field: sentiment}}
              run.name: [a, b]
            exclude:
              - {stages: llm, run.name: b}
            """)
        let ablation = try AblationConfig.load(file: file)
        #expect(ablation.variants.map(\.name) == ["stages=llm_name=a", "stages=shots_name=a", "stages=shots_name=b"])
        let config = try RunConfig.load(
            file: try ws.write("v.yaml", try ablation.configYAML(for: ablation.variants[1])))
        #expect(config.seed == 9 && config.engines.map(\.name) == ["vllm", "vectors"])
        let options = try #require(config.stages[0].options as? ClassifyOptions)
        #expect(options.method == "embedding" && options.examples?.path == ws.path("data/pool.jsonl"))
        #expect(config.stages[0].engine == "vectors")

        // Run: the first variant uses only the chat engine, the others only the embedding one; the
        // engines started for the group serve them all.
        let directory = try await AblationRunner(logger: CapturedLogs().logger, cachePath: ws.path("cache.sqlite"))
            .start(configPath: file, ablationsDir: ws.path("ablations"))
        let summary = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json")))
        let statuses = summary["variants"]?.arrayValue?.map { $0["status"] }
        #expect(statuses == ["completed", "completed", "completed"])
        #expect(stub.chatRequests == 12 && !stub.embeddingRequests.isEmpty)

        let checkout = LabelForgeBinary.projectRoot() + "/configs/mvp-methods.yaml"
        let methods = try AblationConfig.load(file: checkout)
        #expect(methods.variants.map(\.name) == ["stages=llm", "stages=embedding", "stages=prototypes", "stages=knn"])
        for variant in methods.variants {
            let loaded = try RunConfig.load(
                file: try ws.write("\(variant.name).yaml", try methods.configYAML(for: variant)))
            #expect(loaded.stages.map(\.id) == ["sentiment", "attributes"], "\(variant.name)")
        }
    }

    @Test("ablate: every variant a run on shared engines and cache; requests sent = distinct keys; summary; resume")
    func ablate() async throws {
        let stub = try await StubEngine.start(answer: Self.answer)
        defer { Task { await stub.stop() } }
        let ws = try Self.workspace(baseURL: stub.baseURL)
        let file = try ws.write(
            "configs/ablation.yaml",
            """
            base: base.yaml
            name: packs
            matrix:
              prompts.pack: [../prompts, ../prompts-b]
              run.seed: [1, 2]
            """)
        // Before: every variant's plan, and the distinct new requests across them.
        let before = try await AblationPlan.make(
            configPath: file, limit: nil, cachePath: ws.path("cache.sqlite"), runsDir: ws.path("runs"),
            logger: CapturedLogs().logger)
        #expect(before.variants.count == 4 && before.variants.allSatisfy { $0.report.newRequests == 12 })
        #expect(before.distinctNewRequests == 48)
        #expect(stub.chatRequests == 0)

        let runner = AblationRunner(logger: CapturedLogs().logger, cachePath: ws.path("cache.sqlite"))
        let directory = try await runner.start(configPath: file, ablationsDir: ws.path("ablations"))
        let after = try await AblationPlan.make(
            configPath: file, limit: nil, cachePath: ws.path("cache.sqlite"), runsDir: ws.path("runs"),
            logger: CapturedLogs().logger)
        #expect(after.distinctNewRequests == 0 && after.variants.allSatisfy { $0.report.cachedRequests == 12 })
        let summary = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json")))
        let variants = try #require(summary["variants"]?.arrayValue)
        #expect(
            variants.map { $0["name"]?.stringValue } == [
                "pack=prompts_seed=1", "pack=prompts_seed=2", "pack=prompts-b_seed=1", "pack=prompts-b_seed=2",
            ])
        #expect(variants.allSatisfy { $0["status"] == "completed" })
        // Pack A is always right; pack B only on the even reviews with seed 1 (odd seeds vary).
        #expect(variants[0]["gold"]?["sentiment.label"]?["accuracy"] == 1)
        #expect(summary["best"]?["sentiment.label.accuracy"] == "pack=prompts_seed=1")

        // Every distinct request key went to the engine once, whatever the variants share.
        let (sent, distinctKeys) = try RunFiles.ablationRequests(summary: summary)
        #expect(sent == distinctKeys)
        #expect(stub.chatRequests == distinctKeys)

        // Agreement: the kappa matrix has 1 on its diagonal, pack A's variants agree fully.
        let agreement = try #require(summary["agreement"]?.arrayValue?.first)
        #expect(agreement["stage"] == "sentiment" && agreement["field"] == "label")
        let kappa = try #require(agreement["cohen_kappa"]?.arrayValue?.map { $0.arrayValue ?? [] })
        #expect(kappa.count == 4 && (0..<4).allSatisfy { kappa[$0][$0] == 1 })
        #expect(kappa[0][1] == 1)
        #expect(
            agreement["fleiss_kappa"]?.doubleValue != nil && agreement["krippendorff_alpha_nominal"]?.doubleValue != nil
        )
        let markdown = try String(contentsOfFile: directory + "/summary.md", encoding: .utf8)
        #expect(markdown.contains("# Ablation packs") && markdown.contains("★") && markdown.contains("Cohen's kappa"))

        // Resume: an unfinished variant runs again (from the cache), finished ones are kept.
        var state = try AblationState.load(from: directory)
        let keptRun = state.variants[0].run
        state.variants[3].status = "pending"
        state.variants[3].run = nil
        try state.save(in: directory)
        let requests = stub.chatRequests
        try await runner.resume(directory: directory)
        let resumed = try AblationState.load(from: directory)
        #expect(resumed.variants.allSatisfy { $0.status == "completed" })
        #expect(resumed.variants[0].run == keptRun)
        #expect(resumed.variants[3].run != nil && resumed.variants[3].run != state.variants[3].run)
        #expect(stub.chatRequests == requests)
    }
}

extension AblationTests {
    @Test("charts draw any number: huge, infinite and NaN values neither crash nor break the page")
    func chartsTakeAnyNumber() {
        #expect(SVG.format(1e300) == "1e+300")
        #expect(SVG.format(.infinity) == "inf")
        #expect(SVG.format(12.5) == "12.500" && SVG.format(1234.4) == "1234")
        let svg = SVG.histogram([1, 2, 3, 1e300, .nan, -.infinity])
        #expect(svg.hasPrefix("<svg") && svg.contains(">3<"))
    }
}
