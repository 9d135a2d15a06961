import Foundation
import LabelForgeCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Faults the batch stub injects, each decided from the item's custom id and how often it was
/// submitted, so a run is reproducible and an item submitted again can succeed.
public struct StubBatchFaults: Sendable {
    /// Share of items answered with an error (a 500 in OpenAI's output, `errored` in Anthropic's).
    public var itemFailure: Double
    /// Share of items left unanswered when their batch expires (OpenAI `batch_expired`, Anthropic
    /// `expired`); a batch holding one ends `expired`.
    public var itemExpiry: Double
    /// Batches (1-based, in creation order) that fail as a whole (OpenAI `failed` with `errors`;
    /// Anthropic: every item `errored`).
    public var failedBatches: Set<Int>
    /// Polls a batch stays in progress before it ends (a slow batch: many).
    public var pollsToEnd: Int
    /// Batches (1-based) that stay in progress however often they are polled, until the faults change.
    public var stuckBatches: Set<Int>

    public init(
        itemFailure: Double = 0, itemExpiry: Double = 0, failedBatches: Set<Int> = [], pollsToEnd: Int = 2,
        stuckBatches: Set<Int> = []
    ) {
        self.itemFailure = itemFailure
        self.itemExpiry = itemExpiry
        self.failedBatches = failedBatches
        self.pollsToEnd = pollsToEnd
        self.stuckBatches = stuckBatches
    }
}

/// An HTTP server speaking OpenAI's Batch API (`/v1/files`, `/v1/batches`) and Anthropic's Message
/// Batches API (`/v1/messages/batches`) in their documented shapes (checked with the official
/// Python SDKs' types by the tests), answering each item as `StubEngine` answers the same request
/// online (`StubEngine.completion`), with faults on demand (`StubBatchFaults`).
///
/// Batches end after `pollsToEnd` reads of their status; the results are decided then.
public final class StubBatchAPI: Sendable {
    public let model: String
    private let channel: Channel
    let state: NIOLockedValueBox<State>
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    struct Batch {
        var id: String
        var anthropic: Bool
        var number: Int
        var endpoint: String
        var inputFile: String?
        var metadata: JSONValue
        /// custom id → request body (OpenAI chat body, or Anthropic params).
        var items: [(String, JSONValue)]
        var polls = 0
        var status: String
        var outputFile: String? = nil
        var errorFile: String? = nil
        var results: Data? = nil
        var counts: [String: Int] = [:]
        var errors: JSONValue = .null
        var createdAt: Int
    }

    struct State {
        var files: [String: (name: String, data: Data)] = [:]
        var batches: [String: Batch] = [:]
        var order: [String] = []
        /// How often each custom id was submitted, and how often it succeeded.
        var submissions: [String: Int] = [:]
        var successes: [String: Int] = [:]
        var cancels: [String] = []
        /// Request bodies as received (`POST /v1/batches`, `POST /v1/messages/batches`), and the
        /// uploaded files' lines, for the SDK type checks.
        var createBodies: [JSONValue] = []
        var headers: [[String: String]] = []
        var faults: StubBatchFaults
        var clock = 1_765_000_000
        var port = 0
    }

    /// Batches created so far, in order.
    public var batchesCreated: Int { state.withLockedValue { $0.order.count } }
    /// How often each custom id was submitted.
    public var submissions: [String: Int] { state.withLockedValue { $0.submissions } }
    /// How often each custom id was answered with success.
    public var successes: [String: Int] { state.withLockedValue { $0.successes } }
    /// Batch ids cancelled.
    public var cancelled: [String] { state.withLockedValue { $0.cancels } }
    /// Batch create bodies received, in order.
    public var createBodies: [JSONValue] { state.withLockedValue { $0.createBodies } }
    /// Each request's headers (lowercased names), for checks of the key and the version header.
    public var requestHeaders: [[String: String]] { state.withLockedValue { $0.headers } }
    /// The files uploaded to `POST /v1/files` (the stub's own output and error files aside), in order.
    public var uploads: [Data] {
        state.withLockedValue { state in
            state.files.sorted { Int($0.key.dropFirst(5))! < Int($1.key.dropFirst(5))! }
                .filter { !$0.value.name.hasPrefix("batch_") }.map(\.value.data)
        }
    }
    /// Every batch's status now, in creation order.
    public var statuses: [String] { state.withLockedValue { s in s.order.map { s.batches[$0]!.status } } }

