import LabelForgeCore
import LabelForgeEval

/// Counts for one stage of a run.
public struct StageStats: Sendable, Equatable {
    public var ok = 0
    public var failed = 0
    public var cacheHits = 0
    public var cacheMisses = 0
    public var tokensIn = 0
    public var tokensOut = 0
    public var errorsByClass: [String: Int] = [:]
    /// Rows a filter or a barrier removed.
    public var dropped = 0
    /// Texts longer than the embedding or rerank model's window, cut to it.
    public var truncated = 0

    package init(
        ok: Int = 0, failed: Int = 0, cacheHits: Int = 0, cacheMisses: Int = 0, tokensIn: Int = 0, tokensOut: Int = 0,
        errorsByClass: [String: Int] = [:], dropped: Int = 0, truncated: Int = 0
    ) {
        self.ok = ok
        self.failed = failed
        self.cacheHits = cacheHits
        self.cacheMisses = cacheMisses
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.errorsByClass = errorsByClass
        self.dropped = dropped
        self.truncated = truncated
    }

    package var json: JSONValue {
        var json: [String: JSONValue] = [
            "ok": .int(Int64(ok)), "failed": .int(Int64(failed)), "cache_hits": .int(Int64(cacheHits)),
            "cache_misses": .int(Int64(cacheMisses)), "tokens_in": .int(Int64(tokensIn)),
            "tokens_out": .int(Int64(tokensOut)),
            "errors_by_class": .object(errorsByClass.mapValues { .int(Int64($0)) }),
        ]
        if dropped > 0 { json["dropped"] = .int(Int64(dropped)) }
        if truncated > 0 { json["truncated"] = .int(Int64(truncated)) }
        return .object(json)
    }
}
