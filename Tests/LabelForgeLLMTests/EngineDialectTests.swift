import LabelForgeCore
import LabelForgeLLM
import Testing

@Suite struct EngineDialectTests {
    let request = ChatRequest(
        messages: [ChatMessage(role: "user", text: "hi")], sampling: SamplingParams(seed: 3, topLogprobs: 4),
        constraint: .choice(["yes", "no \"maybe\""]), cachePrompt: false)

    @Test("vLLM gets structured_outputs.choice and never the removed guided_* fields")
    func vllmChoice() {
        let body = EngineDialect.vllm.body(for: request, modelID: "m")
        #expect(body["structured_outputs"]?["choice"] == ["yes", "no \"maybe\""])
        #expect(!CanonicalJSON.string(body).contains("guided_"))
        #expect(body["seed"] == 3)
        #expect(body["logprobs"] == true)
        #expect(body["top_logprobs"] == 4)
        #expect(body["cache_prompt"] == nil)
    }

    @Test("llama.cpp gets a GBNF grammar with one escaped alternative per label")
    func llamacppGrammar() {
        let body = EngineDialect.llamacpp.body(for: request, modelID: "m")
        #expect(body["grammar"]?.stringValue == #"root ::= "yes" | "no \"maybe\"""#)
        #expect(body["cache_prompt"] == false)
    }

    @Test("JSON schemas go as response_format json_schema with name and schema")
    func jsonSchema() {
        var tagged = request
        tagged.constraint = .jsonSchema(name: "tags", schema: ["type": "object"])
        for dialect in EngineDialect.all {
            let body = dialect.body(for: tagged, modelID: "m")
            #expect(body["response_format"]?["type"] == "json_schema")
            #expect(body["response_format"]?["json_schema"]?["name"] == "tags")
            #expect(body["response_format"]?["json_schema"]?["schema"] == ["type": "object"])
        }
    }

    @Test("the body's model is the configured id")
    func modelID() {
        #expect(EngineDialect.llamacpp.body(for: request, modelID: "smollm2")["model"] == "smollm2")
    }
}

@Suite struct SamplingWireTests {
    @Test("vLLM gets max_completion_tokens; llama.cpp, SGLang and plain OpenAI servers get max_tokens")
    func maxTokensField() {
        let request = ChatRequest(messages: [ChatMessage(role: "user", text: "x")], sampling: SamplingParams(maxTokens: 7))
        #expect(EngineDialect.vllm.body(for: request, modelID: "m")["max_completion_tokens"] == 7)
        #expect(EngineDialect.vllm.body(for: request, modelID: "m")["max_tokens"] == nil)
        for dialect in [EngineDialect.llamacpp, .sglang, .openai] {
            #expect(dialect.body(for: request, modelID: "m")["max_tokens"] == 7, "\(dialect)")
        }
    }
}