    /// Changes the faults for batches that end from now on.
    public func setFaults(_ faults: StubBatchFaults) { state.withLockedValue { $0.faults = faults } }

    public static func start(model: String = "stub-model", faults: StubBatchFaults = StubBatchFaults()) async throws
        -> StubBatchAPI
    {
        let state = NIOLockedValueBox(State(faults: faults))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(StubBatchHandler(model: model, state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        state.withLockedValue { $0.port = channel.localAddress!.port! }
        return StubBatchAPI(model: model, channel: channel, state: state)
    }

    private init(model: String, channel: Channel, state: NIOLockedValueBox<State>) {
        self.model = model
        self.channel = channel
        self.state = state
        port = channel.localAddress!.port!
    }

    public func stop() async { try? await channel.close() }

    /// A reproducible number in [0, 1) for an item's `attempt`-th submission (tests predict the
    /// faults with it).
    public static func draw(_ custom: String, attempt: Int) -> Double {
        let hex = ContentHash.hex(Data("\(custom)#\(attempt)".utf8))
        return Double(UInt64(hex.prefix(12), radix: 16)!) / Double(UInt64(1) << 48)
    }
}

private final class StubBatchHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let model: String
    let state: NIOLockedValueBox<StubBatchAPI.State>
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(model: String, state: NIOLockedValueBox<StubBatchAPI.State>) {
        self.model = model
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            let (status, type, reply) = state.withLockedValue { state in
                state.headers.append(
                    Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a }))
                return route(head, Data(body.readableBytesView), &state)
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(reply.count))
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private func json(_ status: Int, _ value: JSONValue) -> (Int, String, Data) {
        (status, "application/json", CanonicalJSON.data(value))
    }

    private func error(_ status: Int, _ message: String, anthropic: Bool) -> (Int, String, Data) {
        if anthropic {
            return json(
                status, ["type": "error", "error": ["type": "invalid_request_error", "message": .string(message)]])
        }
        return json(
            status,
            ["error": ["message": .string(message), "type": "invalid_request_error", "param": nil, "code": nil]])
    }

    private func route(_ head: HTTPRequestHead, _ data: Data, _ state: inout StubBatchAPI.State) -> (Int, String, Data)
    {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let parts = path.split(separator: "/").map(String.init)
        let anthropic = path.hasPrefix("/v1/messages/")
        if !anthropic && head.headers.first(name: "Authorization")?.hasPrefix("Bearer ") != true {
            return error(401, "You didn't provide an API key.", anthropic: false)
        }
        let key = head.headers.first(name: "x-api-key") ?? head.headers.first(name: "Authorization")
        if anthropic && (key == nil || head.headers.first(name: "anthropic-version") == nil) {
            return error(
                401, "an API key (x-api-key or Authorization) and anthropic-version are required", anthropic: true)
        }
        // The route with its id replaced by ":id" (the segment after `files` or `batches`).
        var id = ""
        var shape: [String] = []
        for (i, part) in parts.enumerated() {
            if i > 0, ["files", "batches"].contains(parts[i - 1]) {
                id = part
                shape.append(":id")
            } else {
                shape.append(part)
            }
        }
        switch (head.method, "/" + shape.joined(separator: "/")) {
        case (.POST, "/v1/files"):
            return upload(head, data, &state)
        case (.GET, "/v1/files/:id/content"):
            guard let file = state.files[id] else { return error(404, "No such File object: \(id)", anthropic: false) }
            return (200, "application/octet-stream", file.data)
        case (.POST, "/v1/batches"):
            return createOpenAI(data, &state)
        case (.GET, "/v1/batches"):
            return list(head.uri, &state)
        case (.GET, "/v1/batches/:id"):
            guard state.batches[id] != nil else { return error(404, "No such batch: \(id)", anthropic: false) }
            poll(id, &state)
            return json(200, openAIObject(state.batches[id]!))
        case (.POST, "/v1/batches/:id/cancel"), (.POST, "/v1/messages/batches/:id/cancel"):
            guard var batch = state.batches[id] else { return error(404, "No such batch: \(id)", anthropic: anthropic) }
            state.cancels.append(id)
            if !["completed", "failed", "expired", "cancelled", "ended"].contains(batch.status) {
                end(&batch, &state, cancelled: true)
                state.batches[id] = batch
            }
            return json(200, anthropic ? anthropicObject(batch, port: state.port) : openAIObject(batch))
        case (.POST, "/v1/messages/batches"):
            return createAnthropic(data, &state)
        case (.GET, "/v1/messages/batches/:id"):
            guard state.batches[id] != nil else { return error(404, "No such batch: \(id)", anthropic: true) }
            poll(id, &state)
            return json(200, anthropicObject(state.batches[id]!, port: state.port))
        case (.GET, "/v1/messages/batches/:id/results"):
            guard let results = state.batches[id]?.results else {
                return error(404, "Batch \(id) has not ended", anthropic: true)
            }
            return (200, "application/binary", results)
        default:
            return error(404, "Not found: \(head.method.rawValue) \(path)", anthropic: anthropic)
        }
    }

