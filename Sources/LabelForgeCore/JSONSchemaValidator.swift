/// Validates JSON values against the subset of JSON Schema that LabelForge generates for
/// structured outputs: `type`, `enum`, `const`, `properties`, `required`,
/// `additionalProperties: false`, `items`, `minItems`, `maxItems`, `minimum`, `maximum`,
/// `minLength`, `maxLength`.
///
/// Servers are known to ignore schemas silently, so every structured output is checked here
/// before it becomes a label.
public enum JSONSchemaValidator {
    /// The first violation found, as a sentence naming the JSON path, or `nil` when `value` conforms.
    public static func firstViolation(of schema: JSONValue, in value: JSONValue, path: String = "$") -> String? {
        guard case .object(let s) = schema else { return nil }
        if let allowed = s["enum"]?.arrayValue, !allowed.contains(where: { equal($0, value) }) {
            return "\(path): \(CanonicalJSON.string(value)) is not one of \(CanonicalJSON.string(.array(allowed)))"
        }
        if let constant = s["const"], !equal(constant, value) {
            return "\(path): expected \(CanonicalJSON.string(constant))"
        }
        if let type = s["type"] {
            let types = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            guard types.contains(where: { matches(value, type: $0) }) else {
                return "\(path): expected \(types.joined(separator: " or ")), found \(value.typeName)"
            }
        }
        switch value {
        case .object(let members):
            let properties = s["properties"]?.objectValue ?? [:]
            for name in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                return "\(path): missing required property \"\(name)\""
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let sub = properties[name] {
                    if let violation = firstViolation(of: sub, in: member, path: "\(path).\(name)") {
                        return violation
                    }
                } else if s["additionalProperties"]?.boolValue == false {
                    return "\(path): unexpected property \"\(name)\""
                }
            }
        case .array(let items):
            if let min = s["minItems"]?.intValue, items.count < min {
                return "\(path): expected at least \(min) items, found \(items.count)"
            }
            if let max = s["maxItems"]?.intValue, items.count > max {
                return "\(path): expected at most \(max) items, found \(items.count)"
            }
            if let itemSchema = s["items"] {
                for (i, item) in items.enumerated() {
                    if let violation = firstViolation(of: itemSchema, in: item, path: "\(path)[\(i)]") {
                        return violation
                    }
                }
            }
        case .int, .double:
            let number = value.doubleValue!
            if let min = s["minimum"]?.doubleValue, number < min { return "\(path): \(number) is below \(min)" }
            if let max = s["maximum"]?.doubleValue, number > max { return "\(path): \(number) is above \(max)" }
        case .string(let text):
            if let min = s["minLength"]?.intValue, text.count < min {
                return "\(path): shorter than \(min) characters"
            }
            if let max = s["maxLength"]?.intValue, text.count > max {
                return "\(path): longer than \(max) characters"
            }
        default:
            break
        }
        return nil
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object):
            return true
        case ("number", .int), ("number", .double), ("integer", .int):
            return true
        case ("integer", .double(let d)):
            return d.rounded() == d
        default:
            return false
        }
    }

    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}
