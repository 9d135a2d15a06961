import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeLLM
import Logging

/// A first pass over the dataset before any request: counts rows, fingerprints the file, and
/// checks that every field a template reads exists in every row.
package struct DatasetScan {
    package var rows: Int
    package var fingerprint: String
    /// Which row IDs may repeat, so the run remembers only those.
    package var repeats: RowIDRepeats
    /// Where an `id_field` value first repeats, for a warning.
    package var repeatedIDWarning: String? = nil

    package static func scan(config: RunConfig, pack: PromptPack, graph: StageGraph, limit: Int?) throws -> DatasetScan
    {
        let path = config.dataset.path
        let location = config.dataset.pathLocation.isEmpty ? config.file : config.dataset.pathLocation
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabelForgeError(
                .fileNotFound,
                "\(location): dataset.path '\(path)' does not exist. A relative path is relative to the "
                    + "config file's directory.")
        }
        let reader = try config.dataset.reader()
        let needs = graph.order.map { ($0, $0.requiredRowFields(graph: graph, pack: pack)) }
        let images = config.dataset.images
        let fileFingerprint = try config.dataset.fileFingerprint()
        // The dataset file alone does not pin images it refers to by path: fold in every image's
        // content hash (or why it failed), so a changed image changes the plan.
        var fingerprint = ContentHash.Hasher()
        fingerprint.update(fileFingerprint)
        var rows = 0
        var repeats = RowIDRepeats()
        var repeatedIDs = 0
        var firstRepeat: String?
        while let record = try reader.next() {
            if let limit, rows >= limit { break }
            for (stage, fields) in needs {
                for field in fields where record.fields[field] == nil {
                    throw LabelForgeError(
                        .invalidDataset,
                        "\(record.location): the row has no field '\(field)', which "
                            + stage.use(ofField: field)
                            + "(stage '\(stage.config.id)') uses. Fields present: "
                            + record.fields.keys.sorted().joined(separator: ", ") + "; stages: "
                            + graph.order.map(\.config.id).joined(separator: ", ") + ".")
                }
            }
            let loaded = images.load(record)
            for field in images.fields {
                fingerprint.update(field)
                fingerprint.update(loaded.images[field]?.contentHash ?? loaded.failures[field]?.kind.name ?? "")
            }
            let baseID = RowIDAssigner.baseID(
                for: loaded.identity(idField: config.dataset.idField), idField: config.dataset.idField)
            if repeats.add(baseID), let idField = config.dataset.idField {
                repeatedIDs += 1
                if firstRepeat == nil {
                    firstRepeat = "\(record.location): id_field '\(idField)' repeats '\(baseID)'"
                }
            }
            rows += 1
        }
        guard rows > 0 else {
            throw LabelForgeError(
                .invalidDataset,
                "\(location): dataset \(path) has no rows. Add rows (JSONL: one JSON object per line; CSV: a "
                    + "header line, then one line per row), or point dataset.path at another file.")
        }
        return DatasetScan(
            rows: rows, fingerprint: images.fields.isEmpty ? fileFingerprint : fingerprint.finalize(),
            repeats: repeats.finished(),
            repeatedIDWarning: firstRepeat.map {
                "\($0)" + (repeatedIDs > 1 ? " (and \(repeatedIDs - 1) more rows repeat an id)" : "")
                    + "; a repeated id gets #2, #3, … in input order. Make the ids unique if they should be."
            })
    }
}