    /// `POST /v1/files`, multipart: `purpose` and `file`.
    private func upload(_ head: HTTPRequestHead, _ data: Data, _ state: inout StubBatchAPI.State) -> (Int, String, Data)
    {
        guard let type = head.headers.first(name: "Content-Type"), let range = type.range(of: "boundary=") else {
            return error(400, "Expected multipart/form-data", anthropic: false)
        }
        let boundary = Data(("--" + type[range.upperBound...].trimmingCharacters(in: .init(charactersIn: "\""))).utf8)
        var fields: [String: (filename: String?, data: Data)] = [:]
        var rest = data[...]
        while let start = rest.range(of: boundary) {
            rest = rest[start.upperBound...]
            guard let headerEnd = rest.range(of: Data("\r\n\r\n".utf8)) else { break }
            let header = String(decoding: rest[..<headerEnd.lowerBound], as: UTF8.self)
            let content = rest[headerEnd.upperBound...]
            guard let next = content.range(of: boundary) else { break }
            var value = content[..<next.lowerBound]
            if value.suffix(2) == Data("\r\n".utf8) { value = value.dropLast(2) }
            func attribute(_ name: String) -> String? {
                guard let r = header.range(of: name + "=\"") else { return nil }
                return String(header[r.upperBound...].prefix { $0 != "\"" })
            }
            if let name = attribute("name") { fields[name] = (attribute("filename"), Data(value)) }
            rest = content[next.lowerBound...]
        }
        guard fields["purpose"].map({ String(decoding: $0.data, as: UTF8.self) }) == "batch", let file = fields["file"]
        else {
            return error(400, "purpose must be 'batch' and a file is required", anthropic: false)
        }
        state.clock += 1
        let id = "file-\(state.files.count + 1)"
        state.files[id] = (file.filename ?? "upload.jsonl", file.data)
        return json(
            200,
            [
                "id": .string(id), "object": "file", "bytes": .int(Int64(file.data.count)),
                "created_at": .int(Int64(state.clock)), "filename": .string(file.filename ?? "upload.jsonl"),
                "purpose": "batch", "status": "processed", "expires_at": nil, "status_details": nil,
            ])
    }

