import Foundation

/// The content address of one engine request (docs/architecture.md).
///
/// `key = sha256(canonical {schema_version, kind, dialect, model {id, revision}, body})`, where
/// `body` is the request body exactly as sent with each inline image replaced by the hash of its
/// bytes. Endpoint URLs, API keys, timestamps and row positions are not part of it.
public struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    /// Bumped when the key's own layout changes; old entries then simply stop matching.
    public static let schemaVersion: Int64 = 1

    /// Lowercase hex SHA-256.
    public let hex: String

    public init(hex: String) { self.hex = hex }

    public var description: String { ContentHash.prefixed(hex) }

    /// The canonical document whose hash is the key.
    public static func material(
        kind: String, dialect: String, modelID: String, modelRevision: String, body: JSONValue
    ) -> JSONValue {
        [
            "schema_version": .int(schemaVersion),
            "kind": .string(kind),
            "dialect": .string(dialect),
            "model": ["id": .string(modelID), "revision": .string(modelRevision)],
            "body": replacingInlineImages(in: body),
        ]
    }

    /// The key of a request.
    public static func compute(
        kind: String, dialect: String, modelID: String, modelRevision: String, body: JSONValue
    ) -> CacheKey {
        CacheKey(
            hex: ContentHash.hex(
                material(kind: kind, dialect: dialect, modelID: modelID, modelRevision: modelRevision, body: body)
            )
        )
    }

    /// Replaces every `data:…;base64,…` URL inside an `image_url` part with `sha256:<hash of the
    /// decoded bytes>`, so the key depends on the image's content, never on how it was encoded.
    public static func replacingInlineImages(in value: JSONValue) -> JSONValue {
        switch value {
        case .array(let items):
            return .array(items.map(replacingInlineImages(in:)))
        case .object(var members):
            if case .object(var image)? = members["image_url"], let url = image["url"]?.stringValue,
                url.hasPrefix("data:"), let comma = url.firstIndex(of: ",")
            {
                let payload = url[url.index(after: comma)...]
                let bytes = Data(base64Encoded: String(payload)) ?? Data(payload.utf8)
                image["url"] = .string(ContentHash.prefixed(ContentHash.hex(bytes)))
                members["image_url"] = .object(image)
            }
            return .object(members.mapValues(replacingInlineImages(in:)))
        default:
            return value
        }
    }
}
