import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct ConfigTests {
    @Test("a typo names the file, line and key path and suggests the valid key")
    func typo() throws {
        let ws = try TestWorkspace()
        let path = try ws.write(
            "c.yaml",
            """
            dataset: {path: d.jsonl}
            engines:
              - kind: local
                model: {id: m}
            prompts: {pack: p}
            stages:
              - id: s
                type: classify
                labels: [a, b]
                sampling:
                  temprature: 0.5
            """)
        let error = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: path) }
        #expect(error?.code == .invalidConfig)
        #expect(error?.message.contains("\(path):11:") == true)
        #expect(error?.message.contains("stages[0].sampling.temprature") == true)
        #expect(error?.message.contains("Did you mean 'temperature'?") == true)
    }

    @Test("a pipeline whose stages send no request needs neither engines nor a prompt pack")
    func noEngineNeeded() async throws {
        let ws = try TestWorkspace()
        try ws.write(
            "d.jsonl",
            ["a b c d", "a b c d", "e f g h", "score 3"].enumerated().map {
                CanonicalJSON.string(["id": .string("r\($0)"), "text": .string($1), "score": .int(Int64($0))])
            }.joined(separator: "\n") + "\n")
        let path = try ws.write(
            "c.yaml",
            """
            dataset: {path: d.jsonl, id_field: id}
            cache: {path: cache.sqlite}
            stages:
              - {id: unique, type: dedup, field: text}
              - {id: kept, type: filter, keep: {field: text, ne: "e f g h"}}
              - {id: z, type: normalize, field: score}
            """)
        let report = try await Runner(
            options: RunOptions(configPath: path, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        #expect(try StageGraphTests.lines(report.runDirectory.outputPath(stage: "z")).count == 2)
        let resolved = try String(contentsOfFile: report.runDirectory.path + "/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains("engines: []") && resolved.contains("pack: null"), "\(resolved)")

        // A stage that does send requests still says what it needs, and where.
        let embed = try ws.write(
            "e.yaml", "dataset: {path: d.jsonl}\nstages:\n  - {id: vec, type: embed, field: text}\n")
        let noEngine = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: embed) }
        #expect(
            noEngine?.message.contains("\(embed):3:") == true
                && noEngine?.message.contains("stage 'vec' (embed) sends requests to an engine with task: embed")
                    == true,
            "\(noEngine?.message ?? "")")
        let classify = try ws.write(
            "k.yaml",
            "dataset: {path: d.jsonl}\nengines: [{kind: local, model: {id: m}}]\n"
                + "stages:\n  - {id: s, type: classify, labels: [a, b]}\n")
        let noPack = #expect(throws: LabelForgeError.self) { try RunPlan.prepare(configPath: classify, limit: nil) }
        #expect(
            noPack?.message.contains("stage 's' renders template 'classify', and the config names no prompt pack")
                == true, "\(noPack?.message ?? "")")
    }

    @Test(
        "wrong types and missing fields name their place",
        arguments: [
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}, slots: two}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\n",
                "engines[0].slots: expected an integer"
            ),
            ("dataset: {format: jsonl}\n", "missing required key 'dataset.path'"),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: clasify, labels: [a, b]}]\n",
                "Did you mean 'classify'?"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, lables: [a, b]}]\n",
                "unknown key 'stages[0].lables'. Did you mean 'labels'?"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b], n: 2}]\n",
                "'n' applies to generate and synthesize stages only"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: tag, attributes: [{name: a, type: string}], labels: [a, b]}]\n",
                "'labels' applies to classify stages only"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b], sampling: {stop: [x]}}]\n",
                "'stop' applies to generate, synthesize and synthesize_conversation stages only"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\ncache: {kind: s3, prefix: p}\n",
                "cache: a cache of kind 's3' needs 'bucket'"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\ncache: {kind: s3, bucket: b, path: x.sqlite}\n",
                "Use kind: tiered"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\ncache: {bucket: b}\n",
                "'bucket' belongs to an S3 cache: add kind: s3"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\ncache: {kind: s3, bucket: b, endpoint: 127.0.0.1:9000}\n",
                "'endpoint' must start with http://"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\ncache: {kind: redis}\n",
                "cache.kind"
            ),
            (
                "dataset: {path: d.jsonl}\nengines: [{kind: ray, address: \"http://h:8265\", base_url: \"http://e:8000\", model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\n",
                "engines[0]: an engine of kind 'ray' needs 'output_dir'"
            ),
        ])
    func wrongTypes(yaml: String, fragment: String) throws {
        let ws = try TestWorkspace()
        let path = try ws.write("c.yaml", yaml)
        let error = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: path) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test(
        "a Ray engine with processor: vllm runs vLLM in the job with the determinism defaults under the config's engine_kwargs; an HTTP one resolves as it always did"
    )
    func rayProcessors() throws {
        let ws = try TestWorkspace()
        let tail = "prompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\n"
        let vllm = try RunConfig.load(
            file: try ws.write(
                "v.yaml",
                "run: {seed: 11, determinism: strict}\ndataset: {path: d.jsonl}\n"
                    + "engines: [{kind: ray, processor: vllm, address: \"http://h:8265\", output_dir: out, "
                    + "model: {id: Qwen/Qwen2.5-7B-Instruct, revision: abc}, engine_kwargs: {max_model_len: 4096, seed: 5}}]\n"
                    + tail))
        let engine = try #require(vllm.engines.first)
        #expect(engine.dialect == "vllm")
        let kwargs: JSONValue = [
            "seed": 5, "generation_config": "vllm", "revision": "abc", "enable_prefix_caching": false,
            "max_model_len": 4096,
            "structured_outputs_config": ["backend": "xgrammar", "disable_any_whitespace": true],
        ]
        #expect(
            engine.rayProcessor(seed: vllm.seed, strict: true)
                == .vllm(
                    modelSource: "Qwen/Qwen2.5-7B-Instruct", engineKwargs: kwargs,
                    environment: ["VLLM_BATCH_INVARIANT": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"]))
        let resolved = try #require(vllm.resolvedJSON["engines"]?.arrayValue?.first)
        #expect(resolved["processor"] == "vllm" && resolved["engine_kwargs"] == ["max_model_len": 4096, "seed": 5])

        let http = try RunConfig.load(
            file: try ws.write(
                "h.yaml",
                "dataset: {path: d.jsonl}\nengines: [{kind: ray, address: \"http://h:8265\", base_url: \"http://e:8000\", "
                    + "output_dir: out, model: {id: m, revision: r}}]\n" + tail))
        #expect(http.engines[0].rayProcessor(seed: 0, strict: false) == .http(url: "http://e:8000"))
        let httpResolved = try #require(http.resolvedJSON["engines"]?.arrayValue?.first?.objectValue)
        #expect(httpResolved["processor"] == nil && httpResolved["engine_kwargs"] == nil)
        #expect(
            Set(httpResolved.keys).isSuperset(of: ["address", "python", "output_dir", "batch_size", "concurrency"]))
    }

    @Test(
        "a Ray engine's processor settings are refused where they do not apply",
        arguments: [
            (
                "processor: vllm, dialect: openai, model: {id: m}", "set dialect: vllm"
            ),
            (
                "processor: vllm, base_url: \"http://e:8000\", model: {id: m}",
                "'base_url' does not apply with processor: vllm"
            ),
            (
                "base_url: \"http://e:8000\", engine_kwargs: {max_model_len: 4}, model: {id: m}",
                "'engine_kwargs' applies with processor: vllm only"
            ),
            ("processor: vllm, engine_kwargs: [1], model: {id: m}", "'engine_kwargs' must be a mapping"),
            ("processor: sglang, model: {id: m}", "'sglang'"),
            ("processor: vllm, task: rerank, model: {id: m}", "processor: vllm cannot rerank"),
            ("processor: vllm, engine_kwargs: {hf_token: hf_abc}, model: {id: m}", "set HF_TOKEN in the cluster"),
        ])
    func rayProcessorRefusals(engine: String, fragment: String) throws {
        let ws = try TestWorkspace()
        let path = try ws.write(
            "c.yaml",
            "dataset: {path: d.jsonl}\nengines: [{kind: ray, address: \"http://h:8265\", output_dir: out, \(engine)}]\n"
                + "prompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\n")
        let error = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: path) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test("an S3 cache block resolves with its bucket (never credentials); a SQLite one resolves as it always did")
    func cacheBlock() throws {
        let ws = try TestWorkspace()
        let base =
            "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\n"
        let s3 = try RunConfig.load(
            file: try ws.write(
                "s3.yaml",
                base
                    + "cache: {kind: tiered, path: l.sqlite, bucket: b, prefix: /team/x/, endpoint: \"http://h:9000/\", region: eu-west-1}\n"
            ))
        #expect(s3.cacheKind == "tiered" && s3.cacheS3?.prefix == "team/x" && s3.cacheS3?.endpoint == "http://h:9000")
        #expect(
            s3.resolvedJSON["cache"]
                == [
                    "kind": "tiered", "path": .string(ws.path("l.sqlite")), "match_engine_version": false,
                    "bucket": "b",
                    "prefix": "team/x", "endpoint": "http://h:9000", "region": "eu-west-1",
                ])
        let sqlite = try RunConfig.load(file: try ws.write("q.yaml", base + "cache: {path: l.sqlite}\n"))
        #expect(sqlite.resolvedJSON["cache"] == ["path": .string(ws.path("l.sqlite")), "match_engine_version": false])
    }

    @Test("defaults are filled in and strict mode forces one slot and one request in flight")
    func defaults() throws {
        let ws = try TestWorkspace()
        let path = try ws.write(
            "c.yaml",
            "run: {determinism: strict}\ndataset: {path: d.csv}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstages: [{id: s, type: classify, labels: [a, b]}]\n"
        )
        let config = try RunConfig.load(file: path)
        #expect(config.dataset.format == .csv)
        #expect(config.engines[0].kind.name == .local)
        #expect(config.engines[0].dialect == "llamacpp")
        #expect(config.engines[0].slots == 1)
        #expect(config.engines[0].maxInFlight == 1)
        #expect(config.stages[0].template == "classify")
        #expect(config.resolvedJSON["stages"]?.arrayValue?.first?["sampling"]?["temperature"] == 0.0)
    }
}