    private func createOpenAI(_ data: Data, _ state: inout StubBatchAPI.State) -> (Int, String, Data) {
        guard let body = try? JSONValue.parse(data), let fileID = body["input_file_id"]?.stringValue,
            let endpoint = body["endpoint"]?.stringValue, body["completion_window"]?.stringValue == "24h"
        else {
            return error(400, "input_file_id, endpoint and completion_window '24h' are required", anthropic: false)
        }
        guard let file = state.files[fileID] else {
            return error(404, "No such File object: \(fileID)", anthropic: false)
        }
        var items: [(String, JSONValue)] = []
        for line in file.data.split(separator: 0x0A) where !line.isEmpty {
            guard let value = try? JSONValue.parse(Data(line)), let id = value["custom_id"]?.stringValue,
                value["method"] == "POST", value["url"]?.stringValue == endpoint, let request = value["body"]
            else {
                return error(
                    400, "The input file has a line that is not a batch request for \(endpoint)", anthropic: false)
            }
            items.append((id, request))
        }
        state.createBodies.append(body)
        return json(
            200,
            openAIObject(
                create(
                    items, anthropic: false, endpoint: endpoint, file: fileID, metadata: body["metadata"] ?? .null,
                    &state)))
    }

    private func createAnthropic(_ data: Data, _ state: inout StubBatchAPI.State) -> (Int, String, Data) {
        guard let body = try? JSONValue.parse(data), let requests = body["requests"]?.arrayValue, !requests.isEmpty
        else {
            return error(400, "requests: a non-empty list is required", anthropic: true)
        }
        var items: [(String, JSONValue)] = []
        for request in requests {
            guard let id = request["custom_id"]?.stringValue, let params = request["params"],
                params["max_tokens"]?.intValue != nil, params["messages"]?.arrayValue != nil
            else {
                return error(
                    400, "each request needs custom_id and params with max_tokens and messages", anthropic: true)
            }
            items.append((id, params))
        }
        state.createBodies.append(body)
        return json(
            200,
            anthropicObject(
                create(items, anthropic: true, endpoint: "/v1/messages", file: nil, metadata: .null, &state),
                port: state.port))
    }

    private func create(
        _ items: [(String, JSONValue)], anthropic: Bool, endpoint: String, file: String?, metadata: JSONValue,
        _ state: inout StubBatchAPI.State
    ) -> StubBatchAPI.Batch {
        state.clock += 1
        let number = state.order.count + 1
        let id = anthropic ? "msgbatch_\(number)" : "batch_\(number)"
        for (custom, _) in items { state.submissions[custom, default: 0] += 1 }
        let batch = StubBatchAPI.Batch(
            id: id, anthropic: anthropic, number: number, endpoint: endpoint, inputFile: file, metadata: metadata,
            items: items, status: anthropic ? "in_progress" : "validating", createdAt: state.clock)
        state.batches[id] = batch
        state.order.append(id)
        return batch
    }

    private func list(_ uri: String, _ state: inout StubBatchAPI.State) -> (Int, String, Data) {
        let query = URLComponents(string: uri)?.queryItems ?? []
        let limit = Int(query.first { $0.name == "limit" }?.value ?? "") ?? 20
        let after = query.first { $0.name == "after" }?.value
        var ids = Array(state.order.reversed())
        if let after, let i = ids.firstIndex(of: after) { ids = Array(ids[(i + 1)...]) }
        let page = ids.prefix(limit).map { openAIObject(state.batches[$0]!) }
        return json(
            200,
            [
                "object": "list", "data": .array(Array(page)), "first_id": page.first?["id"] ?? nil,
                "last_id": page.last?["id"] ?? nil, "has_more": .bool(ids.count > limit),
            ])
    }

    private func poll(_ id: String, _ state: inout StubBatchAPI.State) {
        guard var batch = state.batches[id], ["validating", "in_progress", "finalizing"].contains(batch.status) else {
            return
        }
        batch.polls += 1
        if batch.polls >= state.faults.pollsToEnd && !state.faults.stuckBatches.contains(batch.number) {
            end(&batch, &state, cancelled: false)
        } else if !batch.anthropic {
            batch.status = "in_progress"
        }
        state.batches[id] = batch
    }

