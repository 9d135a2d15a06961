import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// Config and stage logic for images, captions and pairwise judging.
@Suite struct MultimodalConfigTests {
    static let head =
        "dataset: {path: d.jsonl, image_fields: [image]}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\n"

    @Test(
        "image settings are checked and name their place",
        arguments: [
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: c, type: caption}]\n",
                "a caption stage needs an image"
            ),
            (
                head + "stages: [{id: t, type: tag, images: [photo], attributes: [{name: a, type: string}]}]\n",
                "stages[0].images: 'photo' is not an image field of the dataset"
            ),
            (
                head + "stages: [{id: r, type: rubric_score, mode: pairwise, criteria: [{name: q}]}]\n",
                "needs 'candidates'"
            ),
            (
                head
                    + "stages: [{id: r, type: rubric_score, mode: pointwise, candidates: [a, b], criteria: [{name: q}]}]\n",
                "'candidates' applies to mode: pairwise only"
            ),
            (
                head + "stages: [{id: c, type: classify, style: short, labels: [a, b]}]\n",
                "'style' applies to caption stages only"
            ),
            (
                "dataset: {path: d.jsonl, max_image_bytes: 0}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: c, type: classify, labels: [a, b]}]\n",
                "dataset.max_image_bytes: max_image_bytes must be at least 1"
            ),
        ])
    func invalid(yaml: String, fragment: String) throws {
        let ws = try TestWorkspace()
        let path = try ws.write("c.yaml", yaml)
        let error = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: path) }
        #expect(error?.code == .invalidConfig)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test("stages send the dataset's images by default; images: [] makes a stage text-only; a folder is an imagefolder")
    func defaults() throws {
        let ws = try TestWorkspace()
        try FileManager.default.createDirectory(atPath: ws.path("pics"), withIntermediateDirectories: true)
        let path = try ws.write(
            "c.yaml",
            Self.head + "stages: [{id: c, type: caption}, {id: t, type: classify, labels: [a, b], images: []}]\n")
        let config = try RunConfig.load(file: path)
        #expect(config.stages[0].images == ["image"])
        let caption = try #require(config.stages[0].options as? CaptionOptions)
        #expect(caption.style == "concise" && caption.maxWords == 30)
        #expect(config.stages[1].images.isEmpty)
        let folder = try RunConfig.load(
            file: ws.write(
                "f.yaml",
                "dataset: {path: \(ws.path("pics"))}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: c, type: caption}]\n"
            ))
        #expect(folder.dataset.format == .imagefolder)
        #expect(folder.dataset.imageFields == ["image"])
    }

    @Test("an image goes first as an image_url data URL part; the template sees its hash and size, not its path")
    func imageParts() throws {
        let ws = try TestWorkspace()
        try ws.write("p/pack.yaml", "name: p\nversion: \"1\"\n")
        try ws.write("p/caption.mustache", "{{image.width}}x{{image.height}} {{image.format}} in {{max_words}} words")
        let config = try RunConfig.load(file: ws.write("c.yaml", Self.head + "stages: [{id: c, type: caption}]\n"))
        let png = try Data(
            contentsOf: URL(
                fileURLWithPath: LabelForgeBinary.projectRoot() + "/data/shapes/images/circle/shape_000.png"))
        let image = try ImageFile.parse(png, name: "x")
        let row = RowContext(rowID: "r", index: 0, fields: ["image": "secret/dir/x.png"], images: ["image": image])
        let stage = try #require(makeStage(config.stages[0]) as? any ChatStage)
        let request = try stage.request(
            for: row, pack: PromptPack.load(directory: ws.path("p")), seed: 1, cachePrompt: true)
        let parts = try #require(request.messages[0].content.arrayValue)
        #expect(parts.count == 2)
        #expect(parts[0] == ["type": "image_url", "image_url": ["url": .string(image.dataURL)]])
        #expect(parts[1] == ["type": "text", "text": "96x96 png in 30 words"])
        #expect(request.constraint == nil)
        // The cache key holds the image's hash, never its bytes or path.
        let body = EngineDialect.vllm.body(for: request, modelID: "m")
        let material = CanonicalJSON.string(
            CacheKey.material(kind: "chat", dialect: "vllm", modelID: "m", modelRevision: "r", body: body))
        #expect(material.contains(image.contentHash))
        #expect(!material.contains("base64") && !material.contains("secret/dir"))
    }

    @Test("captions are trimmed and unwrapped; long or cut-off ones are flagged, empty ones fail")
    func captions() throws {
        let ws = try TestWorkspace()
        let config = try RunConfig.load(
            file: ws.write("c.yaml", Self.head + "stages: [{id: c, type: caption, max_words: 3}]\n"))
        let stage = try #require(makeStage(config.stages[0]) as? CaptionStage)
        func parse(_ text: String, finish: String = "stop") -> Result<[String: JSONValue], StageFailure> {
            let raw: JSONValue = [
                "choices": [["message": ["content": .string(text)], "finish_reason": .string(finish)]],
                "usage": ["prompt_tokens": 1, "completion_tokens": 1],
            ]
            return stage.parse(try! ChatResponse(raw: raw), dialect: .vllm)
        }
        #expect(
            try parse("  Caption: \"a red circle\"\n").get() == [
                "caption": "a red circle", "words": 3, "truncated": false, "too_long": false,
            ])
        #expect(try parse("two blue squares on gray", finish: "length").get()["truncated"] == true)
        #expect(try parse("two blue squares on gray").get()["too_long"] == true)
        #expect(throws: StageFailure.self) { try parse("  \"\" ").get() }
    }
}

