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

    @Test(
        "JSON schemas: structured_outputs on vLLM (compact JSON is the server's setting), a GBNF grammar on llama.cpp, response_format elsewhere"
    )
    func jsonSchema() {
        var tagged = request
        let schema: JSONValue = [
            "type": "object", "required": ["topic", "flag"], "additionalProperties": false,
            "properties": ["topic": ["type": "string", "enum": ["a", "b"]], "flag": ["type": "boolean"]],
        ]
        tagged.constraint = .jsonSchema(name: "tags", schema: schema)
        for dialect in [EngineDialect.openai, .sglang] {
            let body = dialect.body(for: tagged, modelID: "m")
            #expect(body["response_format"]?["type"] == "json_schema")
            #expect(body["response_format"]?["json_schema"]?["name"] == "tags")
            #expect(body["response_format"]?["json_schema"]?["schema"] == schema)
        }
        let vllm = EngineDialect.vllm.body(for: tagged, modelID: "m")
        // vLLM reads disable_any_whitespace only from --structured-outputs-config (vllm#48765): never per request.
        #expect(vllm["structured_outputs"] == ["json": schema])
        #expect(vllm["response_format"] == nil)
        let llama = EngineDialect.llamacpp.body(for: tagged, modelID: "m")
        #expect(llama["response_format"] == nil)
        #expect(
            llama["grammar"]?.stringValue?.contains(
                #""{" "\"topic\":" ("\"a\"" | "\"b\"") "," "\"flag\":" ("true" | "false") "}""#) == true, "\(llama)")
        // A schema the grammar cannot express (an optional member) goes as response_format.
        tagged.constraint = .jsonSchema(
            name: "opt", schema: ["type": "object", "properties": ["x": ["type": "boolean"]]])
        #expect(EngineDialect.llamacpp.body(for: tagged, modelID: "m")["response_format"] != nil)
    }

    @Test("the wire writes a schema's properties in the order of its required list; hashing stays canonical")
    func propertyOrder() throws {
        let schema: JSONValue = [
            "type": "object", "required": ["topic", "mentions_price"],
            "properties": ["topic": ["type": "string"], "mentions_price": ["type": "boolean"]],
        ]
        let wire = String(
            decoding: CanonicalJSON.wire(["response_format": ["json_schema": ["schema": schema]]]), as: UTF8.self)
        #expect(
            wire.contains(#""properties":{"topic":{"type":"string"},"mentions_price":{"type":"boolean"}}"#), "\(wire)")
        #expect(CanonicalJSON.string(schema).contains(#""properties":{"mentions_price""#))
        #expect(try JSONValue.parse(wire) == ["response_format": ["json_schema": ["schema": schema]]])
    }

    @Test("the body's model is the configured id")
    func modelID() {
        #expect(EngineDialect.llamacpp.body(for: request, modelID: "smollm2")["model"] == "smollm2")
    }
}

@Suite struct SamplingWireTests {
    @Test("vLLM gets max_completion_tokens; llama.cpp, SGLang and plain OpenAI servers get max_tokens")
    func maxTokensField() {
        let request = ChatRequest(
            messages: [ChatMessage(role: "user", text: "x")], sampling: SamplingParams(maxTokens: 7))
        #expect(EngineDialect.vllm.body(for: request, modelID: "m")["max_completion_tokens"] == 7)
        #expect(EngineDialect.vllm.body(for: request, modelID: "m")["max_tokens"] == nil)
        for dialect in [EngineDialect.llamacpp, .sglang, .openai] {
            #expect(dialect.body(for: request, modelID: "m")["max_tokens"] == 7, "\(dialect)")
        }
    }
}
