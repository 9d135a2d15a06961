/// Stable row identifiers (docs/architecture.md).
///
/// A row's ID is its configured id column when present, otherwise the first 32 hex digits of the
/// hash of its canonical record. Identical records get `#2`, `#3`, … in input order, so IDs never
/// depend on file order, shard or machine (beyond the order of exact duplicates).
public struct RowIDAssigner: Sendable {
    private var seen: [String: Int] = [:]
    private let idField: String?
    private let repeats: RowIDRepeats?

    /// - Parameters:
    ///   - idField: the column that holds each row's ID, if the dataset has one.
    ///   - repeats: which base IDs can repeat, from a first pass over the same rows; with it, only
    ///     those are remembered, so memory does not grow with the number of unique rows.
    public init(idField: String?, repeats: RowIDRepeats? = nil) {
        self.idField = idField
        self.repeats = repeats
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
        if let repeats, !repeats.mayRepeat(base) { return base }
        let count = (seen[base] ?? 0) + 1
        seen[base] = count
        return count == 1 ? base : "\(base)#\(count)"
    }
}

/// Which base row IDs may occur more than once in a dataset, found in a first pass.
///
/// During the pass it keeps one hash per ID for the first million IDs, then moves to a Bloom filter
/// of fixed size (16 MiB), so memory stays flat however many rows follow; afterwards it keeps only
/// the hashes seen twice. A hash seen twice may be a true repeat, two IDs whose hashes collide, or
/// (past a million rows) a Bloom false positive; either way `RowIDAssigner` then counts those IDs
/// exactly, so no ID is ever numbered wrongly.
public struct RowIDRepeats: Sendable {
    private var seen: Set<Int> = []
    private var bloom: [UInt64] = []
    private var repeated: Set<Int> = []
    static let exactLimit = 1_000_000
    /// 2^27 bits.
    static let bloomWords = 1 << 21

    public init() {}

    /// Records one row's base ID (`RowIDAssigner.baseID`).
    /// - Returns: whether the ID appeared before, as far as an exact count tells (always `false`
    ///   once the Bloom filter has taken over, which can only say "maybe").
    @discardableResult
    public mutating func add(_ baseID: String) -> Bool {
        let hash = baseID.hashValue
        if bloom.isEmpty {
            if !seen.insert(hash).inserted {
                repeated.insert(hash)
                return true
            }
            if seen.count > Self.exactLimit {
                bloom = Array(repeating: 0, count: Self.bloomWords)
                for old in seen { _ = setBits(old) }
                seen = []
            }
            return false
        }
        if setBits(hash) { repeated.insert(hash) }
        return false
    }

    /// Sets the Bloom filter's 3 bits of `hash`; returns whether all were set already.
    private mutating func setBits(_ hash: Int) -> Bool {
        var mixed = UInt64(bitPattern: Int64(hash))
        var wasSet = true
        for _ in 0..<3 {
            mixed = (mixed ^ (mixed >> 31)) &* 0x9E37_79B9_7F4A_7C15
            let bit = Int(mixed >> 37)  // 27 bits
            let (word, mask) = (bit >> 6, UInt64(1) << UInt64(bit & 63))
            if bloom[word] & mask == 0 {
                wasSet = false
                bloom[word] |= mask
            }
        }
        return wasSet
    }

    /// The record of repeats without the per-row hashes, for the run that follows the pass.
    public func finished() -> RowIDRepeats {
        var done = RowIDRepeats()
        done.repeated = repeated
        return done
    }

    /// Whether `baseID` may have been seen more than once.
    public func mayRepeat(_ baseID: String) -> Bool { repeated.contains(baseID.hashValue) }
}
