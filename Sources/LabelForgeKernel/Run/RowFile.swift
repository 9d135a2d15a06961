import Foundation
import LabelForgeCore
import LabelForgeIO

/// Rows in a hidden file of the run directory: a barrier's input and its committed result.
///
/// Written to `<path>.tmp` and renamed into place by `commit()`, so a file that exists is whole.
package final class RowFileWriter {
    package let path: String
    private let writer: JSONLWriter
    private(set) var count = 0

    package init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: path + ".tmp")
        writer = try JSONLWriter(path: path + ".tmp", flushEvery: 256)
    }

    package func append(_ row: PipelineRow) throws {
        try writer.append(row.json)
        count += 1
    }

    /// Makes the file whole under its final name.
    package func commit() throws {
        try writer.sync()
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: path + ".tmp", toPath: path)
    }
}

/// Streams the rows of a row file, reloading each row's images from its dataset record.
package final class RowFileReader {
    private let lines: LineReader
    private let images: ImageFieldSet

    package init(path: String, images: ImageFieldSet) throws {
        lines = try LineReader(path: path)
        self.images = images
    }

    package func next() throws -> PipelineRow? {
        guard let line = lines.next() else { return nil }
        let value = try JSONValue.parse(line)
        guard let rowID = value["row_id"]?.stringValue, let source = value["source"],
            let fields = source["fields"]?.objectValue
        else {
            throw LabelForgeError(.io, "\(lines.path):\(lines.lineNumber): not a row of a LabelForge row file.")
        }
        let record = DatasetRecord(
            index: source["index"]?.intValue ?? 0, line: source["line"]?.intValue ?? 0, fields: fields,
            location: source["location"]?.stringValue ?? "")
        return PipelineRow(
            rowID: rowID, order: value["order"]?.arrayValue?.compactMap(\.intValue) ?? [], source: record,
            loaded: images.load(record),
            outputs: (value["outputs"]?.objectValue ?? [:]).compactMapValues(\.objectValue),
            parent: value["parent"]?.stringValue, sampleIndex: value["sample_index"]?.intValue)
    }
}
