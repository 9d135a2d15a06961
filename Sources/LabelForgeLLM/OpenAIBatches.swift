import AsyncHTTPClient
import Foundation
import LabelForgeCore
import NIOCore
import NIOHTTP1

/// HTTP calls to a batch API: JSON in and out, the key in a header, retried on 429, 5xx and
/// network failures (3 tries); the key never appears in an error.
struct BatchHTTP: Sendable {
    var baseURL: String
    var headers: [(String, String)]
    /// Values that must not appear in an error message (the API key).
    var secrets: [String]

    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    init(baseURL: String, headers: [(String, String)], secrets: [String]) {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        if url.hasSuffix("/v1") { url.removeLast(3) }
        self.baseURL = url
        self.headers = headers
        self.secrets = secrets
    }

    /// The answer's body, for a 2xx.
    /// - Parameter creates: the call creates something billed (a batch): tried again only on a 429,
    ///   which says it was not taken, never on a failure that may have created it.
    /// - Throws: `LabelForgeError.engineHTTP` naming the call and the provider's message.
    func call(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json",
        creates: Bool = false
    ) async throws -> Data {
        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: path.hasPrefix("http") ? path : baseURL + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body {
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            var status = 0
            var detail: String
            do {
                let response = try await Self.http.execute(request, timeout: .seconds(300))
                let bytes = try await response.body.collect(upTo: 1 << 30)
                let data = Data(bytes.readableBytesView)
                status = Int(response.status.code)
                if (200..<300).contains(status) { return data }
                detail = Self.message(in: data)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                detail = "\(error)"
            }
            let retryable = status == 429 || (!creates && (status == 0 || status >= 500))
            if !retryable || attempt >= 3 {
                let message = Redaction.redact(
                    "\(method.rawValue) \(baseURL)\(path) failed" + (status == 0 ? "" : " with HTTP \(status)")
                        + ": \(detail)", secrets: secrets)
                throw status == 0
                    ? LabelForgeError(.engineUnavailable, message)
                    : LabelForgeError(.engineHTTP, message, httpStatus: status)
            }
            try await Task.sleep(for: .milliseconds(250 << attempt))
        }
    }

    func json(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, creates: Bool = false) async throws
        -> JSONValue
    {
        try JSONValue.parse(try await call(method, path, body: body.map { CanonicalJSON.data($0) }, creates: creates))
    }

    private static func message(in data: Data) -> String {
        if let json = try? JSONValue.parse(data) {
            if let message = json["error"]?["message"]?.stringValue { return message }
            if let message = json["message"]?.stringValue { return message }
        }
        return String(String(decoding: data, as: UTF8.self).prefix(400))
    }
}

/// The OpenAI batch file's lines: `{"custom_id", "method": "POST", "url", "body"}` in, and
/// `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}` out (vLLM's
/// `run-batch` reads and writes the same).
enum OpenAIBatchLines {
    static func line(_ item: BatchItem) -> Data {
        var data = CanonicalJSON.data(
            [
                "custom_id": .string(item.customID), "method": "POST", "url": .string(item.request.kind.path),
                "body": item.request.body,
            ] as JSONValue)
        data.append(0x0A)
        return data
    }

    /// The outcomes an output or error file lists.
    static func outcomes(_ text: Data, into outcomes: inout [String: BatchItemOutcome]) throws {
        for line in text.split(separator: 0x0A) where !line.isEmpty {
            let value = try JSONValue.parse(Data(line))
            guard let id = value["custom_id"]?.stringValue else { continue }
            if let error = value["error"], error != .null {
                let code = error["code"]?.stringValue ?? ""
                let message = error["message"]?.stringValue ?? code
                outcomes[id] =
                    code == "batch_expired" || code == "batch_cancelled"
                    ? .unanswered(message.isEmpty ? code : message) : .failed(message)
                continue
            }
            let response = value["response"] ?? .null
            let status = response["status_code"]?.intValue ?? 0
            let body = response["body"] ?? .null
            if status == 200, body["error"] == nil || body["error"] == .null {
                outcomes[id] = .succeeded(body)
            } else {
                let message = body["error"]?["message"]?.stringValue ?? body["message"]?.stringValue ?? body.textForm
                outcomes[id] = .failed("HTTP \(status): \(message)")
            }
        }
    }
}

/// OpenAI's Batch API: the requests uploaded as a file (`POST /v1/files`, purpose `batch`), a batch
/// created for it (`POST /v1/batches`, `completion_window: 24h`, the submission name in its
/// `metadata`), polled (`GET /v1/batches/{id}`), its output and error files read
/// (`GET /v1/files/{id}/content`), cancelled (`POST /v1/batches/{id}/cancel`).
public struct OpenAIBatches: BatchProvider {
    public var name: String { "openai" }
    public let maxRequests: Int
    public let maxBytes: Int
    public let completionWindow: String
    let http: BatchHTTP

