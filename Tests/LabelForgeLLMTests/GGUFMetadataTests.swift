import Foundation
import LabelForgeCore
import LabelForgeLLM
import Testing

@Suite struct GGUFMetadataTests {
    /// A GGUF v3 header with no tensors and `entries` (key, type, little-endian value bytes).
    static func header(_ entries: [(String, UInt32, [UInt8])]) -> Data {
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }
        var bytes = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(entries.count))
        for (key, type, value) in entries { bytes += string(key) + le(type) + value }
        return Data(bytes)
    }

    static func write(_ data: Data) throws -> String {
        let path = NSTemporaryDirectory() + "gguf-\(UUID().uuidString).gguf"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(
        "reads scalars, strings and skips arrays; the window is sentence-transformers' max_seq_length, else the architecture's context length"
    )
    func metadata() throws {
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        let tokens = ["[PAD]", "hello", "world"].flatMap { le(UInt64($0.utf8.count)) + Array($0.utf8) }
        let architecture: (String, UInt32, [UInt8]) = ("general.architecture", 8, le(UInt64(4)) + Array("bert".utf8))
        let entries: [(String, UInt32, [UInt8])] = [
            architecture,
            ("tokenizer.ggml.tokens", 9, le(UInt32(8)) + le(UInt64(3)) + tokens),
            (
                "tokenizer.ggml.token_type", 9,
                le(UInt32(5)) + le(UInt64(3)) + le(Int32(1)) + le(Int32(3)) + le(Int32(1))
            ),
            ("bert.context_length", 4, le(UInt32(512))),
            ("bert.attention.layer_norm_epsilon", 6, le(Float(1e-12).bitPattern)),
            ("bert.attention.causal", 7, [0]),
            ("sentence_transformers.max_seq_length", 4, le(UInt32(256))),
            ("general.signed", 5, le(Int32(-7))),
        ]
        let path = try Self.write(Self.header(entries))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata = try GGUFMetadata.read(path: path)
        #expect(metadata["general.architecture"] == "bert")
        #expect(metadata["bert.context_length"] == 512)
        #expect(metadata["bert.attention.causal"] == false)
        #expect(metadata["general.signed"] == -7)
        #expect(metadata["tokenizer.ggml.tokens"] == .null)
        #expect(GGUFMetadata.maxInputTokens(in: metadata) == 256)

        let plain = try Self.write(Self.header([architecture, ("bert.context_length", 4, le(UInt32(512)))]))
        defer { try? FileManager.default.removeItem(atPath: plain) }
        #expect(GGUFMetadata.maxInputTokens(in: try GGUFMetadata.read(path: plain)) == 512)
    }

    @Test("a file cut short or not GGUF is refused naming it")
    func broken() throws {
        let path = try Self.write(Self.header([("general.architecture", 8, [200, 0, 0, 0, 0, 0, 0, 0, 65])]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: LabelForgeError.self) { try GGUFMetadata.read(path: path) }
        #expect(error?.message.contains("\(path) is not a valid GGUF file") == true, "\(error?.message ?? "")")
        let html = try Self.write(Data("<html>".utf8))
        defer { try? FileManager.default.removeItem(atPath: html) }
        #expect(throws: LabelForgeError.self) { try GGUFMetadata.read(path: html) }
    }
}

@Suite struct ONNXMetadataTests {
    /// Protobuf bytes of a ModelProto: ir_version, a graph (field 7, opaque here) and metadata_props.
    static func model(_ metadata: [(String, String)], graph: Bool = true) -> Data {
        func varint(_ value: Int) -> [UInt8] {
            var value = UInt64(value)
            var bytes: [UInt8] = []
            repeat {
                bytes.append(UInt8(value & 0x7F) | (value > 0x7F ? 0x80 : 0))
                value >>= 7
            } while value > 0
            return bytes
        }
        func field(_ number: Int, _ payload: [UInt8]) -> [UInt8] {
            varint(number << 3 | 2) + varint(payload.count) + payload
        }
        var bytes = varint(1 << 3) + varint(8)
        if graph { bytes += field(7, Array(repeating: 0x42, count: 300)) }
        for (key, value) in metadata {
            bytes += field(14, field(1, Array(key.utf8)) + field(2, Array(value.utf8)))
        }
        return Data(bytes)
    }

    @Test("reads an ONNX model's metadata_props past its graph; the window is its max_seq_length")
    func metadata() throws {
        let path = try GGUFMetadataTests.write(
            Self.model([("model", "all-MiniLM-L6-v2"), ("max_seq_length", "256"), ("tokenizer.json", "{\"x\":1}")]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata = try ONNXMetadata.read(path: path)
        #expect(metadata == ["model": "all-MiniLM-L6-v2", "max_seq_length": "256", "tokenizer.json": "{\"x\":1}"])
        #expect(ONNXMetadata.maxInputTokens(in: metadata) == 256)
        let noGraph = try GGUFMetadataTests.write(Self.model([("max_seq_length", "256")], graph: false))
        defer { try? FileManager.default.removeItem(atPath: noGraph) }
        #expect(throws: LabelForgeError.self) { try ONNXMetadata.read(path: noGraph) }
    }
}