@Suite struct PromptPackTests {
    @Test("templates render as plain text, never HTML-escaped")
    func noEscaping() throws {
        let ws = try TestWorkspace()
        try ws.write("p/pack.yaml", "name: p\nversion: \"2\"\n")
        try ws.write("p/t.mustache", "Review: {{text}}")
        let pack = try PromptPack.load(directory: ws.path("p"))
        #expect(try pack.render("t", context: ["text": #"don't say "<b>" & go"#]) == #"Review: don't say "<b>" & go"#)
        #expect(pack.name == "p" && pack.version == "2")
    }

    @Test("the pack hash changes when any file changes")
    func hash() throws {
        let ws = try TestWorkspace()
        try ws.write("p/pack.yaml", "name: p\nversion: \"2\"\n")
        try ws.write("p/t.mustache", "Review: {{text}}")
        let before = try PromptPack.load(directory: ws.path("p")).contentHash
        try ws.write("p/t.mustache", "Review:  {{text}}")
        #expect(try PromptPack.load(directory: ws.path("p")).contentHash != before)
    }

    @Test("top-level fields are found, section-local names are not")
    func fields() {
        let fields = PromptPack.topLevelFields(
            in: "{{text}} {{{raw}}} {{& amp}} {{#labels}}{{name}}{{/labels}} {{^empty}}x{{/empty}} {{! note}}")
        #expect(fields == ["text", "raw", "amp", "labels", "empty"])
    }

