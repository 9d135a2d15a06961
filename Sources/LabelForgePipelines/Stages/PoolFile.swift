import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeKernel

/// A labeled JSONL pool a stage's `examples:` names: where it is, its SHA-256, and whether it is
/// the file a run's resolved config pinned (`sha256`).
struct PoolFile {
    var path: String
    var sha256: String
    /// Read back from a run's resolved config whose pool has since changed or gone: why no row can be
    /// labeled as the run labeled it. The run's `diff`, report and ablation summary read it anyway.
    var stale: String?

    /// Reads `path` and `sha256` of `node` and checks the file.
    /// - Parameter resolved: `node` is from a run's `config.resolved.yaml`: a changed pool there is
    ///   `stale`, not an error.
    /// - Throws: `LabelForgeError.invalidConfig` when the file is missing, or (outside a resolved
    ///   config) is not the one `sha256` pins.
    static func open(_ node: ConfigReader, resolved: Bool) throws -> PoolFile {
        let pathNode = try node.require("path")
        let path = try pathNode.filePath()
        let pinned = try node.child("sha256")?.string()
        let current = FileManager.default.fileExists(atPath: path) ? try ContentHash.hexOfFile(atPath: path) : nil
        if let pinned, pinned != current {
            let message =
                current.map {
                    "the examples file \(path) changed since the run (sha256 \(pinned), now \($0)): restore it, or "
                        + "run the config again instead of replaying"
                } ?? "the examples file \(path) the run used is gone: restore it (sha256 \(pinned))"
            guard resolved else { throw node.error(message + ".") }
            return PoolFile(path: path, sha256: pinned, stale: message)
        }
        guard let current else { throw pathNode.error("the examples file \(path) does not exist.") }
        return PoolFile(path: path, sha256: current, stale: nil)
    }

    /// Each line that is not blank, as a JSON object with text in `field`; none for a stale pool.
    /// - Throws: `LabelForgeError.invalidConfig` naming the file and line of one that is not.
    func records(field: String) throws -> [(line: Int, record: [String: JSONValue])] {
        guard stale == nil else { return [] }
        let reader = try LineReader(path: path)
        var records: [(line: Int, record: [String: JSONValue])] = []
        var number = 0
        while let line = reader.next() {
            number += 1
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            guard let record = (try? JSONValue.parse(line))?.objectValue else {
                throw LabelForgeError(.invalidConfig, "\(path) line \(number): not a JSON object.")
            }
            guard let text = record[field], !text.isNull, !text.textForm.isEmpty else {
                throw LabelForgeError(
                    .invalidConfig,
                    "\(path) line \(number): no text in '\(field)' (set examples.field to the field that holds it).")
            }
            records.append((number, record))
        }
        if records.isEmpty { throw LabelForgeError(.invalidConfig, "the examples file \(path) has no examples.") }
        return records
    }
}
