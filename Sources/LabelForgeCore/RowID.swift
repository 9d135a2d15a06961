/// Stable row identifiers (docs/architecture.md).
///
/// A row's ID is its configured id column when present, otherwise the first 32 hex digits of the
/// hash of its canonical record. Identical records get `#2`, `#3`, … in input order, so IDs never
/// depend on file order, shard or machine (beyond the order of exact duplicates).
public struct RowIDAssigner: Sendable {
    private var seen: [String: Int] = [:]
    private let idField: String?

    /// - Parameter idField: the column that holds each row's ID, if the dataset has one.
    public init(idField: String?) {
        self.idField = idField
    }

    /// The base ID of a record, before duplicates are numbered.
    public static func baseID(for record: [String: JSONValue], idField: String?) -> String {
        if let idField, let value = record[idField], !value.isNull {
            return value.textForm
        }
        return String(ContentHash.hex(.object(record)).prefix(32))
    }

    /// Assigns the next record its ID, numbering repeats of an ID already seen.
    public mutating func assign(_ record: [String: JSONValue]) -> String {
        let base = Self.baseID(for: record, idField: idField)
        let count = (seen[base] ?? 0) + 1
        seen[base] = count
        return count == 1 ? base : "\(base)#\(count)"
    }
}
