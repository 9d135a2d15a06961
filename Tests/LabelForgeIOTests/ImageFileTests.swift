import Foundation
import LabelForgeCore
@testable import LabelForgeIO
import LabelForgeTesting
import Testing

/// Image headers built byte by byte, as each format's specification lays them out.
@Suite struct ImageFileTests {
    static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    static func le24(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF)] }

    static func png(width: Int, height: Int, complete: Bool = true) -> Data {
        var b: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        b += be32(13) + Array("IHDR".utf8) + be32(width) + be32(height) + [8, 2, 0, 0, 0] + [0, 0, 0, 0]
        if complete { b += [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82] }
        return Data(b)
    }

    static func gif(width: Int, height: Int) -> Data {
        Data(Array("GIF89a".utf8) + le16(width) + le16(height) + [0, 0, 0, 0x3B])
    }

    static func jpeg(width: Int, height: Int) -> Data {
        var b: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0] + Array(repeating: 0, count: 9)
        b += [0xFF, 0xC4, 0x00, 0x04, 0, 0]  // a DHT segment before the frame header
        b += [0xFF, 0xC0, 0x00, 0x11, 0x08] + [UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF)]
        b += Array(repeating: 0, count: 10) + [0xFF, 0xD9]
        return Data(b)
    }

    static func webp(width: Int, height: Int) -> Data {
        let chunk = Array("VP8X".utf8) + [10, 0, 0, 0] + [0, 0, 0, 0] + le24(width - 1) + le24(height - 1)
        return Data(Array("RIFF".utf8) + [UInt8(4 + chunk.count), 0, 0, 0] + Array("WEBP".utf8) + chunk)
    }

    @Test("format from magic bytes and size from the header", arguments: [
        (png(width: 640, height: 480), ImageFile.Format.png, 640, 480),
        (gif(width: 3, height: 7), .gif, 3, 7),
        (jpeg(width: 1024, height: 768), .jpeg, 1024, 768),
        (webp(width: 320, height: 200), .webp, 320, 200),
    ])
    func sniff(bytes: Data, format: ImageFile.Format, width: Int, height: Int) throws {
        let image = try ImageFile.parse(bytes, name: "x")
        #expect(image.format == format)
        #expect(image.width == width && image.height == height)
        #expect(image.dataURL.hasPrefix("data:image/\(format.rawValue);base64,"))
        #expect(image.contentHash == ContentHash.prefixed(ContentHash.hex(bytes)))
    }

    @Test("bad images are clear per-image errors", arguments: [
        (Data("hello, not an image".utf8), ImageError.Kind.unsupported, "is not a PNG, JPEG, WebP or GIF"),
        (png(width: 10, height: 10, complete: false), .truncated, "truncated"),
        (png(width: 20_000, height: 20_000), .tooLarge, "over the limit"),
        (png(width: 0xFFFF_FFFF, height: 0xFFFF_FFFF), .tooLarge, "over the limit"),  // no overflow trap
        (gif(width: 0, height: 0), .truncated, "damaged"),
    ])
    func bad(bytes: Data, kind: ImageError.Kind, fragment: String) {
        let error = #expect(throws: ImageError.self) { try ImageFile.parse(bytes, name: "img/7.png") }
        #expect(error?.kind == kind)
        #expect(error?.message.contains("img/7.png") == true)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test("a missing or oversized file names its path")
    func files() throws {
        let ws = try TestWorkspace()
        #expect(throws: ImageError(.missing, "image \(ws.path("nope.png")) does not exist.")) {
            try ImageFile.read(path: ws.path("nope.png"))
        }
        try Self.png(width: 2, height: 2).write(to: URL(fileURLWithPath: ws.path("a.png")))
        #expect(try ImageFile.read(path: ws.path("a.png")).width == 2)
        let error = #expect(throws: ImageError.self) {
            try ImageFile.read(path: ws.path("a.png"), limits: .init(maxBytes: 10))
        }
        #expect(error?.kind == .tooLarge)
        #expect(error?.message.contains("over the limit of 10") == true)
    }

    @Test("image paths resolve from the dataset's directory, '.' when it has none; id_field reads the record as given")
    func references() throws {
        let ws = try TestWorkspace()
        try Self.png(width: 3, height: 2).write(to: URL(fileURLWithPath: ws.path("a.png")))
        let record = DatasetRecord(index: 0, line: 1, fields: ["image": "a.png", "path": "x/a.png"], location: "rows.jsonl:1")
        let nested = ImageFieldSet(fields: ["image"], datasetPath: ws.path("rows.jsonl"), format: .jsonl, limits: .init())
        #expect(nested.load(record).images["image"]?.width == 3)
        let bare = ImageFieldSet(fields: ["image"], datasetPath: "rows.jsonl", format: .jsonl, limits: .init())
        #expect(bare.baseDirectory == ".")

        let folder = ImageFieldSet(fields: ["image"], datasetPath: ws.root, format: .imagefolder, limits: .init())
        let loaded = folder.load(record)
        #expect(loaded.identity["path"] == nil)
        #expect(loaded.identity["image"]?.stringValue?.hasPrefix("sha256:") == true)
        #expect(loaded.identity(idField: "path")["path"] == "x/a.png")

        // A bare base64 string is not a path: refused, and recorded by hash.
        let raw = String(repeating: "QUJD", count: 2000)
        let bad = nested.load(DatasetRecord(index: 1, line: 2, fields: ["image": .string(raw)], location: "rows.jsonl:2"))
        #expect(bad.failures["image"]?.kind == .invalidReference)
        #expect(bad.failures["image"]?.message.contains("QUJD") == false)
        #expect(bad.recorded["image"]?.stringValue?.hasPrefix("sha256:") == true)
    }
}