    /// Decides every item's outcome and writes the results.
    private func end(_ batch: inout StubBatchAPI.Batch, _ state: inout StubBatchAPI.State, cancelled: Bool) {
        state.clock += 1
        let faults = state.faults
        let failedWhole = faults.failedBatches.contains(batch.number)
        var output = Data()
        var errors = Data()
        var counts: [String: Int] = [:]
        var expired = false
        for (index, (custom, request)) in batch.items.enumerated() {
            let draw = StubBatchAPI.draw(custom, attempt: state.submissions[custom] ?? 1)
            let outcome: String
            if cancelled {
                outcome = "canceled"
            } else if failedWhole {
                outcome = "failed_whole"
            } else if draw < faults.itemFailure {
                outcome = "errored"
            } else if draw < faults.itemFailure + faults.itemExpiry {
                outcome = "expired"
                expired = true
            } else {
                outcome = "succeeded"
            }
            counts[outcome, default: 0] += 1
            if outcome == "succeeded" { state.successes[custom, default: 0] += 1 }
            if batch.anthropic {
                output.append(CanonicalJSON.data(anthropicResult(custom, request, outcome)))
                output.append(0x0A)
                continue
            }
            // A batch that failed whole wrote no files; a cancelled one's unfinished items are missing.
            if outcome == "failed_whole" || outcome == "canceled" { continue }
            let line = openAIResult(custom, request, outcome, index: index, batch: batch.id)
            if outcome == "succeeded" {
                output.append(CanonicalJSON.data(line))
                output.append(0x0A)
            } else {
                errors.append(CanonicalJSON.data(line))
                errors.append(0x0A)
            }
        }
        batch.counts = counts
        if batch.anthropic {
            batch.status = "ended"
            batch.results = output
            return
        }
        if failedWhole {
            batch.status = "failed"
            batch.errors = [
                "object": "list",
                "data": [
                    [
                        "code": "invalid_request",
                        "message": "The batch input file could not be processed (stub fault).",
                        "param": nil, "line": nil,
                    ]
                ],
            ]
            return
        }
        func store(_ data: Data, _ name: String) -> String? {
            guard !data.isEmpty else { return nil }
            let id = "file-\(state.files.count + 1)"
            state.files[id] = (name, data)
            return id
        }
        batch.outputFile = store(output, "\(batch.id)_output.jsonl")
        batch.errorFile = store(errors, "\(batch.id)_error.jsonl")
        batch.status = cancelled ? "cancelled" : expired ? "expired" : "completed"
    }

    private func openAIResult(_ custom: String, _ request: JSONValue, _ outcome: String, index: Int, batch: String)
        -> JSONValue
    {
        let lineID: JSONValue = .string("batch_req_\(batch)_\(index)")
        switch outcome {
        case "succeeded":
            let text: String
            if case .content(let t) = StubEngine.followConstraint(request) { text = t } else { text = "ok" }
            return [
                "id": lineID, "custom_id": .string(custom),
                "response": [
                    "status_code": 200, "request_id": .string("req_\(index)"),
                    "body": StubEngine.completion(for: request, text: text, model: model),
                ],
                "error": nil,
            ]
        case "errored":
            return [
                "id": lineID, "custom_id": .string(custom),
                "response": [
                    "status_code": 500, "request_id": .string("req_\(index)"),
                    "body": [
                        "error": [
                            "message": "The server had an error processing your request (stub fault).",
                            "type": "server_error", "param": nil, "code": nil,
                        ]
                    ],
                ],
                "error": nil,
            ]
        default:
            return [
                "id": lineID, "custom_id": .string(custom), "response": nil,
                "error": [
                    "code": outcome == "canceled" ? "batch_cancelled" : "batch_expired",
                    "message": outcome == "canceled"
                        ? "This request was not executed because the batch was cancelled."
                        : "This request could not be executed before the completion window expired.",
                ],
            ]
        }
    }

