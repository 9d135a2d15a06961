import Foundation
import LabelForgeCore
import Testing

@Suite struct CanonicalJSONTests {
    @Test("keys sort by code point, numbers and strings encode canonically")
    func goldenVector() throws {
        let value = try JSONValue.parse(
            #"{"b":1,"a":[1.5,0.1,1e-7,true,null,"é\"\\\n\u0001"],"B":{"z":-3,"é":2.0},"aa":1e21}"#)
        // Reference: Python json.dumps(sort_keys=True, separators=(",",":"), ensure_ascii=False),
        // with 2.0 written as the integer 2 and 1e21 in Swift's shortest form.
        #expect(
            CanonicalJSON.string(value)
                == #"{"B":{"z":-3,"é":2},"a":[1.5,0.1,1e-07,true,null,"é\"\\\n\u0001"],"aa":1e+21,"b":1}"#)
    }

    @Test("equal values give equal bytes whatever the input key order and spacing")
    func orderIndependent() throws {
        let a = try JSONValue.parse(#"{"x": {"q": [1, 2], "p": "s"}, "y": null}"#)
        let b = try JSONValue.parse(#"{"y":null,"x":{"p":"s","q":[1,2]}}"#)
        #expect(CanonicalJSON.data(a) == CanonicalJSON.data(b))
    }

    @Test(
        "uppercase sorts before lowercase and ASCII before non-ASCII",
        arguments: [
            (#"{"a":1,"Z":2,"ä":3,"_":4}"#, #"{"Z":2,"_":4,"a":1,"ä":3}"#),
            (#"{"aa":1,"a":2}"#, #"{"a":2,"aa":1}"#),
            (#"[1.0, -0.0, 100, 3.25]"#, #"[1,0,100,3.25]"#),
            (#""tab\there""#, #""tab\there""#),
        ])
    func vectors(input: String, expected: String) throws {
        #expect(CanonicalJSON.string(try JSONValue.parse(input)) == expected)
    }

    @Test("integers and escapes are written byte for byte as JSON requires, at the edges too")
    func edges() throws {
        let ints: [Int64] = [0, 7, -7, 10, 1_000_000, Int64.max, Int64.min, -9_223_372_036_854_775_807]
        for i in ints { #expect(CanonicalJSON.string(.int(i)) == String(i)) }
        let text = "\"\\\u{08}\u{0C}\n\r\t\u{00}\u{1F} plain 日本 \u{7F}"
        #expect(CanonicalJSON.string(.string(text)) == #""\"\\\b\f\n\r\t\u0000\u001f plain 日本 "# + "\u{7F}\"")
        #expect(CanonicalJSON.string(.string("")) == #""""#)
        #expect(CanonicalJSON.string(.string("\n")) == #""\n""#)
        #expect(CanonicalJSON.string(["é": "x", "e": ["z": 1, "a": 2]]) == #"{"e":{"a":2,"z":1},"é":"x"}"#)
    }

    @Test("sha256 of bytes matches the published test vector")
    func sha256Vector() {
        #expect(
            ContentHash.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
