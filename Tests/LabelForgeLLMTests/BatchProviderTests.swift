import Foundation
import LabelForgeCore
import Logging
import Testing

@testable import LabelForgeLLM

/// What the batch providers write and refuse, without a server.
struct BatchProviderTests {
    static let chat: JSONValue = [
        "model": "claude-x", "max_tokens": 16, "temperature": 0, "seed": 7, "stop": ["\n\n"],
        "messages": [
            ["role": "system", "content": [["type": "text", "text": "Be brief."]]],
            [
                "role": "user",
                "content": [
                    ["type": "text", "text": "Label this."],
                    ["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw0KGgo="]],
                ],
            ],
        ],
        "response_format": [
            "type": "json_schema", "json_schema": ["name": "answer", "schema": ["type": "object"], "strict": true],
        ],
    ]

    @Test("An OpenAI chat body as Anthropic Messages params: system, stop, image source, output format; no seed")
    func anthropicParams() throws {
        let params = try AnthropicBatches.params(EngineRequest(kind: .chat, body: Self.chat))
        #expect(params["system"] == "Be brief.")
        #expect(params["stop_sequences"] == ["\n\n"])
        #expect(params["max_tokens"] == 16)
        #expect(params["seed"] == nil && params["temperature"] == nil && params["response_format"] == nil)
        #expect(params["output_config"] == ["format": ["type": "json_schema", "schema": ["type": "object"]]])
        let image = params["messages"]?.arrayValue?.first?["content"]?.arrayValue?.last
        #expect(image?["source"] == ["type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="])
        #expect(params["messages"]?.arrayValue?.count == 1, "the system message is not a message")
    }

    @Test("A request Anthropic cannot take fails alone, at once, before anything is sent")
    func refusedAlone() async throws {
        var body = Self.chat.objectValue!
        body["logprobs"] = true
        let transport = BatchTransport(
            engine: "claude",
            provider: AnthropicBatches(baseURL: "http://127.0.0.1:9", apiKey: "sk-never-sent"),
            options: .init(maxRetries: 0, pollInterval: .seconds(60), gatherWindow: .seconds(60)), ledger: nil,
            logger: Logger(label: "test"))
        let started = ContinuousClock.now
        let error = await #expect(throws: LabelForgeError.self) {
            _ = try await transport.send(EngineRequest(kind: .chat, body: .object(body)))
        }
        #expect(error?.message.contains("no log-probabilities") == true, "\(error?.message ?? "")")
        #expect(ContinuousClock.now - started < .seconds(5) && transport.requestsSent == 0)
    }

    @Test("The custom id is the request's path and body hashed: 64 hex digits, the same for the same request")
    func customID() {
        let a = BatchItem(EngineRequest(kind: .chat, body: Self.chat))
        let b = BatchItem(EngineRequest(kind: .chat, body: Self.chat))
        let c = BatchItem(EngineRequest(kind: .embeddings, body: Self.chat))
        #expect(a.customID == b.customID && a.customID != c.customID)
        #expect(a.customID.count == 64 && a.customID.allSatisfy(\.isHexDigit))
    }
}
