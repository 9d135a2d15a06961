import CompressNIO
import Foundation
import NIOCore

/// An image as 8-bit RGB pixels, row by row.
public struct RGBImage: Sendable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public let pixels: [UInt8]

    public func pixel(x: Int, y: Int) -> (r: Int, g: Int, b: Int) {
        let i = (y * width + x) * 3
        return (Int(pixels[i]), Int(pixels[i + 1]), Int(pixels[i + 2]))
    }
}

/// Why the stub VLM could not read an image, in the words PIL uses (what vLLM reports).
public struct PNGDecodingError: Error, CustomStringConvertible {
    public let description: String
}

/// Decodes non-interlaced 8-bit PNGs (gray, gray+alpha, RGB, RGBA, palette) for the stub VLM.
///
/// The stub must answer from an image's actual pixels; `scripts/make_shapes.py` writes exactly
/// these PNGs. Inflating uses zlib through compress-nio.
public enum PNGDecoder {
    public static func decode(_ data: Data) throws -> RGBImage {
        let b = [UInt8](data)
        guard b.count > 8, b.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw PNGDecodingError(description: "cannot identify image file")
        }
        var i = 8
        var width = 0
        var height = 0
        var bitDepth = 0
        var colorType = 0
        var interlace = 0
        var palette: [UInt8] = []
        var compressed: [UInt8] = []
        var ended = false
        while i + 8 <= b.count {
            let length = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            let kind = String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self)
            guard i + 12 + length <= b.count else { throw PNGDecodingError(description: "image file is truncated") }
            let body = Array(b[(i + 8)..<(i + 8 + length)])
            switch kind {
            case "IHDR":
                guard body.count == 13 else { throw PNGDecodingError(description: "broken PNG file") }
                width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
                height = Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7])
                bitDepth = Int(body[8])
                colorType = Int(body[9])
                interlace = Int(body[12])
            case "PLTE": palette = body
            case "IDAT": compressed += body
            case "IEND": ended = true
            default: break
            }
            i += 12 + length
            if ended { break }
        }
        guard ended else { throw PNGDecodingError(description: "image file is truncated") }
        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]
        guard let channels, bitDepth == 8, interlace == 0, (1...16384).contains(width), (1...16384).contains(height)
        else {
            throw PNGDecodingError(description: "unsupported PNG (the stub reads 8-bit, non-interlaced PNGs only)")
        }
        let stride = width * channels
        var input = ByteBuffer(bytes: compressed)
        var output = ByteBufferAllocator().buffer(capacity: height * (stride + 1))
        do {
            try input.decompress(to: &output, with: .zlib())
        } catch {
            throw PNGDecodingError(description: "broken data stream when reading image file")
        }
        let raw = output.readBytes(length: output.readableBytes) ?? []
        guard raw.count == height * (stride + 1) else {
            throw PNGDecodingError(description: "image file is truncated")
        }
        let rows = try unfilter(raw, height: height, stride: stride, bytesPerPixel: channels)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            let s = p * channels
            switch colorType {
            case 0, 4:
                rgb[p * 3] = rows[s]
                rgb[p * 3 + 1] = rows[s]
                rgb[p * 3 + 2] = rows[s]
            case 3:
                let entry = Int(rows[s]) * 3
                guard entry + 2 < palette.count else { throw PNGDecodingError(description: "bad palette index") }
                rgb[p * 3] = palette[entry]
                rgb[p * 3 + 1] = palette[entry + 1]
                rgb[p * 3 + 2] = palette[entry + 2]
            default:
                rgb[p * 3] = rows[s]
                rgb[p * 3 + 1] = rows[s + 1]
                rgb[p * 3 + 2] = rows[s + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    /// Reverses the per-scanline filters of PNG (none, sub, up, average, Paeth).
    static func unfilter(_ raw: [UInt8], height: Int, stride: Int, bytesPerPixel bpp: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let value = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= bpp ? Int(out[y * stride + x - bpp]) : 0
                let up = y > 0 ? Int(out[(y - 1) * stride + x]) : 0
                let c = x >= bpp && y > 0 ? Int(out[(y - 1) * stride + x - bpp]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = up
                case 3: predicted = (a + up) / 2
                case 4:
                    let p = a + up - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - up), abs(p - c))
                    predicted = pa <= pb && pa <= pc ? a : pb <= pc ? up : c
                default: throw PNGDecodingError(description: "broken PNG file (filter type \(filter))")
                }
                out[y * stride + x] = UInt8((value + predicted) & 0xFF)
            }
        }
        return out
    }
}