    @Test("only the names a template can read are handed to mustache, sections' outer lookups included")
    func readsOnlyWhatItNeeds() throws {
        let text = "{{#labels}}{{name}} of {{text}}; {{/labels}}{{caption.caption}} {{{raw}}}"
        #expect(PromptPack.rootNamesAtAnyDepth(in: text) == ["labels", "name", "text", "caption", "raw"])
        #expect(PromptPack.rootNamesAtAnyDepth(in: "{{> other}}") == nil)
        #expect(PromptPack.rootNamesAtAnyDepth(in: "{{=<% %>=}}<% text %>") == nil)
        let ws = try TestWorkspace()
        try ws.write("p/pack.yaml", "name: p\nversion: \"1\"\n")
        try ws.write("p/t.mustache", text)
        let pack = try PromptPack.load(directory: ws.path("p"))
        let context: [String: JSONValue] = [
            "labels": [["name": "a"], ["name": "b"]], "text": "T", "caption": ["caption": "C"], "raw": "<r>",
            "unused": ["big": [1, 2, 3]],
        ]
        #expect(try pack.render("t", context: context) == "a of T; b of T; C <r>")
    }
}

@Suite struct ClassifyConfidenceTests {
    @Test("confidence renormalizes over the reported alternatives that lead to an allowed label")
    func renormalizes() {
        // Measured on llama.cpp with a label grammar: raw logprobs at temperature 0.
        let token = TokenLogprobFixture.make(
            "neutral", -1.4409, [("neutral", -1.4409), ("negative", -2.3098), ("positive", -2.6442), ("The", -3.2012)])
        let confidence = Answers.confidence(
            of: "neutral", among: ["positive", "negative", "neutral"], logprobs: [token])
        #expect(abs(confidence! - 0.5815) < 0.001)
    }