    private func anthropicResult(_ custom: String, _ params: JSONValue, _ outcome: String) -> JSONValue {
        switch outcome {
        case "succeeded":
            // The same answer and usage the OpenAI-shaped request would have had.
            var openAI: [String: JSONValue] = ["messages": params["messages"] ?? []]
            if let schema = params["output_config"]?["format"]?["schema"] {
                openAI["response_format"] = [
                    "type": "json_schema", "json_schema": ["name": "answer", "schema": schema],
                ]
            }
            let text: String
            if case .content(let t) = StubEngine.followConstraint(.object(openAI)) { text = t } else { text = "ok" }
            let completion = StubEngine.completion(for: .object(openAI), text: text, model: model)
            return [
                "custom_id": .string(custom),
                "result": [
                    "type": "succeeded",
                    "message": [
                        "id": .string("msg_\(custom.prefix(12))"), "type": "message", "role": "assistant",
                        "model": .string(model), "content": [["type": "text", "text": .string(text)]],
                        "stop_reason": "end_turn", "stop_sequence": nil,
                        "usage": [
                            "input_tokens": completion["usage"]?["prompt_tokens"] ?? 0,
                            "output_tokens": completion["usage"]?["completion_tokens"] ?? 0,
                            "cache_creation_input_tokens": nil, "cache_read_input_tokens": nil,
                        ],
                    ],
                ],
            ]
        case "errored", "failed_whole":
            return [
                "custom_id": .string(custom),
                "result": [
                    "type": "errored",
                    "error": [
                        "type": "error",
                        "error": ["type": "api_error", "message": "Internal server error (stub fault)."],
                    ],
                ],
            ]
        default:
            return ["custom_id": .string(custom), "result": ["type": .string(outcome)]]
        }
    }

    private func openAIObject(_ batch: StubBatchAPI.Batch) -> JSONValue {
        let ended = ["completed", "failed", "expired", "cancelled"].contains(batch.status)
        let completed = batch.counts["succeeded"] ?? 0
        return [
            "id": .string(batch.id), "object": "batch", "endpoint": .string(batch.endpoint), "errors": batch.errors,
            "input_file_id": .string(batch.inputFile ?? ""), "completion_window": "24h",
            "status": .string(batch.status),
            "output_file_id": batch.outputFile.map(JSONValue.string) ?? nil,
            "error_file_id": batch.errorFile.map(JSONValue.string) ?? nil, "created_at": .int(Int64(batch.createdAt)),
            "in_progress_at": nil, "expires_at": .int(Int64(batch.createdAt + 86400)), "finalizing_at": nil,
            "completed_at": batch.status == "completed" ? .int(Int64(batch.createdAt + 1)) : nil,
            "failed_at": batch.status == "failed" ? .int(Int64(batch.createdAt + 1)) : nil,
            "expired_at": batch.status == "expired" ? .int(Int64(batch.createdAt + 1)) : nil, "cancelling_at": nil,
            "cancelled_at": batch.status == "cancelled" ? .int(Int64(batch.createdAt + 1)) : nil,
            "request_counts": [
                "total": .int(Int64(batch.items.count)), "completed": .int(Int64(completed)),
                "failed": .int(Int64(ended ? batch.items.count - completed : 0)),
            ],
            "metadata": batch.metadata,
        ]
    }

    private func anthropicObject(_ batch: StubBatchAPI.Batch, port: Int) -> JSONValue {
        let ended = batch.status == "ended"
        let count = { (key: String) -> JSONValue in .int(Int64(batch.counts[key] ?? 0)) }
        return [
            "id": .string(batch.id), "type": "message_batch", "processing_status": .string(batch.status),
            "request_counts": [
                "processing": .int(Int64(ended ? 0 : batch.items.count)), "succeeded": count("succeeded"),
                "errored": .int(Int64((batch.counts["errored"] ?? 0) + (batch.counts["failed_whole"] ?? 0))),
                "canceled": count("canceled"), "expired": count("expired"),
            ],
            "ended_at": ended ? "2026-12-07T00:00:01Z" : nil, "created_at": "2026-12-07T00:00:00Z",
            "expires_at": "2026-12-08T00:00:00Z", "archived_at": nil, "cancel_initiated_at": nil,
            "results_url": ended ? .string("http://127.0.0.1:\(port)/v1/messages/batches/\(batch.id)/results") : nil,
        ]
    }
}
