import Foundation
import LabelForgeCore
import LabelForgeLLM
import Synchronization

/// What a row-wise stage decided for one row (one sample of it): its output or why it failed, and
/// for a filter why the row was dropped. What the requests cost (keys, cache hits, attempts, tokens,
/// replicas) the `StageContext` records as they are sent.
public struct StageResult: Sendable {
    public var output: [String: JSONValue]?
    public var failure: StageFailure?
    /// Why a filter dropped the row; the line then goes to `<stage>.rejected.jsonl`.
    public var rejection: String?
    /// A vector for `outputs/<stage>.npy` (stages with `writesVectors`), not part of the JSON output.
    public var vector: [Float]?
    /// Texts (or rerank pairs) longer than the model's window, cut to it.
    public var truncated = 0

    public init(
        output: [String: JSONValue]? = nil, failure: StageFailure? = nil, rejection: String? = nil,
        vector: [Float]? = nil, truncated: Int = 0
    ) {
        self.output = output
        self.failure = failure
        self.rejection = rejection
        self.vector = vector
        self.truncated = truncated
    }

    /// A row that failed this stage: recorded, and the run goes on.
    public static func failed(_ failure: StageFailure) -> StageResult { StageResult(failure: failure) }
}