    @Test("labels split over several tokens multiply along the path")
    func multiToken() {
        let first = TokenLogprobFixture.make("n", log(0.6), [("n", log(0.6)), ("p", log(0.4))])
        let second = TokenLogprobFixture.make("egative", log(0.5), [("egative", log(0.5)), ("eutral", log(0.5))])
        let confidence = Answers.confidence(
            of: "negative", among: ["positive", "negative", "neutral"], logprobs: [first, second])
        #expect(abs(confidence! - 0.3) < 1e-6)
    }

    @Test("no logprobs means no confidence")
    func none() {
        #expect(Answers.confidence(of: "a", among: ["a", "b"], logprobs: nil) == nil)
    }
}

@Suite struct RubricScoreTests {
    static func tokens(_ pieces: [(String, Double, [(String, Double)])]) -> [TokenLogprob] {
        pieces.map { TokenLogprobFixture.make($0.0, $0.1, $0.2) }
    }

    @Test("the expected score weights the valid levels at the score's token")
    func expected() throws {
        // As llama.cpp tokenized a real answer: `{"helpful` `ness` `":` ` ` `1` `,`
        let top: [(String, Double)] = [
            ("1", log(0.4)), ("3", log(0.2)), ("2", log(0.2)), ("x", log(0.1)), ("9", log(0.1)),
        ]
        let pieces: [(String, Double, [(String, Double)])] = [
            ("{\"helpful", -1, []), ("ness", -0.4, []), ("\":", -0.1, []), (" ", -0.5, []), ("1", log(0.4), top),
            (",", -0.7, []),
        ]
        let logprobs = Self.tokens(pieces)
        let value = try #require(
            RubricScoreStage.expectedScore(criterion: "helpfulness", range: 1...5, sampled: 1, logprobs: logprobs))
        // (1·0.4 + 3·0.2 + 2·0.2) / 0.8 = 1.75; "x" is not a level and 9 is off the scale.
        #expect(abs(value - 1.75) < 1e-9)
    }

    @Test("a score spelled over several tokens has no expectation")
    func multiToken() {
        let logprobs = Self.tokens([("\"q\": ", -1, []), ("1", -0.1, [("1", -0.1)]), ("0", -0.1, [])])
        #expect(RubricScoreStage.expectedScore(criterion: "q", range: 1...10, sampled: 10, logprobs: logprobs) == nil)
    }
}
