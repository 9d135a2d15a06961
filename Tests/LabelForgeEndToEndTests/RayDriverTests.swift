import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

/// The Ray driver's vLLM processor path (`scripts/ray_driver.py --processor vllm`), everywhere but
/// the engine itself, which needs GPUs: the bodies LabelForge sends in vLLM's dialect become the
/// rows Ray's vLLM stage reads (through Arrow, as Ray Data's blocks carry them), the processor
/// configs validate with Ray 2.60's own `vLLMEngineProcessorConfig`, and rows shaped like the
/// stage's output (`vLLMOutputData`'s fields) come back as bodies LabelForge's own parsers read.
@Suite struct RayDriverTests {
    static let labels = ["positive", "negative", "neutral"]
    static let schema: JSONValue = [
        "type": "object", "required": ["topic", "urgent"], "additionalProperties": false,
        "properties": ["urgent": ["type": "boolean"], "topic": ["type": "string"]],
    ]

    /// `{"id", "path", "body"}` lines as the Ray transport writes them.
    static func requests() -> [JSONValue] {
        let messages = [
            ChatMessage(role: "system", text: "You label reviews."), ChatMessage(role: "user", text: "Great blender."),
        ]
        let dialect = EngineDialect.vllm
        let classify = dialect.body(
            for: ChatRequest(
                messages: messages, sampling: SamplingParams(maxTokens: 4, seed: 7, topLogprobs: 5),
                constraint: .choice(labels)), modelID: "Qwen/Qwen2.5-7B-Instruct")
        let tag = dialect.body(
            for: ChatRequest(
                messages: messages, sampling: SamplingParams(maxTokens: 64, seed: 8),
                constraint: .jsonSchema(name: "tags", schema: schema)), modelID: "Qwen/Qwen2.5-7B-Instruct")
        let generate = dialect.body(
            for: ChatRequest(
                messages: messages,
                sampling: SamplingParams(temperature: 0.7, topP: 0.9, maxTokens: 2, seed: 9, stop: ["\n"])),
            modelID: "Qwen/Qwen2.5-7B-Instruct")
        func adding(_ key: String, _ value: JSONValue) -> JSONValue {
            var object = generate.objectValue ?? [:]
            object[key] = value
            return .object(object)
        }
        let image = dialect.body(
            for: ChatRequest(
                messages: [
                    ChatMessage(
                        role: "user",
                        content: [["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw0KGgo="]]])
                ], sampling: SamplingParams(maxTokens: 8, seed: 10)), modelID: "Qwen/Qwen2.5-VL-3B-Instruct")
        let twoSamples = adding("n", 2)
        let penalty = adding("presence_penalty", 0.5)
        let embed = EmbeddingsRequest(input: ["first text", "second text"]).body(modelID: "BAAI/bge-small-en-v1.5")
        let rerank = RerankRequest(query: "q", documents: ["a", "b"]).body(modelID: "BAAI/bge-reranker-base")
        let paths = [
            "/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/rerank",
            "/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions",
        ]
        return zip(paths, [classify, tag, generate, embed, rerank, twoSamples, penalty, image]).enumerated().map {
            ["id": .int(Int64($0.offset)), "path": .string($0.element.0), "body": $0.element.1]
        }
    }

    /// Writes a real Hugging Face tokenizer (`tokenizers` and a `tokenizer_config.json`) to `dir`:
    /// a word-level vocabulary with a Llama-3-style chat template (BOS inside the template, and a
    /// post-processor that adds BOS when asked for special tokens).
    static func writeTokenizer(at dir: String, python: String) throws {
        let script = """
            import json, os, sys
            from tokenizers import Tokenizer, models, pre_tokenizers, processors
            """ + "\n" + tokenizerBody
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, dir]
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LabelForgeError(.io, "writing a test tokenizer failed: \(errors)")
        }
    }

    static let tokenizerBody = """
        # A real Hugging Face tokenizer with a Llama-3-style chat template (BOS inside the template,
        # and a post-processor that adds BOS when asked for special tokens).
        tokenizer_dir = sys.argv[1]
        os.makedirs(tokenizer_dir, exist_ok=True)
        special = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "[UNK]"]
        words = ["system", "user", "assistant", "You", "label", "reviews.", "Great", "blender."]
        vocab = {token: i for i, token in enumerate(special + words)}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.add_special_tokens(special)
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
        tok.save(os.path.join(tokenizer_dir, "tokenizer.json"))
        template = (
            "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|> "
            "{{ m['content'] }}<|eot_id|>{% endfor %}"
            "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}")
        with open(os.path.join(tokenizer_dir, "tokenizer_config.json"), "w") as handle:
            json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                       "eos_token": "<|eot_id|>", "unk_token": "[UNK]", "chat_template": template}, handle)
        """

    static let harness = """
        import argparse, json, os, sys
        import numpy as np
        import pyarrow as pa
        sys.path.insert(0, sys.argv[1])
        import ray_driver as d

        tokenizer_dir = sys.argv[3]

        requests = [json.loads(line) for line in open(sys.argv[2])]
        out = {"rows": {}, "refused": {}, "arrow_identical": {}, "configs": {}, "responses": {}}
        by_task = {}
        for request in requests:
            try:
                rows = d.vllm_rows(request)
            except d.Unsupported as error:
                out["refused"][str(request["id"])] = str(error)
                continue
            out["rows"][str(request["id"])] = rows
            by_task.setdefault(d.TASKS[request["path"]], []).extend(rows)
        args = argparse.Namespace(
            model_source="Qwen/Qwen2.5-7B-Instruct", batch_size=16, concurrency=1, accelerator_type=None,
            engine_kwargs=json.dumps({"seed": 11, "generation_config": "vllm", "enable_prefix_caching": False}))
        tokenizer = d.load_tokenizer(tokenizer_dir, {})
        out["ray_tokenize_stage_ids"] = tokenizer("<|begin_of_text|>x")["input_ids"]
        by_task["generate"] = d.chat_prompts(json.loads(json.dumps(by_task["generate"])), tokenizer)
        out["prompts"] = [{"prompt": row["prompt"], "ids": row["tokenized_prompt"]} for row in by_task["generate"]]
        out["bos_id"] = tokenizer.bos_token_id
        out["generation_prompt_ids"] = tokenizer.encode(
            "<|start_header_id|>assistant<|end_header_id|>", add_special_tokens=False)
        for task, rows in by_task.items():
            # Ray Data's blocks are Arrow tables: the rows must come back exactly as they went in.
            out["arrow_identical"][task] = pa.Table.from_pylist(rows).to_pylist() == rows
            config = d.vllm_config(task, args)
            out["configs"][task] = {
                "task_type": config.task_type, "engine_kwargs": config.engine_kwargs,
                "stages": [config.chat_template_stage, config.tokenize_stage, config.detokenize_stage,
                           config.prepare_multimodal_stage],
                "should_continue_on_error": config.should_continue_on_error, "model_source": config.model_source,
            }

        def output(**fields):
            # The fields of Ray's vLLMOutputData, as the stage merges them into each row.
            base = dict(prompt="p", prompt_token_ids=[1, 2, 3], num_input_tokens=3, generated_tokens=[],
                        generated_text="", num_generated_tokens=0, embeddings=None, metrics=None, logprobs=None,
                        prompt_logprobs=None)
            base.update(fields)
            return base

        alternatives = [
            # The sampled token, ranked 1, and the others; keys as ints (pickled) or strings (Arrow).
            {42: {"logprob": -0.1, "rank": 1, "decoded_token": "pos"},
             43: {"logprob": -2.5, "rank": 2, "decoded_token": "neg"},
             44: {"logprob": -3.0, "rank": 3, "decoded_token": "neut"}},
            {"7": {"logprob": -0.01, "rank": 1, "decoded_token": "itive"}},
        ]
        chats = {
            0: output(generated_tokens=[42, 7], generated_text="positive", num_generated_tokens=2, logprobs=alternatives),
            1: output(generated_tokens=[5] * 7, generated_text='{"topic":"blender","urgent":false}', num_generated_tokens=7),
            2: output(generated_tokens=[5, 6], generated_text="A fine", num_generated_tokens=2),
        }
        for request in requests:
            if request["id"] in chats:
                out["responses"][str(request["id"])] = d.chat_response(request, chats[request["id"]])
            elif request["path"] == "/v1/embeddings":
                parts = [output(num_input_tokens=2, embeddings=np.array([part + 0.5, 0.25], dtype=np.float32), part=part)
                         for part in (1, 0)]
                out["responses"][str(request["id"])] = d.embeddings_response(request, parts)
        print(json.dumps(out))
        """

    @Test(
        "the vLLM processor path maps LabelForge's vLLM-dialect bodies to the Ray vLLM stage's rows and its outputs back to bodies LabelForge parses; what it cannot express exactly is refused by name"
    )
    func vllmMapping() async throws {
        let python = try #require(RayHead.python, "run scripts/test_deps.sh: it installs Ray into .venv-ray")
        let ws = try TestWorkspace()
        let requests = Self.requests()
        try ws.write("requests.jsonl", requests.map { CanonicalJSON.string($0) + "\n" }.joined())
        try ws.write("harness.py", Self.harness)
        try Self.writeTokenizer(at: ws.path("tokenizer"), python: python)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            ws.path("harness.py"), LabelForgeBinary.projectRoot() + "/scripts", ws.path("requests.jsonl"),
            ws.path("tokenizer"),
        ]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(errors)")
        let result = try JSONValue.parse(output)

        // Rows: the same keys for every row of a task, so Arrow carries them unchanged.
        let identical: JSONValue = ["generate": true, "embed": true]
        #expect(result["arrow_identical"] == identical, "\(errors)")
        func row(_ id: String) -> JSONValue? { result["rows"]?[id]?.arrayValue?.first }
        let classify = try #require(row("0"))
        #expect(classify["messages"] == requests[0]["body"]?["messages"])

        // Chat prompts rendered as vLLM's server renders them: the template's own BOS and no second
        // one, the generation prompt last. (Ray's tokenize stage would add a BOS to the text.)
        let bos = try #require(result["bos_id"]?.intValue)
        #expect(result["ray_tokenize_stage_ids"]?.arrayValue?.prefix(2).map(\.intValue) == [bos, bos])
        let prompts = try #require(result["prompts"]?.arrayValue)
        #expect(prompts.count == 3)
        let generationPrompt = try #require(result["generation_prompt_ids"]?.arrayValue)
        for prompt in prompts {
            #expect(
                prompt["prompt"]?.stringValue
                    == "<|begin_of_text|><|start_header_id|>system<|end_header_id|> You label reviews.<|eot_id|>"
                    + "<|start_header_id|>user<|end_header_id|> Great blender.<|eot_id|>"
                    + "<|start_header_id|>assistant<|end_header_id|>")
            let ids = try #require(prompt["ids"]?.arrayValue)
            #expect(ids.first?.intValue == bos && ids.filter { $0.intValue == bos }.count == 1, "\(ids)")
            #expect(Array(ids.suffix(generationPrompt.count)) == generationPrompt)
        }
        let classifySampling: JSONValue = [
            // JSONValue reads 0.0 and 1.0 as integers.
            "temperature": 0, "top_p": 1, "max_tokens": 4, "seed": 7, "stop": [], "logprobs": 5,
            "structured_outputs": [
                "json": .null, "choice": .array(Self.labels.map(JSONValue.string)),
            ],
        ]
        #expect(classify["sampling_params"] == classifySampling)
        let tag = try #require(row("1")?["sampling_params"]?["structured_outputs"])
        #expect(try JSONValue.parse(try #require(tag["json"]?.stringValue)) == Self.schema)
        // Compact JSON is the engine's structured_outputs_config, never a request's (vllm#48765).
        #expect(tag["disable_any_whitespace"] == nil && tag["choice"] == .null)
        let generate = try #require(row("2")?["sampling_params"])
        #expect(
            generate["temperature"] == 0.7 && generate["top_p"] == 0.9 && generate["stop"] == ["\n"]
                && generate["logprobs"] == .null && generate["structured_outputs"] == .null)
        let embedRows: JSONValue = [
            ["id": 3, "part": 0, "prompt": "first text"], ["id": 3, "part": 1, "prompt": "second text"],
        ]
        #expect(result["rows"]?["3"] == embedRows)

        // Refused by name, never approximated.
        let refused = try #require(result["refused"]?.objectValue)
        #expect(Set(refused.keys) == ["4", "5", "6", "7"])
        #expect(refused["7"]?.stringValue?.contains("not plain text (an image)") == true)
        #expect(refused["4"]?.stringValue?.contains("/v1/rerank") == true)
        #expect(refused["4"]?.stringValue?.contains("processor: http") == true)
        #expect(refused["5"]?.stringValue?.contains("n > 1") == true)
        #expect(refused["6"]?.stringValue?.contains("'presence_penalty'") == true)

        // Ray 2.60's own config accepts what the driver builds.
        // Only the vLLM stage runs (prompts arrive rendered; vLLM's own text is kept); a failing row
        // is that row's error.
        let generateConfig = try #require(result["configs"]?["generate"])
        #expect(generateConfig["task_type"] == "generate" && generateConfig["stages"] == [false, false, false, false])
        #expect(
            generateConfig["engine_kwargs"]?["seed"] == 11
                && generateConfig["engine_kwargs"]?["task_type"] == "generate")
        #expect(generateConfig["should_continue_on_error"] == true)
        let embedConfig = try #require(result["configs"]?["embed"])
        #expect(embedConfig["task_type"] == "embed" && embedConfig["stages"] == [false, false, false, false])

        // Answers, parsed by the same code that parses a vLLM server's.
        let label = try ChatResponse(raw: try #require(result["responses"]?["0"]))
        #expect(label.content == "positive" && label.finishReason == "stop")
        #expect(label.promptTokens == 3 && label.completionTokens == 2)
        let tokens = try #require(label.logprobs)
        #expect(tokens.map(\.token) == ["pos", "itive"])
        #expect(tokens[0].top.map(\.0) == ["pos", "neg", "neut"] && tokens[0].top.map(\.1) == [-0.1, -2.5, -3.0])
        let tagged = try ChatResponse(raw: try #require(result["responses"]?["1"]))
        #expect(try JSONValue.parse(tagged.content) == ["topic": "blender", "urgent": false])
        #expect(tagged.logprobs == nil)
        // max_tokens 2, two tokens generated: the completion was cut.
        #expect(try ChatResponse(raw: try #require(result["responses"]?["2"])).finishReason == "length")
        let vectors = try EmbeddingsResponse(raw: try #require(result["responses"]?["3"]))
        #expect(vectors.vectors == [[0.5, 0.25], [1.5, 0.25]] && vectors.promptTokens == 4)
    }
}