extension MultimodalConfigTests {
    @Test("config.resolved.yaml loads back as the same config, for every stage type")
    func resolvedRoundTrip() throws {
        let ws = try TestWorkspace()
        try ws.write("pool.jsonl", "{\"text\": \"x\", \"label\": \"a\"}\n{\"text\": \"y\", \"label\": \"B\"}\n")
        let config = try RunConfig.load(
            file: ws.write(
                "c.yaml",
                Self.head.replacingOccurrences(
                    of: "engines: [{model: {id: m}}]",
                    with:
                        "engines: [{model: {id: m}}, {name: vectors, task: embed, threads: 1, model: {id: e}}, {name: ranker, task: rerank, model: {id: r}}]"
                )
                    + """
                    stages:
                      - {id: c, type: caption, style: detailed}
                      - {id: k, type: classify, labels: [a, b], images: []}
                      - {id: t, type: tag, attributes: [{name: a, type: string}]}
                      - {id: r, type: rubric_score, criteria: [{name: q}]}
                      - {id: p, type: rubric_score, mode: pairwise, candidates: [x, y], criteria: [{name: q}]}
                      - {id: g, type: generate, n: 2, template: tag, sampling: {stop: ["\\n"]}}
                      - {id: f, type: filter, keep: {field: k.label, in: [a]}}
                      - {id: d, type: dedup, field: g.text}
                      - {id: dm, type: dedup, field: g.text, method: minhash, shingle: char, ngram: 4, threshold: 0.7}
                      - {id: de, type: dedup, field: g.text, method: embedding, engine: vectors, threshold: 0.9}
                      - {id: s, type: synthesize, n: 3, template: tag, schema: {type: object, properties: {q: {type: string}}}}
                      - {id: sc, type: synthesize_conversation, template: tag, assistant_template: tag, turns: 2, stop_phrases: [END]}
                      - {id: fr, type: filter, keep: {field: k.label, in: [a]}, record: [k.label]}
                      - {id: sa, type: sample, fraction: 0.25}
                      - {id: nz, type: normalize, field: k.confidence, method: percentile, group_by: k.label}
                      - {id: ke, type: classify, method: embedding, field: g.text, labels: [a, b], examples: {path: pool.jsonl, field: text, vote: knn, neighbours: 3}, fallback: {below: 0.5, engine: local}}
                      - {id: ca, type: calibrate, stage: k, gold_field: gold, method: isotonic, split: 0.3}
                      - {id: v, type: embed, field: g.text, prefix: "query: ", batch_size: 8}
                      - {id: rr, type: rerank, query: g.text, documents: m.negatives, batch_size: 4}
                      - {id: m, type: mine_hard_negatives, query: g.text, positive: k.label, corpus: {path: c.jsonl}, relative_margin: 0.05, range_min: 1, range_max: 12, sampling_strategy: random, output_format: n-tuple-scores}
                    """))
        #expect(Set(config.stages.map(\.type)) == Set(StageRegistry.names))
        // Stages go to the first engine that serves what they ask for.
        #expect(config.stages.first { $0.type == "embed" }?.engine == "vectors")
        #expect(config.stages.first { $0.type == "classify" }?.engine == "local")
        let reloaded = try RunConfig.load(file: ws.write("resolved.yaml", try ResolvedYAML.string(config.resolvedJSON)))
        #expect(reloaded.resolvedJSON == config.resolvedJSON)
    }
}

extension MultimodalConfigTests {
    @Test("a pairwise row whose candidate is null or empty fails without a request")
    func missingCandidate() throws {
        let ws = try TestWorkspace()
        let config = try RunConfig.load(
            file: ws.write(
                "c.yaml",
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\n"
                    + "stages: [{id: p, type: rubric_score, mode: pairwise, candidates: [x, y], criteria: [{name: q}]}]\n"
            ))
        let stage = try #require(makeStage(config.stages[0]) as? any ChatStage)
        #expect(stage.inputFailure(in: RowContext(rowID: "r", index: 0, fields: ["x": "one", "y": "two"])) == nil)
        for y: JSONValue in [.null, "", "  "] {
            let failure = stage.inputFailure(in: RowContext(rowID: "r", index: 0, fields: ["x": "one", "y": y]))
            #expect(failure?.errorClass == "missing_candidate")
        }
    }
}
