import Foundation
import LabelForgeCore
import LabelForgeLLM
import Testing

@Suite struct CacheKeyTests {
    static func request(
        text: String = "Classify: great blender", image: [UInt8]? = nil, seed: UInt32 = 7, temperature: Double = 0,
        maxTokens: Int = 8, labels: [String] = ["positive", "negative"]
    ) -> ChatRequest {
        var content: JSONValue = .string(text)
        if let image {
            content = [
                ["type": "text", "text": .string(text)],
                ["type": "image_url", "image_url": ["url": .string("data:image/png;base64," + Data(image).base64EncodedString())]],
            ]
        }
        return ChatRequest(
            messages: [ChatMessage(role: "user", content: content)],
            sampling: SamplingParams(temperature: temperature, maxTokens: maxTokens, seed: seed, topLogprobs: 5),
            constraint: .choice(labels))
    }

    static func key(
        _ request: ChatRequest, model: String = "m", revision: String = "sha256:aa", dialect: EngineDialect = .vllm
    ) -> CacheKey {
        CacheKey.compute(
            kind: "chat", dialect: dialect.name, modelID: model, modelRevision: revision,
            body: dialect.body(for: request, modelID: model))
    }

    @Test("every knob that changes the request changes the key")
    func sensitivity() {
        let base = Self.key(Self.request(image: [1, 2, 3]))
        let variants: [(String, CacheKey)] = [
            ("model", Self.key(Self.request(image: [1, 2, 3]), model: "other")),
            ("revision", Self.key(Self.request(image: [1, 2, 3]), revision: "sha256:bb")),
            ("message text", Self.key(Self.request(text: "Classify: bad blender", image: [1, 2, 3]))),
            ("image bytes", Self.key(Self.request(image: [1, 2, 4]))),
            ("seed", Self.key(Self.request(image: [1, 2, 3], seed: 8))),
            ("temperature", Self.key(Self.request(image: [1, 2, 3], temperature: 0.7))),
            ("max_tokens", Self.key(Self.request(image: [1, 2, 3], maxTokens: 9))),
            ("schema", Self.key(Self.request(image: [1, 2, 3], labels: ["positive", "neutral"]))),
            ("dialect", Self.key(Self.request(image: [1, 2, 3]), dialect: .llamacpp)),
        ]
        for (knob, key) in variants {
            #expect(key != base, "changing \(knob) must change the cache key")
        }
        #expect(Set(variants.map(\.1)).count == variants.count)
    }

    @Test("the key is stable and depends on the image's bytes, not its data URL's media type")
    func imageByContent() {
        let png = Self.request(image: [9, 9, 9])
        var jpeg = png
        jpeg.messages[0].content = [
            ["type": "text", "text": "Classify: great blender"],
            ["type": "image_url", "image_url": ["url": .string("data:image/jpeg;base64," + Data([9, 9, 9]).base64EncodedString())]],
        ]
        #expect(Self.key(png) == Self.key(jpeg))
        #expect(Self.key(png) == Self.key(Self.request(image: [9, 9, 9])))
    }

    @Test("endpoint URL and API key are not part of the key")
    func endpointIndependent() async throws {
        // The key is computed from the wire body alone; two clients for different URLs and keys
        // send byte-identical bodies for the same request.
        let request = Self.request()
        let bodyA = EngineDialect.vllm.body(for: request, modelID: "m")
        let clientA = OpenAIClient(options: EndpointOptions(baseURLs: ["http://10.0.0.1:8000"], apiKey: "key-a"), logger: .init(label: "t"))
        let clientB = OpenAIClient(options: EndpointOptions(baseURLs: ["http://127.0.0.1:9"], apiKey: "key-b"), logger: .init(label: "t"))
        defer { Task { await clientA.shutdown(); await clientB.shutdown() } }
        let bodyB = EngineDialect.vllm.body(for: request, modelID: "m")
        #expect(CanonicalJSON.data(bodyA) == CanonicalJSON.data(bodyB))
        #expect(!CanonicalJSON.string(bodyA).contains("key-a"))
        #expect(!CanonicalJSON.string(bodyA).contains("10.0.0.1"))
    }
}
