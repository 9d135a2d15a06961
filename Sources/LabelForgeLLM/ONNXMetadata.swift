import Foundation
import LabelForgeCore

/// The `metadata_props` of an ONNX model file (ModelProto field 14: key/value string pairs), read
/// by walking the file's top-level protobuf fields without decoding the graph.
///
/// `scripts/minilm_to_onnx.py` keeps there what a vector depends on besides the weights: the
/// tokenizer and sentence-transformers' `max_seq_length`.
public enum ONNXMetadata {
    /// - Throws: `LabelForgeError.invalidConfig` naming the file when it is not an ONNX model.
    public static func read(path: String) throws -> [String: String] {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw LabelForgeError(.fileNotFound, "Cannot read model file \(path).")
        }
        var reader = ProtoReader(bytes: data)
        var metadata: [String: String] = [:]
        var sawGraph = false
        while !reader.atEnd {
            guard let (field, wire) = reader.tag() else { throw broken(path) }
            if field == 14 && wire == 2, var entry = reader.message() {
                var key = ""
                var value = ""
                while !entry.atEnd {
                    guard let (inner, innerWire) = entry.tag() else { throw broken(path) }
                    if innerWire == 2, inner == 1 || inner == 2, let text = entry.string() {
                        if inner == 1 { key = text } else { value = text }
                    } else if !entry.skip(wire: innerWire) {
                        throw broken(path)
                    }
                }
                metadata[key] = value
            } else {
                if field == 7 { sawGraph = true }
                guard reader.skip(wire: wire) else { throw broken(path) }
            }
        }
        guard sawGraph else { throw broken(path) }
        return metadata
    }

    /// The longest input the model's embeddings are meant for: its `max_seq_length`.
    public static func maxInputTokens(in metadata: [String: String]) -> Int? {
        metadata["max_seq_length"].flatMap(Int.init)
    }

    private static func broken(_ path: String) -> LabelForgeError {
        LabelForgeError(
            .invalidConfig,
            "\(path) is not an ONNX model LabelForge can serve (convert a sentence-transformers model with "
                + "scripts/minilm_to_onnx.py).")
    }

    /// Protobuf's wire format, as much as walking a message's fields needs.
    private struct ProtoReader {
        let bytes: Data
        var offset: Int
        let end: Int

        init(bytes: Data, offset: Int = 0, end: Int? = nil) {
            self.bytes = bytes
            self.offset = offset
            self.end = end ?? bytes.count
        }

        var atEnd: Bool { offset >= end }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < end, shift < 64 {
                let byte = bytes[bytes.startIndex + offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        mutating func tag() -> (field: UInt64, wire: UInt64)? {
            varint().map { ($0 >> 3, $0 & 7) }
        }

        /// A length-delimited field's bounds, and moves past it.
        mutating func span() -> Range<Int>? {
            guard let length = varint(), length <= UInt64(end - offset) else { return nil }
            defer { offset += Int(length) }
            return offset..<(offset + Int(length))
        }

        mutating func message() -> ProtoReader? {
            span().map { ProtoReader(bytes: bytes, offset: $0.lowerBound, end: $0.upperBound) }
        }

        mutating func string() -> String? {
            span().map {
                String(
                    decoding: bytes[(bytes.startIndex + $0.lowerBound)..<(bytes.startIndex + $0.upperBound)],
                    as: UTF8.self)
            }
        }

        mutating func skip(wire: UInt64) -> Bool {
            switch wire {
            case 0: return varint() != nil
            case 1: offset += 8
            case 2: return span() != nil
            case 5: offset += 4
            default: return false
            }
            return offset <= end
        }
    }
}
