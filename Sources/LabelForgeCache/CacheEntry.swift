import Foundation
import LabelForgeCore

/// One cached engine exchange: the canonical request material, the response and who answered.
public struct CacheEntry: Sendable {
    public var key: CacheKey
    /// The canonical document whose hash is `key` (CacheKey.material).
    public var request: JSONValue
    public var response: JSONValue
    public var engineInfo: JSONValue
    public var createdAt: Date

    public init(key: CacheKey, request: JSONValue, response: JSONValue, engineInfo: JSONValue, createdAt: Date = Date()) {
        self.key = key
        self.request = request
        self.response = response
        self.engineInfo = engineInfo
        self.createdAt = createdAt
    }

    /// The hash stored beside an entry and checked on every read: a corrupt entry is a miss.
    static func integrityHash(key: CacheKey, request: Data, response: Data) -> String {
        var material = Data(key.hex.utf8)
        material.append(0)
        material.append(request)
        material.append(0)
        material.append(response)
        return ContentHash.prefixed(ContentHash.hex(material))
    }
}

/// Counts a cache reports about itself (`labelforge cache stats`).
public struct CacheStats: Sendable {
    public var entries: Int
    public var bytes: Int64
    public var hits: Int
    public var byKind: [String: Int]
    public var path: String
}

/// Where cached engine responses live.
public protocol CacheStore: Sendable {
    /// The entry for `key`, or `nil` on a miss (including an entry that failed verification).
    func lookup(_ key: CacheKey) async throws -> CacheEntry?
    /// Stores an entry, replacing any with the same key.
    func store(_ entry: CacheEntry) async throws
    func stats() async throws -> CacheStats
}
