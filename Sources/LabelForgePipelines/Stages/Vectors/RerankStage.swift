import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `rerank`: relevance scores of documents for a query from a reranker (`POST /v1/rerank`, the shape
/// vLLM and llama.cpp share), e.g. to order mined negatives or retrieved passages.
///
/// `documents` names a field holding a list of texts (or one text). Each (query, document) pair is
/// its own cached request, so a document keeps its score whatever list it comes in; pairs of one
/// query travel together, up to `batch_size` per request. Outputs `scores` (one per document, in the
/// documents' order) and `order` (document positions, best first).
public struct RerankStage: RowWiseStage {
    public let config: RunConfig.Stage
    public let options: RerankOptions
    public let version = 1
    public let outputFields = ["scores", "order"]
    public let outputTypes: [String: ColumnType] = ["scores": .list(.float64), "order": .list(.int64)]

    public var optionReferences: [String] { [options.query, options.documents] }
    public var truncation: Truncation? { options.method == "judge" ? nil : options.truncate }

    public var engineUses: [EngineUse] {
        [EngineUse(engine: config.engine, task: .rerank, batchSize: options.batchSize)]
    }

    /// One row's scores: a single-document rerank request per document, concurrently, through the
    /// executor and the stage's batcher (which sends one query's pairs together).
    public func process(_ row: RowContext, sample: Int, in context: StageContext) async throws -> StageResult {
        guard let (query, documents) = options.inputs(of: row) else {
            return .failed(
                StageFailure(
                    errorClass: "missing_field",
                    message: "the row has no '\(options.query)' or '\(options.documents)' to rerank"))
        }
        let engine = try context.endpoint(.rerank)
        let limit = context.truncationLimit(.rerank)
        let requests = documents.map {
            PreparedRequest(
                .rerank(
                    query: query, document: $0, modelID: engine.modelID, endpoint: options.endpoint, truncate: limit),
                on: engine)
        }
        do {
            var scores: [Double] = []
            var truncated = 0
            for answer in try await context.sendAll(requests, on: engine) {
                let response = try RerankResponse(raw: answer.response, documents: 1)
                if response.truncatedFrom[0] != nil { truncated += 1 }
                scores.append(response.scores[0])
            }
            return StageResult(output: Answers.rerankFields(scores: scores), truncated: truncated)
        } catch {
            return .failed(StageFailure(error))
        }
    }

}

/// `rerank`'s options: the query's field, the documents' field, pairs per request, and the method:
/// `endpoint` (a reranker's `/v1/rerank`) or `judge` (a chat model asked yes or no per pair).
public struct RerankOptions: ParsedStageOptions {
    public var query: String
    public var documents: String
    public var batchSize = 32
    public var method = "endpoint"
    /// `rerank` (`POST /v1/rerank`, vLLM and llama.cpp) or `score` (vLLM's `POST /score`).
    public var endpoint = "rerank"
    /// How (query, document) pairs longer than the reranker's window are cut (the document first).
    public var truncate = Truncation.model

    package static let keys = ["query", "documents", "batch_size", "method", "endpoint", Truncation.key]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> RerankOptions {
        let batchNode = try node.child("batch_size")
        let batchSize = try batchNode?.int() ?? 32
        if batchSize < 1 { throw batchNode!.error("batch_size must be at least 1.") }
        let method = try node.child("method")?.oneOf(["endpoint", "judge"]) ?? "endpoint"
        let truncate = try node.child(Truncation.key)
        if let truncate, method == "judge" {
            throw truncate.error("'truncate' applies to rerank method endpoint only (a judge's prompt is a chat).")
        }
        return RerankOptions(
            query: try node.require("query").string(), documents: try node.require("documents").string(),
            batchSize: batchSize, method: method,
            endpoint: try node.child("endpoint")?.oneOf(["rerank", "score"]) ?? "rerank",
            truncate: try Truncation.parse(truncate, absent: context.absentTruncation))
    }

    /// The query and the documents of a row; `nil` when either is missing.
    func inputs(of row: RowContext) -> (query: String, documents: [String])? {
        guard let query = row.value(at: self.query), !query.isNull, let documents = row.value(at: self.documents),
            !documents.isNull
        else { return nil }
        return (query.textForm, documents.arrayValue?.map(\.textForm) ?? [documents.textForm])
    }

    /// The judge asks a chat model.
    public var engineTask: String? { method == "judge" ? "chat" : nil }

    public var resolvedJSON: [String: JSONValue] {
        var json: [String: JSONValue] = [
            "query": .string(query), "documents": .string(documents), "batch_size": .int(Int64(batchSize)),
            "method": .string(method), "endpoint": .string(endpoint),
        ]
        if method != "judge", let truncate = truncate.json { json[Truncation.key] = truncate }
        return json
    }
}
