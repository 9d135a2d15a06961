import Foundation
import LabelForgeCore

/// One cached engine exchange: the canonical request material, the response and who answered.
public struct CacheEntry: Sendable, Equatable {
    public var key: CacheKey
    /// The canonical JSON bytes of the document whose hash is `key` (CacheKey.material), as stored:
    /// verified by hashing the bytes, parsed only when someone reads `request`.
    public var requestData: Data
    /// The request kind recorded in the key material (`chat`, `embeddings`, `rerank`).
    public var kind: String
    public var response: JSONValue
    /// Binary data kept beside the JSON response, e.g. little-endian float32 vectors.
    public var payload: Data?
    /// What the engine reported about itself when it answered, as canonical JSON bytes: parsed only
    /// when someone reads `engineInfo` (a cached rerun reads thousands of entries and no info).
    public var engineInfoData: Data
    public var createdAt: Date

    public var engineInfo: JSONValue { (try? JSONValue.parse(engineInfoData)) ?? .null }

    public init(
        key: CacheKey, request: JSONValue, response: JSONValue, payload: Data? = nil, engineInfo: JSONValue,
        createdAt: Date = Date()
    ) {
        self.init(
            key: key, requestData: CanonicalJSON.data(request), kind: request["kind"]?.stringValue ?? "chat",
            response: response, payload: payload, engineInfo: engineInfo, createdAt: createdAt)
    }

    init(
        key: CacheKey, requestData: Data, kind: String, response: JSONValue, payload: Data?, engineInfo: JSONValue,
        createdAt: Date
    ) {
        self.init(
            key: key, requestData: requestData, kind: kind, response: response, payload: payload,
            engineInfoData: CanonicalJSON.data(engineInfo), createdAt: createdAt)
    }

    init(
        key: CacheKey, requestData: Data, kind: String, response: JSONValue, payload: Data?, engineInfoData: Data,
        createdAt: Date
    ) {
        self.key = key
        self.requestData = requestData
        self.kind = kind
        self.response = response
        self.payload = payload
        self.engineInfoData = engineInfoData
        self.createdAt = createdAt
    }

    /// The canonical document whose hash is `key`.
    public var request: JSONValue { (try? JSONValue.parse(requestData)) ?? .null }

    /// The hash stored beside an entry and checked on every read: a corrupt entry is a miss.
    ///
    /// Entries without a payload hash exactly as they did before payloads existed.
    static func integrityHash(key: CacheKey, request: Data, response: Data, payload: Data?) -> String {
        var material = Data(key.hex.utf8)
        material.append(0)
        material.append(request)
        material.append(0)
        material.append(response)
        if let payload {
            material.append(0)
            material.append(payload)
        }
        return ContentHash.prefixed(ContentHash.hex(material))
    }

    /// Whether the entry is what its key says: the request material hashes to the key.
    var isConsistent: Bool { ContentHash.hex(requestData) == key.hex }
}

/// Counts a cache reports about itself (`labelforge cache stats`).
///
/// Hits are not counted here: a hit never writes to the cache; the runs' manifests count them.
public struct CacheStats: Sendable {
    public var entries: Int
    public var bytes: Int64
    public var byKind: [String: Int]
    public var path: String
}

/// Where cached engine responses live: SQLite by default, memory for tests, and more stores
/// (filesystem, S3) behind the same protocol.
///
/// Reads verify every entry; a corrupt entry is a miss, never a wrong answer.
public protocol CacheStore: Sendable {
    /// The verified entries for `keys`; missing and corrupt ones are absent.
    func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry]
    /// Stores entries, replacing any with the same key, in one transaction where the store has them.
    func store(_ entries: [CacheEntry]) async throws
    /// Which of `keys` the store holds, without reading or verifying them.
    func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey>
    func stats() async throws -> CacheStats
    /// Reads and checks every entry; how many were checked and the keys that fail.
    func verifyAll() async throws -> (checked: Int, failed: [CacheKey])
    /// Entries that failed verification on a read so far (each one was treated as a miss, so the
    /// run asked the engine again and stored a good copy).
    var failedVerification: Int { get }
}

extension CacheStore {
    public var failedVerification: Int { 0 }

    /// Stores that keep entries only in memory have nothing on disk to check.
    public func verifyAll() async throws -> (checked: Int, failed: [CacheKey]) { (0, []) }

    /// The verified entry for `key`, or `nil` on a miss.
    public func lookup(_ key: CacheKey) async throws -> CacheEntry? {
        try await entries(for: [key])[key]
    }

    /// Stores one entry.
    public func store(_ entry: CacheEntry) async throws {
        try await store([entry])
    }

    /// Whether the store holds `key`.
    public func contains(_ key: CacheKey) async throws -> Bool {
        try await existing([key]).contains(key)
    }
}
