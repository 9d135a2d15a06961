import Foundation
import LabelForgeCore
import LabelForgeLLM

/// `rerank`: relevance scores of documents for a query from a reranker (`POST /v1/rerank`, the shape
/// vLLM and llama.cpp share), e.g. to order mined negatives or retrieved passages.
///
/// `documents` names a field holding a list of texts (or one text). Each (query, document) pair is
/// its own cached request, so a document keeps its score whatever list it comes in; pairs of one
/// query travel together, up to `batch_size` per request. Outputs `scores` (one per document, in the
/// documents' order) and `order` (document positions, best first).
public struct RerankStage: PipelineStage {
    public let config: RunConfig.Stage
    public let options: RerankOptions
    public let version = 1
    public let outputFields = ["scores", "order"]

    public var optionReferences: [String] { [options.query, options.documents] }

    /// The query and the documents of a row; `nil` when either is missing.
    func inputs(of row: RowContext) -> (query: String, documents: [String])? {
        guard let query = row.value(at: options.query), !query.isNull, let documents = row.value(at: options.documents),
            !documents.isNull
        else { return nil }
        return (query.textForm, documents.arrayValue?.map(\.textForm) ?? [documents.textForm])
    }

    static func request(query: String, document: String, modelID: String) -> EngineRequest {
        EngineRequest(kind: .rerank, body: RerankRequest(query: query, documents: [document]).body(modelID: modelID))
    }

    static func fields(scores: [Double]) -> [String: JSONValue] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return [
            "scores": .array(scores.map { .double(($0 * 1e6).rounded() / 1e6) }),
            "order": .array(order.map { .int(Int64($0)) }),
        ]
    }
}

/// `rerank`'s options: the query's field, the documents' field, and pairs per request.
public struct RerankOptions: ParsedStageOptions {
    public var query: String
    public var documents: String
    public var batchSize = 32

    static let keys = ["query", "documents", "batch_size"]

    static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> RerankOptions {
        let batchNode = try node.child("batch_size")
        let batchSize = try batchNode?.int() ?? 32
        if batchSize < 1 { throw batchNode!.error("batch_size must be at least 1.") }
        return RerankOptions(
            query: try node.require("query").string(), documents: try node.require("documents").string(),
            batchSize: batchSize)
    }

    public var resolvedJSON: [String: JSONValue] {
        ["query": .string(query), "documents": .string(documents), "batch_size": .int(Int64(batchSize))]
    }
}
