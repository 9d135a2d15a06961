import LabelForgeCore
import Testing

@Suite struct JSONSchemaValidatorTests {
    let schema: JSONValue = [
        "type": "object", "additionalProperties": false, "required": ["topic", "flag"],
        "properties": [
            "topic": ["type": "string", "enum": ["a", "b"]], "flag": ["type": "boolean"],
            "tags": ["type": "array", "items": ["type": "string", "enum": ["x", "y"]]],
        ],
    ]

    @Test("a conforming object passes")
    func passes() throws {
        #expect(JSONSchemaValidator.firstViolation(of: schema, in: try JSONValue.parse(#"{"topic":"a","flag":true,"tags":["x"]}"#)) == nil)
    }

    @Test("violations name the JSON path", arguments: [
        (#"{"topic":"c","flag":true}"#, "$.topic"),
        (#"{"topic":"a"}"#, "missing required property \"flag\""),
        (#"{"topic":"a","flag":"yes"}"#, "$.flag: expected boolean"),
        (#"{"topic":"a","flag":true,"extra":1}"#, "unexpected property \"extra\""),
        (#"{"topic":"a","flag":true,"tags":["z"]}"#, "$.tags[0]"),
        (#"["topic"]"#, "expected object"),
    ])
    func violations(json: String, fragment: String) throws {
        let violation = try #require(JSONSchemaValidator.firstViolation(of: schema, in: try JSONValue.parse(json)))
        #expect(violation.contains(fragment))
    }
}
