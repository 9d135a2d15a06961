import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
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
                [
                    "type": "image_url",
                    "image_url": ["url": .string("data:image/png;base64," + Data(image).base64EncodedString())],
                ],
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
            [
                "type": "image_url",
                "image_url": ["url": .string("data:image/jpeg;base64," + Data([9, 9, 9]).base64EncodedString())],
            ],
        ]
        #expect(Self.key(png) == Self.key(jpeg))
        #expect(Self.key(png) == Self.key(Self.request(image: [9, 9, 9])))
    }

    @Test("endpoint URL and API key are not part of the key")
    func endpointIndependent() async throws {
        // Two real clients, each with its own URL and API key, send the same request to two servers;
        // the bodies the servers received give one key, and carry neither the key nor the URL.
        let stubA = try await StubEngine.start(apiKey: "key-a")
        let stubB = try await StubEngine.start(apiKey: "key-b")
        let clientA = OpenAIClient(
            options: EndpointOptions(baseURLs: [stubA.baseURL], apiKey: "key-a", maxRetries: 0),
            logger: .init(label: "t"))
        let clientB = OpenAIClient(
            options: EndpointOptions(baseURLs: [stubB.baseURL], apiKey: "key-b", maxRetries: 0),
            logger: .init(label: "t"))
        let body = EngineDialect.vllm.body(for: Self.request(), modelID: "m")
        _ = try await clientA.send(EngineRequest(kind: .chat, body: body))
        _ = try await clientB.send(EngineRequest(kind: .chat, body: body))
        await clientA.shutdown()
        await clientB.shutdown()
        await stubA.stop()
        await stubB.stop()
        let received = [try #require(stubA.bodies.first), try #require(stubB.bodies.first)]
        #expect(stubA.authorizations == ["Bearer key-a"] && stubB.authorizations == ["Bearer key-b"])
        func key(_ body: JSONValue) -> CacheKey {
            CacheKey.compute(kind: "chat", dialect: "vllm", modelID: "m", modelRevision: "sha256:aa", body: body)
        }
        #expect(key(received[0]) == key(received[1]))
        #expect(key(received[0]) == Self.key(Self.request()))
        for body in received.map(CanonicalJSON.string) {
            #expect(!body.contains("key-a") && !body.contains("key-b"))
            #expect(!body.contains(stubA.baseURL) && !body.contains(stubB.baseURL))
        }
    }
}

/// Keys computed before the request executor existed: the kernel must not change them by accident.
/// Changed on purpose: the `vllm` keys (vLLM deprecates `max_tokens`, so that dialect sends
/// `max_completion_tokens`), JSON-schema requests on vLLM and llama.cpp (compact JSON: a GBNF
/// grammar, and on vLLM once more when `disable_any_whitespace` left the request for the server's
/// `--structured-outputs-config`, vLLM ignoring it per request). classify on llama.cpp and OpenAI
/// keeps its key.
@Suite struct PinnedCacheKeyTests {
    static let schema: JSONValue = [
        "type": "object", "additionalProperties": false, "required": ["topic", "mentions_price"],
        "properties": [
            "topic": ["type": "string", "enum": ["quality", "price"]], "mentions_price": ["type": "boolean"],
        ],
    ]

    static func requests() -> [(String, ChatRequest)] {
        let classify = ChatRequest(
            messages: [ChatMessage(role: "user", text: "Review: great blender\nLabel:")],
            sampling: SamplingParams(temperature: 0, maxTokens: 16, seed: 123_456_789, topLogprobs: 20),
            constraint: .choice(["positive", "negative", "neutral"]))
        let tag = ChatRequest(
            messages: [ChatMessage(role: "user", text: "Tag: too pricey")],
            sampling: SamplingParams(temperature: 0, maxTokens: 128, seed: 42),
            constraint: .jsonSchema(name: "attributes", schema: schema), cachePrompt: false)
        let caption = ChatRequest(
            messages: [
                ChatMessage(
                    role: "user",
                    content: [
                        [
                            "type": "image_url",
                            "image_url": [
                                "url": .string("data:image/png;base64," + Data([1, 2, 3]).base64EncodedString())
                            ],
                        ],
                        ["type": "text", "text": "Describe the image."],
                    ])
            ],
            sampling: SamplingParams(temperature: 0, maxTokens: 96, seed: 7))
        return [("classify", classify), ("tag", tag), ("caption", caption)]
    }

    static let pinned: [String: String] = [
        "classify/vllm": "abb023b8c3d666f0c48cad14d55696c91061d47d0df416f90d8ec55015ebcf79",
        "classify/llamacpp": "ad0c234ade6fa4b8c30efe9bcadf9077ec35e7fed7448e723010799448a0966e",
        "classify/openai": "aec448bb574a469070f335a6585e686359d2b35813827350724f761f7aee1ce3",
        "tag/vllm": "44d1690be20c212182d895ed60f7d65449b529d84618abda0a13534ea0264c44",
        "tag/llamacpp": "4c0f80809a5ca1ca0070c9ef58c7f7add2e5b8af002b70dab1bd4c63555acee4",
        "caption/vllm": "2ad8de46d08062e3577dda8e961391dcef85aef3669698c13d35f482cb74418c",
    ]

    @Test("chat cache keys of classify, tag and caption requests are the ones computed before the kernel")
    func pinnedKeys() {
        var actual: [String: String] = [:]
        for (name, request) in Self.requests() {
            for dialect in EngineDialect.all where Self.pinned["\(name)/\(dialect.name)"] != nil {
                actual["\(name)/\(dialect.name)"] =
                    CacheKey.compute(
                        kind: "chat", dialect: dialect.name, modelID: "smollm2-135m-instruct-q4_1",
                        modelRevision: "sha256:abc",
                        body: dialect.body(for: request, modelID: "smollm2-135m-instruct-q4_1")
                    ).hex
            }
        }
        for key in Self.pinned.keys.sorted() {
            #expect(actual[key] == Self.pinned[key], "\(key): \(actual[key] ?? "nil")")
        }
    }
}
