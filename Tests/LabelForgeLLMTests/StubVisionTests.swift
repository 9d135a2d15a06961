import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Logging
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The stub VLM's request validation, held to what vLLM's OpenAI server documents and does.
@Suite struct StubVisionTests {
    static let png = try! Data(
        contentsOf: URL(fileURLWithPath: LabelForgeBinary.projectRoot() + "/data/shapes/images/circle/shape_000.png"))
    static let dataURL = "data:image/png;base64," + png.base64EncodedString()

    static func body(_ parts: [JSONValue]) -> JSONValue {
        ["model": "m", "messages": [["role": "user", "content": .array(parts)]]]
    }

    static let text: JSONValue = ["type": "text", "text": "Describe the image."]

    static func client(_ url: String) -> OpenAIClient {
        OpenAIClient(options: EndpointOptions(baseURLs: [url], maxRetries: 0), logger: Logger(label: "test"))
    }

    @Test(
        "malformed image parts are refused with a 400, as vLLM refuses them",
        arguments: [
            (["type": "image_url", "image_url": .string(dataURL)], "image_url: Input should be a valid dictionary"),
            (["type": "image_url", "image_url": ["detail": "low"]], "image_url.url: Field required"),
            (
                ["type": "image_url", "image_url": ["url": "ftp://host/x.png"]],
                "must be either a HTTP, data or file URL"
            ),
            (["type": "image_url", "image_url": ["url": "data:image/png,abc"]], "not enough values to unpack"),
            (
                ["type": "image_url", "image_url": ["url": "data:image/png;utf8,abc"]],
                "Only base64 data URLs are supported"
            ),
            (["type": "image_url", "image_url": ["url": "data:image/png;base64,@@@"]], "Incorrect padding"),
            (
                [
                    "type": "image_url",
                    "image_url": ["url": .string("data:image/png;base64," + Data("hello".utf8).base64EncodedString())],
                ], "cannot identify image file"
            ),
            (
                [
                    "type": "image_url",
                    "image_url": ["url": .string("data:image/png;base64," + png.prefix(100).base64EncodedString())],
                ], "truncated"
            ),
            (["type": "image", "image": "x"], "Unknown part type: image"),
            (["image_url": ["url": .string(dataURL)]], "content.0.type: Field required"),
        ] as [(JSONValue, String)])
    func refusesMalformedImageParts(part: JSONValue, fragment: String) async throws {
        let stub = try await StubEngine.start(answer: StubEngine.vision())
        let client = Self.client(stub.baseURL)
        let error = await #expect(throws: LabelForgeError.self) {
            try await client.post(path: "/v1/chat/completions", body: Self.body([part, Self.text]))
        }
        #expect(error?.code == .engineHTTP)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        await client.shutdown()
        await stub.stop()
    }

    @Test("more images than --limit-mm-per-prompt allows are refused")
    func imageLimit() async throws {
        let stub = try await StubEngine.start(imageLimit: 1, answer: StubEngine.vision())
        let client = Self.client(stub.baseURL)
        let image: JSONValue = ["type": "image_url", "image_url": ["url": .string(Self.dataURL)]]
        let error = await #expect(throws: LabelForgeError.self) {
            try await client.post(path: "/v1/chat/completions", body: Self.body([image, image, Self.text]))
        }
        #expect(error?.message.contains("At most 1 image(s) may be provided in one prompt.") == true)
        await client.shutdown()
        await stub.stop()
    }

    @Test("errors come in vLLM's shape: {error: {message, type, param, code}}")
    func errorShape() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.vision())
        var request = URLRequest(url: URL(string: stub.baseURL + "/v1/chat/completions")!)
        request.httpMethod = "POST"
        request.httpBody = CanonicalJSON.data(Self.body([["type": "image_url", "image_url": "x"]]))
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 400)
        let error = try JSONValue.parse(data)["error"]
        #expect(error?["type"] == "BadRequestError")
        #expect(error?["code"] == 400)
        #expect(error?["param"] == .null)
        #expect(error?["message"]?.stringValue?.isEmpty == false)
        await stub.stop()
    }

    @Test("a well-formed image request is answered from the image's pixels, with usage and logprobs")
    func answersFromPixels() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.vision())
        let client = Self.client(stub.baseURL)
        var body = Self.body([["type": "image_url", "image_url": ["url": .string(Self.dataURL)]], Self.text])
            .objectValue!
        body["logprobs"] = true
        body["top_logprobs"] = 2
        let reply = try await client.post(path: "/v1/chat/completions", body: .object(body))
        let response = try ChatResponse(raw: reply.body)
        #expect(response.content == "one red circle on a white background")
        #expect(response.completionTokens > 0 && response.promptTokens > 0)
        #expect(response.logprobs?.first?.top.count == 2)
        await client.shutdown()
        await stub.stop()
    }
}
