import Foundation
import LabelForgeCore
import LabelForgeKernel

/// Which rows a `filter` stage keeps, written in YAML rather than a string language:
/// `{all: [{field: sentiment.label, in: [positive]}, {field: sentiment.confidence, gte: 0.8}]}`.
///
/// `all`, `any` and `not` combine clauses; a clause names a `field` (a row field, or
/// `<stage>.<field>` for an upstream output) and one test: `eq`, `ne`, `in`, `lt`, `lte`, `gt`,
/// `gte` or `exists`. A field the row lacks fails every test but `exists: false`.
public indirect enum RowPredicate: Sendable, Equatable {
    case all([RowPredicate])
    case any([RowPredicate])
    case not(RowPredicate)
    case test(field: String, op: String, value: JSONValue)

    static let operators = ["eq", "ne", "in", "lt", "lte", "gt", "gte", "exists"]

    /// Parses a predicate node.
    /// - Throws: `LabelForgeError.invalidConfig` naming the file, line and key of the problem.
    static func parse(_ node: ConfigReader) throws -> RowPredicate {
        let entries = try node.mapping()
        if entries.contains(where: { ["all", "any", "not"].contains($0.key) }) {
            guard entries.count == 1, let entry = entries.first else {
                throw node.error("a predicate has exactly one of 'all', 'any', 'not', or a 'field' with one test.")
            }
            switch entry.key {
            case "all": return .all(try entry.value.items().map(parse))
            case "any": return .any(try entry.value.items().map(parse))
            default: return .not(try parse(entry.value))
            }
        }
        try node.checkKeys(["field"] + operators + ["all", "any", "not"])
        let field = try node.require("field").string()
        let tests = entries.filter { $0.key != "field" }
        guard tests.count == 1, let test = tests.first else {
            throw node.error(
                "the clause on '\(field)' needs exactly one test: one of \(operators.joined(separator: ", ")).")
        }
        let value = try test.value.json()
        switch test.key {
        case "in":
            guard value.arrayValue != nil else { throw test.value.error("'in' takes a list of values.") }
        case "exists":
            guard value.boolValue != nil else { throw test.value.error("'exists' takes true or false.") }
        case "lt", "lte", "gt", "gte":
            guard value.doubleValue != nil || value.stringValue != nil else {
                throw test.value.error("'\(test.key)' compares with a number or a string.")
            }
        default: break
        }
        return .test(field: field, op: test.key, value: value)
    }

    /// Every field path the predicate reads.
    var fields: [String] {
        switch self {
        case .all(let items), .any(let items): return items.flatMap(\.fields)
        case .not(let inner): return inner.fields
        case .test(let field, _, _): return [field]
        }
    }

    /// The predicate as `config.resolved.yaml` writes it.
    var json: JSONValue {
        switch self {
        case .all(let items): return ["all": .array(items.map(\.json))]
        case .any(let items): return ["any": .array(items.map(\.json))]
        case .not(let inner): return ["not": inner.json]
        case .test(let field, let op, let value): return .object(["field": .string(field), op: value])
        }
    }

    /// `nil` when the row passes; otherwise why it does not, e.g.
    /// `sentiment.label is "negative", not in ["positive"]`.
    func rejection(_ value: (String) -> JSONValue?) -> String? {
        switch self {
        case .all(let items):
            for item in items { if let reason = item.rejection(value) { return reason } }
            return nil
        case .any(let items):
            let reasons = items.map { $0.rejection(value) }
            return reasons.contains { $0 == nil }
                ? nil : "none of: " + reasons.compactMap { $0 }.joined(separator: "; ")
        case .not(let inner):
            return inner.rejection(value) == nil ? "not (\(inner.description))" : nil
        case .test(let field, let op, let expected):
            let actual = value(field)
            return Self.holds(op, actual, expected)
                ? nil
                : "\(field) is \(actual.map(CanonicalJSON.string) ?? "missing"), not \(Self.phrase(op)) \(CanonicalJSON.string(expected))"
        }
    }

    var description: String {
        switch self {
        case .all(let items): return "all of: " + items.map(\.description).joined(separator: "; ")
        case .any(let items): return "any of: " + items.map(\.description).joined(separator: "; ")
        case .not(let inner): return "not (\(inner.description))"
        case .test(let field, let op, let value): return "\(field) \(Self.phrase(op)) \(CanonicalJSON.string(value))"
        }
    }

    private static func phrase(_ op: String) -> String {
        ["eq": "=", "ne": "≠", "in": "in", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "exists": "exists ="][op] ?? op
    }

    static func holds(_ op: String, _ actual: JSONValue?, _ expected: JSONValue) -> Bool {
        if op == "exists" { return (actual != nil && actual != .null) == (expected.boolValue ?? true) }
        guard let actual, actual != .null else { return false }
        switch op {
        case "eq": return same(actual, expected)
        case "ne": return !same(actual, expected)
        case "in": return expected.arrayValue?.contains { same(actual, $0) } ?? false
        default:
            let order: ComparisonResult
            if let a = actual.doubleValue, let b = expected.doubleValue {
                order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
            } else if let a = actual.stringValue, let b = expected.stringValue {
                order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
            } else {
                return false
            }
            switch op {
            case "lt": return order == .orderedAscending
            case "lte": return order != .orderedDescending
            case "gt": return order == .orderedDescending
            default: return order != .orderedAscending
            }
        }
    }

    /// Equality where `1` and `1.0` are the same number.
    private static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}
