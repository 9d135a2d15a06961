import Foundation

/// Canonical JSON encoding (docs/architecture.md): UTF-8, object keys sorted by code point, no
/// insignificant whitespace, integers without fraction, other numbers in shortest round-trip form.
///
/// Everything LabelForge hashes or writes to a run directory goes through here, so equal values
/// always produce equal bytes.
public enum CanonicalJSON {
    /// The canonical bytes of a value.
    public static func data(_ value: JSONValue) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(value, into: &out)
        return Data(out)
    }

    /// The canonical text of a value.
    public static func string(_ value: JSONValue) -> String {
        var out = [UInt8]()
        write(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes sent to an engine: canonical, except that a JSON schema's `properties` are written
    /// in the order of its `required` list. Structured-output backends (xgrammar, llguidance,
    /// llama.cpp) generate object members in `properties` order, so that order must be the
    /// configured one; `required` is an array, so the order is also in every hash of the body.
    public static func wire(_ value: JSONValue) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(value, into: &out, schemaOrder: true)
        return Data(out)
    }

    /// Appends the canonical encoding of `value` to `out`.
    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        write(value, into: &out, schemaOrder: false)
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8], schemaOrder: Bool, keyOrder: [String]? = nil)
    {
        switch value {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            writeInt(i, into: &out)
        case .double(let d):
            out.append(contentsOf: format(d).utf8)
        case .string(let s):
            writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out, schemaOrder: schemaOrder)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // UTF-8 byte order is code point order.
            var pairs = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            if let keyOrder {
                let first = keyOrder.filter { members[$0] != nil }
                pairs = first.map { ($0, members[$0]!) } + pairs.filter { !first.contains($0.key) }
            }
            let required = schemaOrder ? members["required"]?.arrayValue?.compactMap(\.stringValue) : nil
            for (i, (key, member)) in pairs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(
                    member, into: &out, schemaOrder: schemaOrder,
                    keyOrder: required != nil && key == "properties" && member.objectValue != nil ? required : nil)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Appends an integer's decimal digits, without a `String` in between.
    public static func writeInt(_ value: Int64, into out: inout [UInt8]) {
        guard value != .min else {
            out.append(contentsOf: String(value).utf8)
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// Numbers: integral values within ±2^53 print as integers; NaN and infinities, which JSON
    /// cannot hold, print as `null`; everything else in Swift's shortest round-trip form.
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d.rounded() == d && abs(d) <= 9_007_199_254_740_992 {
            return String(Int64(d))
        }
        return "\(d)"
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends a string as a canonical JSON string literal.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            // Runs of bytes that need no escape are copied at once.
            var start = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
                case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
                case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
                case 0x08: out.append(contentsOf: [92, UInt8(ascii: "b")])
                case 0x0C: out.append(contentsOf: [92, UInt8(ascii: "f")])
                default:
                    out.append(contentsOf: [92, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0xF)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}
