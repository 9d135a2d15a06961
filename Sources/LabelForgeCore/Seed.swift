/// Per-request seeds (docs/architecture.md).
public enum Seed {
    /// The seed for one request: the first 8 hex digits of
    /// `sha256("<runSeed>|<stageID>|<rowID>|<sampleIndex>")` as a `UInt32`.
    ///
    /// `0xFFFFFFFF` means "random" to llama.cpp, so it maps to `0xFFFFFFFE`.
    public static func derive(runSeed: UInt64, stageID: String, rowID: String, sampleIndex: Int) -> UInt32 {
        let material = "\(runSeed)|\(stageID)|\(rowID)|\(sampleIndex)"
        let hex = ContentHash.hex(Array(material.utf8))
        let value = UInt32(hex.prefix(8), radix: 16)!
        return value == 0xFFFF_FFFF ? 0xFFFF_FFFE : value
    }
}
