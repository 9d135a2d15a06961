import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Logging
import Synchronization
import Testing

@Suite struct OpenAIClientTests {
    let body: JSONValue = ["model": "m", "messages": [["role": "user", "content": "hi"]]]

    func client(_ url: String, retries: Int = 3, apiKey: String? = nil) -> OpenAIClient {
        OpenAIClient(
            options: EndpointOptions(baseURLs: [url], apiKey: apiKey, maxRetries: retries, retryBaseDelay: .milliseconds(5)),
            logger: Logger(label: "test"))
    }

    @Test("5xx and 429 are retried until the server answers")
    func retriesTransientErrors() async throws {
        let calls = Atomic<Int>(0)
        let stub = try await StubEngine.start { _ in
            switch calls.add(1, ordering: .relaxed).newValue {
            case 1: return .error(status: 503, message: "overloaded")
            case 2: return .error(status: 429, message: "slow down")
            default: return .content("fine")
            }
        }
        let client = client(stub.baseURL)
        let reply = try await client.post(path: "/v1/chat/completions", body: body)
        #expect(reply.attempts == 3)
        #expect(stub.chatRequests == 3)
        #expect(try ChatResponse(raw: reply.body).content == "fine")
        await client.shutdown()
        await stub.stop()
    }

    @Test("a 400 is final and its message is reported")
    func badRequestIsFinal() async throws {
        let stub = try await StubEngine.start { _ in .error(status: 400, message: "max_tokens is too large") }
        let client = client(stub.baseURL)
        let error = await #expect(throws: LabelForgeError.self) {
            try await client.post(path: "/v1/chat/completions", body: body)
        }
        #expect(error?.code == .engineHTTP)
        #expect(error?.message.contains("max_tokens is too large") == true)
        #expect(stub.chatRequests == 1)
        await client.shutdown()
        await stub.stop()
    }

    @Test("an unreachable engine is one clear error after the retries")
    func unreachable() async throws {
        let client = client("http://127.0.0.1:9", retries: 1)
        let error = await #expect(throws: LabelForgeError.self) {
            try await client.post(path: "/v1/chat/completions", body: body)
        }
        #expect(error?.code == .engineUnavailable)
        #expect(error?.message.contains("127.0.0.1:9") == true)
        #expect(client.requestsSent == 2)
        await client.shutdown()
    }

    @Test("the API key goes in the Authorization header")
    func apiKey() async throws {
        let stub = try await StubEngine.start()
        let client = client(stub.baseURL, apiKey: "sk-test-123")
        _ = try await client.post(path: "/v1/chat/completions", body: body)
        #expect(stub.authorizations == ["Bearer sk-test-123"])
        await client.shutdown()
        await stub.stop()
    }

    @Test("requests spread over replicas")
    func replicas() async throws {
        let a = try await StubEngine.start()
        let b = try await StubEngine.start()
        let client = OpenAIClient(
            options: EndpointOptions(baseURLs: [a.baseURL, b.baseURL], maxInFlight: 4), logger: Logger(label: "t"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try await client.post(path: "/v1/chat/completions", body: body) } }
            try await group.waitForAll()
        }
        #expect(a.chatRequests + b.chatRequests == 8)
        #expect(a.chatRequests > 0 && b.chatRequests > 0)
        await client.shutdown()
        await a.stop()
        await b.stop()
    }
}