    /// - Parameters:
    ///   - baseURL: the API's address (`https://api.openai.com/v1`, or a stub's).
    ///   - apiKey: sent as `Authorization: Bearer`; never in an error.
    ///   - maxRequests: OpenAI takes 50,000 requests a batch, and
    ///   - maxBytes: an input file of 200 MB.
    ///   - completionWindow: the batch's `completion_window` (`24h`).
    public init(
        baseURL: String, apiKey: String?, maxRequests: Int = 50_000, maxBytes: Int = 200_000_000,
        completionWindow: String = "24h"
    ) {
        http = BatchHTTP(
            baseURL: baseURL, headers: apiKey.map { [("Authorization", "Bearer " + $0)] } ?? [],
            secrets: apiKey.map { [$0] } ?? [])
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
        self.completionWindow = completionWindow
    }

    public func size(of item: BatchItem) -> Int { OpenAIBatchLines.line(item).count }

    public func submit(_ items: [BatchItem], submission: String) async throws -> String {
        var lines = Data()
        for item in items { lines.append(OpenAIBatchLines.line(item)) }
        let boundary = "labelforge-" + UUID().uuidString.lowercased()
        var form = Data()
        func part(_ headers: String, _ content: Data) {
            form.append(Data("--\(boundary)\r\n\(headers)\r\n\r\n".utf8))
            form.append(content)
            form.append(Data("\r\n".utf8))
        }
        part("Content-Disposition: form-data; name=\"purpose\"", Data("batch".utf8))
        part(
            "Content-Disposition: form-data; name=\"file\"; filename=\"\(submission).jsonl\"\r\n"
                + "Content-Type: application/jsonl", lines)
        form.append(Data("--\(boundary)--\r\n".utf8))
        let file = try JSONValue.parse(
            try await http.call(
                .POST, "/v1/files", body: form, contentType: "multipart/form-data; boundary=\(boundary)"))
        guard let fileID = file["id"]?.stringValue else {
            throw LabelForgeError(.invalidResponse, "POST /v1/files answered no file id: \(file.textForm.prefix(300))")
        }
        let batch: JSONValue
        do {
            batch = try await http.json(
                .POST, "/v1/batches",
                body: [
                    "input_file_id": .string(fileID), "endpoint": .string(items[0].request.kind.path),
                    "completion_window": .string(completionWindow),
                    "metadata": ["labelforge_submission": .string(submission)],
                ], creates: true)
        } catch let error as LabelForgeError {
            // No answer does not mean no batch: one created under this name is the one.
            if let id = try? await find(submission: submission) { return id }
            throw error
        }
        guard let id = batch["id"]?.stringValue else {
            throw LabelForgeError(
                .invalidResponse, "POST /v1/batches answered no batch id: \(batch.textForm.prefix(300))")
        }
        return id
    }

    public func find(submission: String) async throws -> String? {
        var after: String?
        for _ in 0..<20 {
            let page = try await http.json(.GET, "/v1/batches?limit=100" + (after.map { "&after=" + $0 } ?? ""))
            let batches = page["data"]?.arrayValue ?? []
            if let match = batches.first(where: { $0["metadata"]?["labelforge_submission"]?.stringValue == submission })
            {
                return match["id"]?.stringValue
            }
            guard page["has_more"]?.boolValue == true, let last = batches.last?["id"]?.stringValue else { return nil }
            after = last
        }
        return nil
    }

    public func status(of batch: String) async throws -> BatchStatus {
        let info = try await http.json(.GET, "/v1/batches/\(batch)")
        let state = info["status"]?.stringValue ?? "unknown"
        // A batch that failed as a whole (its file refused) says why in `errors.data`.
        let reasons = (info["errors"]?["data"]?.arrayValue ?? []).compactMap { $0["message"]?.stringValue }
        return BatchStatus(
            state: reasons.isEmpty ? state : "\(state) (\(reasons.prefix(3).joined(separator: "; ")))",
            ended: ["completed", "failed", "expired", "cancelled"].contains(state))
    }

    public func results(of batch: String) async throws -> [String: BatchItemOutcome] {
        let info = try await http.json(.GET, "/v1/batches/\(batch)")
        var outcomes: [String: BatchItemOutcome] = [:]
        for key in ["error_file_id", "output_file_id"] {
            guard let file = info[key]?.stringValue else { continue }
            try OpenAIBatchLines.outcomes(try await http.call(.GET, "/v1/files/\(file)/content"), into: &outcomes)
        }
        return outcomes
    }

    public func cancel(_ batch: String) async throws {
        _ = try await http.call(.POST, "/v1/batches/\(batch)/cancel")
    }
}
