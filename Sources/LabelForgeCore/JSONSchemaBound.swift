/// How long an answer a JSON schema allows: the characters of the longest compact JSON document
/// that conforms, or `nil` when the schema bounds no length (an unbounded string or array).
///
/// Stages derive `max_tokens` from it, so a schema-guided answer is never cut off mid-document
/// (a cut answer is invalid JSON, and at temperature 0 a retry would repeat it).
public enum JSONSchemaBound {
    public static func maxCompactLength(of schema: JSONValue) -> Int? {
        if let values = schema["enum"]?.arrayValue {
            return values.map { CanonicalJSON.string($0).count }.max() ?? 0
        }
        switch schema["type"]?.stringValue {
        case "boolean": return 5
        case "null": return 4
        case "integer":
            guard let low = schema["minimum"]?.intValue, let high = schema["maximum"]?.intValue else { return nil }
            return max(String(low).count, String(high).count)
        case "string":
            return schema["maxLength"]?.intValue.map { $0 + 2 }
        case "array":
            guard let items = schema["maxItems"]?.intValue, let item = maxCompactLength(of: schema["items"] ?? [:])
            else {
                return nil
            }
            return 2 + items * item + max(0, items - 1)
        case "object":
            let properties = schema["properties"]?.objectValue ?? [:]
            var total = 2 + max(0, properties.count - 1)
            for (name, property) in properties {
                guard let value = maxCompactLength(of: property) else { return nil }
                total += name.count + 3 + value
            }
            return total
        default:
            return nil
        }
    }
}
