import Foundation
import LabelForgeCore

/// Why an image cannot be used; it fails the rows that need it, never the run.
public struct ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error class recorded in the manifest and shown by `inspect`.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        public static let missing = Kind(name: "image_missing")
        public static let unreadable = Kind(name: "image_unreadable")
        public static let unsupported = Kind(name: "image_unsupported")
        public static let tooLarge = Kind(name: "image_too_large")
        public static let truncated = Kind(name: "image_truncated")
        /// The field does not hold an image reference (a path, a `data:` URL, or `{"base64": …}`).
        public static let invalidReference = Kind(name: "image_invalid_reference")
    }

    public let kind: Kind
    public let message: String
    public var description: String { message }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// An image read from disk or from inline base64: its bytes' hash, type sniffed from magic bytes,
/// and dimensions from its header (no decoding).
public struct ImageFile: Sendable, Equatable {
    /// Image formats LabelForge accepts; what vLLM and llama.cpp take as `data:` URLs.
    public enum Format: String, Sendable {
        case png, jpeg, webp, gif

        public var mediaType: String { "image/\(rawValue)" }
    }

    /// Per-row limits: an image over either is that row's error, not the run's.
    public struct Limits: Sendable {
        public var maxBytes: Int
        public var maxPixels: Int

        public init(maxBytes: Int = 20 << 20, maxPixels: Int = 50_000_000) {
            self.maxBytes = maxBytes
            self.maxPixels = maxPixels
        }
    }

    public let bytes: Data
    public let format: Format
    public let width: Int
    public let height: Int

    /// `sha256:<hex>` of the bytes: what row IDs and cache keys use, never the path.
    public var contentHash: String { ContentHash.prefixed(ContentHash.hex(bytes)) }

    /// What a prompt template sees for an image: `{sha256, format, width, height}`, never its path
    /// (a path in the prompt would make cache keys depend on where the file lives).
    public var templateValue: JSONValue {
        [
            "sha256": .string(contentHash), "format": .string(format.rawValue),
            "width": .int(Int64(width)), "height": .int(Int64(height)),
        ]
    }

    /// The image as an OpenAI `image_url` data URL.
    public var dataURL: String { "data:\(format.mediaType);base64,\(bytes.base64EncodedString())" }

    /// Reads and checks an image file.
    /// - Throws: `ImageError` naming the file: missing, unsupported type, too large, or truncated.
    public static func read(path: String, limits: Limits = Limits()) throws -> ImageFile {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw ImageError(.missing, "image \(path) does not exist.")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size <= limits.maxBytes else {
            throw ImageError(.tooLarge, "image \(path) is \(size) bytes, over the limit of \(limits.maxBytes).")
        }
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ImageError(.unreadable, "image \(path) cannot be read (is it a directory, or unreadable?).")
        }
        return try parse(bytes, name: path, limits: limits)
    }

    /// Checks image bytes (for example decoded from an inline base64 field).
    /// - Throws: `ImageError` naming `name`: unsupported type, too large, or truncated.
    public static func parse(_ bytes: Data, name: String, limits: Limits = Limits()) throws -> ImageFile {
        guard bytes.count <= limits.maxBytes else {
            throw ImageError(.tooLarge, "image \(name) is \(bytes.count) bytes, over the limit of \(limits.maxBytes).")
        }
        let b = [UInt8](bytes)
        guard let format = sniff(b) else {
            throw ImageError(.unsupported, "image \(name) is not a PNG, JPEG, WebP or GIF file.")
        }
        guard let (width, height) = dimensions(b, format: format), !isTruncated(b, format: format) else {
            throw ImageError(.truncated, "image \(name) is truncated or its \(format.rawValue) header is damaged.")
        }
        guard width > 0, height > 0 else {
            throw ImageError(.truncated, "image \(name) has a \(format.rawValue) header of \(width)×\(height) pixels; it is damaged.")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= limits.maxPixels else {
            throw ImageError(
                .tooLarge, "image \(name) is \(width)×\(height) pixels, over the limit of \(limits.maxPixels).")
        }
        return ImageFile(bytes: bytes, format: format, width: width, height: height)
    }

    static func sniff(_ b: [UInt8]) -> Format? {
        if b.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if b.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if b.count >= 12, b.starts(with: Array("RIFF".utf8)), Array(b[8..<12]) == Array("WEBP".utf8) { return .webp }
        if b.starts(with: Array("GIF87a".utf8)) || b.starts(with: Array("GIF89a".utf8)) { return .gif }
        return nil
    }

    private static func be16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    private static func be32(_ b: [UInt8], _ i: Int) -> Int { be16(b, i) << 16 | be16(b, i + 2) }
    private static func le16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    private static func le24(_ b: [UInt8], _ i: Int) -> Int { le16(b, i) | Int(b[i + 2]) << 16 }

    static func dimensions(_ b: [UInt8], format: Format) -> (Int, Int)? {
        switch format {
        case .png:
            guard b.count >= 24, Array(b[12..<16]) == Array("IHDR".utf8) else { return nil }
            return (be32(b, 16), be32(b, 20))
        case .gif:
            guard b.count >= 10 else { return nil }
            return (le16(b, 6), le16(b, 8))
        case .webp:
            guard b.count >= 30 else { return nil }
            switch String(decoding: b[12..<16], as: UTF8.self) {
            case "VP8X": return (le24(b, 24) + 1, le24(b, 27) + 1)
            case "VP8L":
                guard b[20] == 0x2F else { return nil }
                let bits = Int(b[21]) | Int(b[22]) << 8 | Int(b[23]) << 16 | Int(b[24]) << 24
                return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            case "VP8 ":
                guard b[23] == 0x9D, b[24] == 0x01, b[25] == 0x2A else { return nil }
                return (le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF)
            default: return nil
            }
        case .jpeg:
            var i = 2
            while i + 9 < b.count {
                guard b[i] == 0xFF else { return nil }
                let marker = b[i + 1]
                if marker == 0xFF { i += 1; continue }
                let length = be16(b, i + 2)
                // Start-of-frame markers carry the dimensions (not DHT C4, JPG C8, DAC CC).
                if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                    return (be16(b, i + 7), be16(b, i + 5))
                }
                i += 2 + length
            }
            return nil
        }
    }

    static func isTruncated(_ b: [UInt8], format: Format) -> Bool {
        switch format {
        case .png: return !b.suffix(12).elementsEqual([0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
        case .jpeg: return !b.suffix(2).elementsEqual([0xFF, 0xD9])
        case .gif: return b.last != 0x3B
        case .webp:
            let riffSize = Int(b[4]) | (Int(b[5]) << 8) | (Int(b[6]) << 16) | (Int(b[7]) << 24)
            return b.count < riffSize + 8
        }
    }
}
