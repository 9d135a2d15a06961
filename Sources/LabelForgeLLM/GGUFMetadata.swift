import Foundation
import LabelForgeCore

/// The key–value metadata in a GGUF file's header (the format llama.cpp serves), read without
/// loading tensors: scalars and strings as JSON values, arrays skipped.
///
/// See ggml's `docs/gguf.md`: magic `GGUF`, version, tensor count, metadata count, then each
/// key (a length-prefixed string), its value type and its value, all little-endian.
public enum GGUFMetadata {
    /// - Throws: `LabelForgeError.invalidConfig` naming the file when it is not a readable GGUF header.
    public static func read(path: String) throws -> [String: JSONValue] {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw LabelForgeError(.fileNotFound, "Cannot read model file \(path).")
        }
        var reader = Reader(data: data)
        func broken(_ what: String) -> LabelForgeError {
            LabelForgeError(.invalidConfig, "\(path) is not a valid GGUF file: \(what) (at byte \(reader.offset)).")
        }
        guard let magic = reader.bytes(4), magic == Array("GGUF".utf8) else { throw broken("no GGUF magic") }
        guard let version = reader.uint32(), version >= 2, reader.uint64() != nil, let count = reader.uint64() else {
            throw broken("an unsupported header")
        }
        var metadata: [String: JSONValue] = [:]
        for _ in 0..<count {
            guard let key = reader.string(), let type = reader.uint32() else { throw broken("a truncated key") }
            guard let value = reader.value(type: type) else { throw broken("a value of type \(type) for '\(key)'") }
            metadata[key] = value
        }
        return metadata
    }

    /// The longest input, in tokens special ones included, that the model's embeddings are meant
    /// for: `sentence_transformers.max_seq_length` where the converter recorded it (sentence-
    /// transformers' own limit, e.g. 256 for all-MiniLM-L6-v2), else the architecture's
    /// `<arch>.context_length` (its position table). `nil` when the file says neither.
    public static func maxInputTokens(in metadata: [String: JSONValue]) -> Int? {
        if let limit = metadata["sentence_transformers.max_seq_length"]?.intValue, limit > 0 { return limit }
        guard let architecture = metadata["general.architecture"]?.stringValue else { return nil }
        return metadata["\(architecture).context_length"]?.intValue
    }

    private struct Reader {
        let data: Data
        var offset = 0

        init(data: Data) { self.data = data }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, offset + count <= data.count else { return nil }
            defer { offset += count }
            let start = data.startIndex + offset
            return Array(data[start..<(start + count)])
        }

        mutating func skip(_ count: Int) -> Bool {
            guard count >= 0, offset + count <= data.count else { return false }
            offset += count
            return true
        }

        mutating func integer(_ size: Int) -> UInt64? {
            guard let bytes = bytes(size) else { return nil }
            return bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }

        mutating func uint32() -> UInt32? { integer(4).map { UInt32($0) } }
        mutating func uint64() -> UInt64? { integer(8) }

        mutating func string() -> String? {
            guard let length = uint64(), length < 1 << 30, let bytes = bytes(Int(length)) else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Byte sizes of the fixed-size value types, by type number.
        static let sizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]

        mutating func value(type: UInt32) -> JSONValue? {
            switch type {
            case 0, 2, 4, 10:
                return integer(Self.sizes[type]!).map { .int(Int64(bitPattern: $0)) }
            case 1, 3, 5, 11:
                let size = Self.sizes[type]!
                guard let raw = integer(size) else { return nil }
                let shift = UInt64(64 - 8 * size)
                return .int(Int64(bitPattern: raw << shift) >> Int64(shift))
            case 6: return uint32().map { .double(Double(Float(bitPattern: $0))) }
            case 12: return uint64().map { .double(Double(bitPattern: $0)) }
            case 7: return integer(1).map { .bool($0 != 0) }
            case 8: return string().map(JSONValue.string)
            case 9:
                guard let itemType = uint32(), let count = uint64() else { return nil }
                if let size = Self.sizes[itemType] {
                    guard count < 1 << 40, skip(Int(count) * size) else { return nil }
                } else {
                    for _ in 0..<count where value(type: itemType) == nil { return nil }
                }
                return .null
            default: return nil
            }
        }
    }
}
