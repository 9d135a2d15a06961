import Crypto
import Foundation

/// SHA-256 content hashes, the only hash LabelForge uses (docs/architecture.md).
public enum ContentHash {
    /// Lowercase hex SHA-256 of raw bytes.
    public static func hex(_ data: some DataProtocol) -> String {
        lowercaseHex(SHA256.hash(data: data))
    }

    /// Bytes as lowercase hex digits (on every hot path: keys, seeds, row IDs; `String(format:)`
    /// per byte cost more than the hash itself).
    static func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lowercase hex SHA-256 of a value's canonical JSON.
    public static func hex(_ value: JSONValue) -> String {
        hex(CanonicalJSON.data(value))
    }

    /// `sha256:<hex>`: the form stored in manifests and cache entries.
    public static func prefixed(_ hex: String) -> String { "sha256:" + hex }

    /// The hex digits of a `sha256:<hex>` value (a bare hex string is returned as is).
    public static func unprefixed(_ value: String) -> String {
        value.hasPrefix("sha256:") ? String(value.dropFirst("sha256:".count)) : value
    }

    /// Hashes a file by streaming it in 1 MiB chunks, so large model files never sit in memory.
    /// - Throws: `LabelForgeError` with code `fileNotFound` when the file cannot be opened.
    public static func hexOfFile(atPath path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LabelForgeError(.fileNotFound, "Cannot read \(path): no such file, or no permission.")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return lowercaseHex(hasher.finalize())
    }

    /// An incremental SHA-256 over a sequence of byte strings, for fingerprints built while streaming.
    public struct Hasher {
        private var inner = SHA256()

        public init() {}

        /// Adds `text` and a terminating NUL, so `["ab", "c"]` and `["a", "bc"]` hash differently.
        public mutating func update(_ text: String) {
            inner.update(data: Array(text.utf8) + [0])
        }

        /// `sha256:<hex>` of everything added.
        public func finalize() -> String {
            ContentHash.prefixed(lowercaseHex(inner.finalize()))
        }
    }
}
