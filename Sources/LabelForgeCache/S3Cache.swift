import AsyncHTTPClient
import Foundation
import LabelForgeCore
import Logging
import NIOHTTP1
import Synchronization

/// The cache in an S3-compatible bucket, shared by every machine that can reach it: shards of one
/// run, replays on a laptop, CI.
///
/// One object per entry, named by its key (`<prefix>/<first two hex digits>/<key>.json`): the
/// canonical request, the response, the payload (base64), the engine info and the same integrity
/// hash the SQLite cache keeps, all checked on every read, so a corrupt or misplaced object is a
/// miss, never a wrong answer. Writes carry `If-None-Match: *`: the first writer of a key wins and
/// later writers (another shard that asked the same request) keep its answer. An object that
/// failed verification is overwritten unconditionally.
public final class S3Cache: CacheStore {
    public let location: S3Location
    private let client: S3Client
    /// HTTP requests this cache sent to the server so far, retries included.
    public var requestsSent: Int { client.requestsSent }
    private let logger: Logger
    private let failures = Atomic<Int>(0)
    /// Keys whose object failed verification in this process: the next store replaces it.
    private let corrupt = Mutex<Set<CacheKey>>([])
    /// GETs and HEADs in flight at once.
    private let parallelism = 16

    public var failedVerification: Int { failures.load(ordering: .relaxed) }

    public init(location: S3Location, credentials: S3Credentials, logger: Logger) {
        self.location = location
        self.client = S3Client(location: location, credentials: credentials)
        self.logger = logger
    }

    /// Opens the cache and checks it can read and write the bucket (a clear error on wrong
    /// credentials or a missing bucket before any engine request).
    public static func open(location: S3Location, environment: [String: String], logger: Logger) async throws
        -> S3Cache
    {
        let credentials = try S3Credentials.resolve(profile: location.profile, environment: environment)
        let cache = S3Cache(location: location, credentials: credentials, logger: logger)
        try await cache.checkAccess(credentialSource: credentials.source)
        return cache
    }

    /// Lists one key under the prefix: 200 means the bucket exists and the credentials may read it.
    func checkAccess(credentialSource: String) async throws {
        let reply = try await client.call(
            .GET, key: nil, query: [("list-type", "2"), ("max-keys", "1"), ("prefix", objectPrefix)])
        switch reply.status {
        case 200: return
        case 403:
            throw LabelForgeError(
                .cache,
                "The S3 cache \(location.description) refused the credentials from \(credentialSource)"
                    + S3Client.errorDetail(reply.body)
                    + ". Check the access key and secret (and the region) for this bucket.")
        case 404:
            throw LabelForgeError(
                .cache,
                "The S3 cache \(location.description) has no bucket '\(location.bucket)'"
                    + S3Client.errorDetail(reply.body) + ". Create it, or fix cache.bucket.")
        default:
            throw LabelForgeError(
                .cache,
                "The S3 cache \(location.description) answered HTTP \(reply.status)" + S3Client.errorDetail(reply.body)
                    + ".")
        }
    }

    private var objectPrefix: String { location.prefix.isEmpty ? "" : location.prefix + "/" }

    /// The object name of `key`.
    func objectName(_ key: CacheKey) -> String {
        objectPrefix + String(key.hex.prefix(2)) + "/" + key.hex + ".json"
    }

    /// An entry as an object's bytes.
    static func encode(_ entry: CacheEntry) -> Data {
        let response = CanonicalJSON.data(entry.response)
        let integrity = CacheEntry.integrityHash(
            key: entry.key, request: entry.requestData, response: response, payload: entry.payload)
        let object: JSONValue = [
            "format": "labelforge-cache-entry/1", "key": .string(entry.key.hex), "kind": .string(entry.kind),
            "request": entry.request, "response": entry.response,
            "payload": entry.payload.map { .string($0.base64EncodedString()) } ?? .null,
            "engine_info": entry.engineInfo, "created_at": .double(entry.createdAt.timeIntervalSince1970),
            "integrity": .string(integrity),
        ]
        return CanonicalJSON.data(object)
    }

    /// An object's entry, or nil when it is not the verified entry of `key`.
    static func decode(_ data: Data, key: CacheKey) -> CacheEntry? {
        guard let object = try? JSONValue.parse(data), object["key"]?.stringValue == key.hex,
            let request = object["request"], let response = object["response"],
            let integrity = object["integrity"]?.stringValue
        else { return nil }
        let requestData = CanonicalJSON.data(request)
        var payload: Data?
        if let encoded = object["payload"]?.stringValue {
            guard let decoded = Data(base64Encoded: encoded) else { return nil }
            payload = decoded
        }
        guard ContentHash.hex(requestData) == key.hex,
            CacheEntry.integrityHash(
                key: key, request: requestData, response: CanonicalJSON.data(response), payload: payload) == integrity
        else { return nil }
        return CacheEntry(
            key: key, requestData: requestData, kind: object["kind"]?.stringValue ?? "chat", response: response,
            payload: payload, engineInfoData: CanonicalJSON.data(object["engine_info"] ?? .null),
            createdAt: Date(timeIntervalSince1970: object["created_at"]?.doubleValue ?? 0))
    }

