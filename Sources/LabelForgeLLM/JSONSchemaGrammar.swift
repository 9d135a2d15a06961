import LabelForgeCore

/// A GBNF grammar (llama.cpp) for the JSON a schema allows, written compact: no whitespace
/// anywhere outside strings, object members in `required` order, strings and arrays bounded where
/// the schema bounds them.
///
/// llama.cpp's own schema-to-grammar conversion allows free whitespace between tokens, and small
/// models fill it (Gemma 3 270M answered `{\n \t \t …` until `max_tokens`). Covers the schemas
/// LabelForge stages build: objects whose properties are all required, enums, booleans, bounded
/// integers, strings, arrays; anything else returns `nil` and the schema goes as `response_format`.
public enum JSONSchemaGrammar {
    public static func gbnf(for schema: JSONValue) -> String? {
        var builder = Builder()
        guard let root = builder.rule(for: schema) else { return nil }
        return
            (["root ::= " + root] + builder.rules + [
                #"char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})"#
            ]).joined(separator: "\n")
    }

    /// A GBNF string literal matching exactly `text`.
    static func literal(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private struct Builder {
        var rules: [String] = []

        /// A GBNF expression for `schema`, adding named rules for objects and arrays.
        mutating func rule(for schema: JSONValue) -> String? {
            if let values = schema["enum"]?.arrayValue, !values.isEmpty {
                return "(" + values.map { literal(CanonicalJSON.string($0)) }.joined(separator: " | ") + ")"
            }
            switch schema["type"]?.stringValue {
            case "boolean": return #"("true" | "false")"#
            case "null": return #""null""#
            case "integer":
                if let low = schema["minimum"]?.intValue, let high = schema["maximum"]?.intValue, low <= high,
                    high - low < 256
                {
                    return "(" + (low...high).map { literal(String($0)) }.joined(separator: " | ") + ")"
                }
                return #"("-"? [0-9]{1,19})"#
            case "string":
                let bound = schema["maxLength"]?.intValue.map { "{0,\($0)}" } ?? "*"
                return #""\"" char"# + bound + #" "\"""#
            case "array":
                guard let item = rule(for: schema["items"] ?? [:]) else { return nil }
                let more = schema["maxItems"]?.intValue.map { $0 <= 1 ? "{0,0}" : "{0,\($0 - 1)}" } ?? "*"
                if schema["maxItems"]?.intValue == 0 { return #""[]""# }
                return name(#""[" ("# + item + #" ("," "# + item + ")" + more + #")? "]""#)
            case "object":
                let properties = schema["properties"]?.objectValue ?? [:]
                let required = schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
                guard Set(required) == Set(properties.keys), required.count == properties.count else { return nil }
                var members: [String] = []
                for key in required {
                    guard let value = rule(for: properties[key]!) else { return nil }
                    members.append(literal(CanonicalJSON.string(.string(key)) + ":") + " " + value)
                }
                return name(#""{" "# + members.joined(separator: #" "," "#) + #" "}""#)
            default:
                return nil
            }
        }

        private mutating func name(_ body: String) -> String {
            let name = "r\(rules.count)"
            rules.append("\(name) ::= \(body)")
            return name
        }
    }
}
