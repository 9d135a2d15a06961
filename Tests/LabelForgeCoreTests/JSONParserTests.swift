import Foundation
import Testing

@testable import LabelForgeCore

@Suite struct JSONParserTests {
    /// What `JSONDecoder` through `JSONValue: Codable` makes of a text: the reference behavior.
    static func decoded(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test(
        "parses every JSON shape as JSONDecoder does, numbers included",
        arguments: [
            "1", "-0", "-0.0", "1.0", "1e2", "1E0", "2.50", "0.1", "-12.5e-3", "12345678901234567890",
            "9223372036854775807", "-9223372036854775808", "9007199254740993", "1.5e300", "true", "false", "null",
            #""plain""#, #""esc \" \\ \/ \b \f \n \r \t""#, #""\u00e9\u4e2d\ud83d\ude00""#, #""é中😀""#,
            #"{"b":[1,2.5,{"c":null}],"a":"x","a":"last"}"#, " [ 1 , [ ] , { } ] ", #"{"k":{"k":{"k":[true]}}}"#,
        ])
    func matchesDecoder(_ text: String) throws {
        #expect(try JSONValue.parse(text) == Self.decoded(text), "\(text)")
    }

    @Test(
        "refuses what is not JSON, with the byte offset",
        arguments: [
            "", "[1,]", "{\"a\" 1}", "[1 2]", "01x", "\"open", "tru", "{\"a\":1}x", "\"\\x\"", "\"\\ud800\"", "-", "1.",
            "1e",
        ])
    func refuses(_ text: String) {
        let error = #expect(throws: LabelForgeError.self) { try JSONValue.parse(text) }
        #expect(error?.code == .invalidJSON)
        #expect(error?.message.contains("at byte") == true, "\(error?.message ?? "")")
    }

    @Test("random values survive canonical encoding and parsing unchanged")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        func random(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random())
            case 2: return .int(Int64.random(in: Int64.min...Int64.max))
            case 3: return .double(Double.random(in: -1e6...1e6) + 0.5)
            case 4:
                let scalars = (0..<Int.random(in: 0..<12)).compactMap { _ in
                    UnicodeScalar([0x22, 0x5C, 0x0A, 0x01, 0xE9, 0x4E2D, 0x1F600, 0x41].randomElement()!)
                }
                return .string(String(String.UnicodeScalarView(scalars)))
            case 5: return .array((0..<Int.random(in: 0..<4)).map { _ in random(depth + 1) })
            default:
                return .object(
                    Dictionary(
                        (0..<Int.random(in: 0..<4)).map { ("k\($0)", random(depth + 1)) },
                        uniquingKeysWith: { a, _ in a }))
            }
        }
        for _ in 0..<500 {
            let value = random(0)
            let text = CanonicalJSON.string(value)
            #expect(try JSONValue.parse(text) == value, "\(text)")
            #expect(try JSONValue.parse(text) == Self.decoded(text), "\(text)")
        }
    }
}