    /// Runs `body` over `keys`, `parallelism` at a time, and collects the non-nil results.
    private func concurrently<T: Sendable>(
        _ keys: [CacheKey], _ body: @escaping @Sendable (CacheKey) async throws -> T?
    ) async throws -> [CacheKey: T] {
        try await withThrowingTaskGroup(of: (CacheKey, T?).self) { group in
            var found: [CacheKey: T] = [:]
            var next = 0
            for _ in 0..<min(parallelism, keys.count) {
                let key = keys[next]
                group.addTask { (key, try await body(key)) }
                next += 1
            }
            while let (key, value) = try await group.next() {
                if let value { found[key] = value }
                if next < keys.count {
                    let key = keys[next]
                    group.addTask { (key, try await body(key)) }
                    next += 1
                }
            }
            return found
        }
    }

    public func entries(for keys: [CacheKey]) async throws -> [CacheKey: CacheEntry] {
        try await concurrently(Array(Set(keys))) { key in
            let reply = try await self.client.call(.GET, key: self.objectName(key))
            switch reply.status {
            case 200:
                guard let entry = Self.decode(reply.body, key: key) else {
                    self.logger.warning("cache entry \(key) failed verification; treating it as a miss")
                    self.failures.add(1, ordering: .relaxed)
                    self.corrupt.withLock { _ = $0.insert(key) }
                    return nil
                }
                return entry
            case 404: return nil
            default: throw self.failure(reply, doing: "read \(key)")
            }
        }
    }

    public func existing(_ keys: [CacheKey]) async throws -> Set<CacheKey> {
        Set(
            try await concurrently(Array(Set(keys))) { key -> Bool? in
                let reply = try await self.client.call(.HEAD, key: self.objectName(key))
                switch reply.status {
                case 200: return true
                case 404: return nil
                default: throw self.failure(reply, doing: "look up \(key)")
                }
            }.keys)
    }

    public func store(_ entries: [CacheEntry]) async throws {
        if let wrong = entries.first(where: { !$0.isConsistent }) {
            throw LabelForgeError(
                .io, "Refusing to cache an entry whose request does not hash to its key \(wrong.key); this is a bug.")
        }
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        _ = try await concurrently(Array(byKey.keys)) { key -> Bool? in
            let replace = self.corrupt.withLock { $0.remove(key) != nil }
            let reply = try await self.client.call(
                .PUT, key: self.objectName(key), body: Self.encode(byKey[key]!),
                headers: replace ? [:] : ["If-None-Match": "*"])
            switch reply.status {
            // 412: another writer stored this key first; its answer stands.
            case 200, 412: return nil
            default: throw self.failure(reply, doing: "store \(key)")
            }
        }
    }

    private func failure(_ reply: S3Client.Reply, doing what: String) -> LabelForgeError {
        let advice =
            reply.status == 403
            ? " The credentials may not read or write this bucket and prefix." : ""
        return LabelForgeError(
            .cache,
            "The S3 cache \(location.description) could not \(what): HTTP \(reply.status)"
                + S3Client.errorDetail(reply.body) + "." + advice)
    }

    /// Every object under the prefix: (object name, size), following continuation tokens.
    func listAll() async throws -> [(name: String, size: Int64)] {
        var objects: [(String, Int64)] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", objectPrefix)]
            if let token { query.append(("continuation-token", token)) }
            let reply = try await client.call(.GET, key: nil, query: query)
            guard reply.status == 200 else { throw failure(reply, doing: "list \(objectPrefix)") }
            let xml = String(decoding: reply.body, as: UTF8.self)
            for contents in S3Client.elements("Contents", in: xml) {
                guard let name = S3Client.element("Key", in: contents) else { continue }
                objects.append((name, Int64(S3Client.element("Size", in: contents) ?? "") ?? 0))
            }
            token =
                S3Client.element("IsTruncated", in: xml) == "true"
                ? S3Client.element("NextContinuationToken", in: xml) : nil
        } while token != nil
        return objects.filter { $0.0.hasSuffix(".json") }
    }

    /// The cache key an object name holds, if it is one of this cache's.
    private func key(ofObject name: String) -> CacheKey? {
        guard name.hasPrefix(objectPrefix), name.hasSuffix(".json") else { return nil }
        let hex = (name.dropLast(5) as Substring).split(separator: "/").last.map(String.init) ?? ""
        return hex.count == 64 ? CacheKey(hex: hex) : nil
    }

    public func stats() async throws -> CacheStats {
        let objects = try await listAll()
        return CacheStats(
            entries: objects.count, bytes: objects.reduce(0) { $0 + $1.size }, byKind: [:],
            path: "s3://\(location.bucket)/\(location.prefix) (\(location.endpoint))")
    }

    /// Reads and checks every object under the prefix; returns how many and the failing keys.
    public func verifyAll() async throws -> (checked: Int, failed: [CacheKey]) {
        let keys = try await listAll().compactMap { key(ofObject: $0.name) }
        let found = try await entries(for: keys)
        return (keys.count, keys.filter { found[$0] == nil }.sorted { $0.hex < $1.hex })
    }
}
