import Foundation
import LabelForgeCore

/// The file formats a dataset can come in.
public struct DatasetFormat: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public var description: String { name }

    public static let jsonl = DatasetFormat("jsonl")
    public static let csv = DatasetFormat("csv")
    /// A directory tree of images: one row per image, `label` from its folder's name.
    public static let imagefolder = DatasetFormat("imagefolder")
    /// A Parquet file, or a split of a Hugging Face dataset folder (`ParquetSource`).
    public static let parquet = DatasetFormat("parquet")
    public static let all: [DatasetFormat] = [.jsonl, .csv, .imagefolder, .parquet]

    /// The format with this name, or `nil` when LabelForge cannot read it.
    public init?(name: String) {
        guard Self.all.map(\.name).contains(name) else { return nil }
        self.init(name)
    }

    private init(_ name: String) { self.name = name }

}

/// One input row, as read from the dataset.
public struct DatasetRecord: Sendable {
    /// 0-based position in the file, after blank lines are skipped.
    public let index: Int
    /// The 1-based line where the record starts (for an image folder, the 1-based position).
    public let line: Int
    public let fields: [String: JSONValue]
    /// Where the record is, for messages: `file:line`, or the image's path in an image folder.
    public let location: String

    public init(index: Int, line: Int, fields: [String: JSONValue], location: String) {
        self.index = index
        self.line = line
        self.fields = fields
        self.location = location
    }
}

/// Streams records out of a JSONL or CSV file, an image folder, or Parquet, one at a time.
///
/// An image folder yields `{image, label, path}` per image file (PNG, JPEG, WebP, GIF by
/// extension), in byte order of the paths: `image` and `path` are the path relative to the folder,
/// `label` the name of the image's parent folder (`null` for images at the top).
public final class DatasetReader {
    public let path: String
    public let format: DatasetFormat
    private let lines: LineReader?
    private let parquet: ParquetChild?
    private var header: [String]?
    private var imagePaths: [String] = []
    private var nextIndex = 0

    /// File extensions an image folder's images may have.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "webp", "gif"]

    /// - Parameters:
    ///   - path: the file, or the folder (image folder, Parquet dataset folder).
    ///   - format: how to read it.
    ///   - parquet: how a `parquet` dataset is read (required for that format).
    /// - Throws: `LabelForgeError` when the file cannot be opened, or a CSV file has no header.
    public init(path: String, format: DatasetFormat, parquet: ParquetSource? = nil) throws {
        self.path = path
        self.format = format
        if format == .parquet {
            guard let parquet else {
                throw LabelForgeError(.invalidDataset, "\(path): a Parquet dataset needs its reader (ParquetSource).")
            }
            let child = try ParquetChild(parquet, name: path)
            self.parquet = child
            lines = child.lines
            return
        }
        self.parquet = nil
        if format == .imagefolder {
            lines = nil
            imagePaths = try Self.listImages(in: path)
            return
        }
        let lines = try LineReader(path: path)
        self.lines = lines
        if format == .csv {
            guard let first = try CSVParser.record(from: lines) else {
                throw LabelForgeError(
                    .invalidDataset, "\(path): the CSV file is empty; it needs a header line naming its columns.")
            }
            header = first.fields
        }
    }

    /// The next record, or `nil` at end of file.
    /// - Throws: `LabelForgeError.invalidDataset` naming the file and line of a malformed record.
    public func next() throws -> DatasetRecord? {
        switch format {
        case .csv: return try nextCSV()
        case .imagefolder: return nextImage()
        case .parquet: return try nextParquet()
        default: return try nextJSONL()
        }
    }

    private func nextImage() -> DatasetRecord? {
        guard nextIndex < imagePaths.count else { return nil }
        let relative = imagePaths[nextIndex]
        let parts = relative.split(separator: "/")
        let label: JSONValue = parts.count > 1 ? .string(String(parts[parts.count - 2])) : .null
        defer { nextIndex += 1 }
        return DatasetRecord(
            index: nextIndex, line: nextIndex + 1,
            fields: ["image": .string(relative), "label": label, "path": .string(relative)],
            location: path + "/" + relative)
    }

    /// Image files under `directory`, relative to it, sorted by their UTF-8 bytes; hidden files skipped.
    static func listImages(in directory: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LabelForgeError(
                .invalidDataset, "\(directory): an imagefolder dataset's path must be a directory of images.")
        }
        let paths = try FileManager.default.subpathsOfDirectory(atPath: directory)
            .filter { path in
                !path.split(separator: "/").contains { $0.hasPrefix(".") }
                    && Self.imageExtensions.contains((path as NSString).pathExtension.lowercased())
            }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        guard !paths.isEmpty else {
            throw LabelForgeError(
                .invalidDataset,
                "\(directory) is a directory, so it is read as an image folder, but it holds no images (looked for "
                    + "\(imageExtensions.sorted().joined(separator: ", ")) files). dataset.path must be a JSONL or CSV "
                    + "file, or a folder of images.")
        }
        return paths
    }

    private func nextJSONL() throws -> DatasetRecord? {
        guard let lines else { return nil }
        while let text = lines.next() {
            try checkUTF8(lines)
            if text.allSatisfy(\.isWhitespace) { continue }
            let value: JSONValue
            do {
                value = try JSONValue.parse(text)
            } catch let error as LabelForgeError {
                throw LabelForgeError(
                    .invalidDataset,
                    "\(path):\(lines.lineNumber): \(error.message) Each line must be one JSON object.")
            }
            guard case .object(let fields) = value else {
                throw LabelForgeError(
                    .invalidDataset,
                    "\(path):\(lines.lineNumber): expected a JSON object, found a \(value.typeName).")
            }
            defer { nextIndex += 1 }
            return DatasetRecord(
                index: nextIndex, line: lines.lineNumber, fields: fields, location: "\(path):\(lines.lineNumber)")
        }
        return nil
    }

    /// The next row of a Parquet dataset, as its reader wrote it; at the end, the reader's failure.
    private func nextParquet() throws -> DatasetRecord? {
        guard let lines, let parquet else { return nil }
        guard let text = lines.next() else {
            try parquet.finish()
            return nil
        }
        let number = lines.lineNumber
        guard let value = try? JSONValue.parse(text), case .object(let fields) = value else {
            throw LabelForgeError(.invalidDataset, "\(path) row \(number): the Parquet reader wrote no JSON object.")
        }
        defer { nextIndex += 1 }
        return DatasetRecord(index: nextIndex, line: number, fields: fields, location: "\(path) row \(number)")
    }

    /// - Throws: `LabelForgeError.invalidDataset` naming the line and byte when a line read so far
    ///   was not UTF-8 (LabelForge does not guess encodings).
    private func checkUTF8(_ lines: LineReader) throws {
        guard let bad = lines.invalidUTF8 else { return }
        throw LabelForgeError(
            .invalidDataset,
            "\(path):\(bad.line): byte \(bad.offset + 1) (0x\(String(bad.byte, radix: 16, uppercase: true))) is not "
                + "UTF-8. LabelForge reads UTF-8 text only: convert the file first, for example with "
                + "iconv -f latin1 -t utf-8.")
    }

    private func nextCSV() throws -> DatasetRecord? {
        guard let header, let lines else { return nil }
        while let record = try CSVParser.record(from: lines) {
            try checkUTF8(lines)
            if record.fields.count == 1 && record.fields[0].isEmpty { continue }
            guard record.fields.count == header.count else {
                throw LabelForgeError(
                    .invalidDataset,
                    "\(path):\(record.line): \(record.fields.count) fields, but the header has \(header.count)."
                        + " Quote fields that contain commas.")
            }
            var fields: [String: JSONValue] = [:]
            for (name, value) in zip(header, record.fields) { fields[name] = .string(value) }
            defer { nextIndex += 1 }
            return DatasetRecord(
                index: nextIndex, line: record.line, fields: fields, location: "\(path):\(record.line)")
        }
        return nil
    }

    /// The dataset file's fingerprint: `sha256:` of its bytes; for an image folder, of the list of
    /// image paths (the images' bytes are added by whoever reads them, see `ImageFieldSet`).
    public static func fingerprint(path: String, format: DatasetFormat) throws -> String {
        if format == .imagefolder {
            var hasher = ContentHash.Hasher()
            for relative in try listImages(in: path) { hasher.update(relative) }
            return hasher.finalize()
        }
        return ContentHash.prefixed(try ContentHash.hexOfFile(atPath: path))
    }
}

/// RFC 4180 CSV records, including quoted fields that span lines.
enum CSVParser {
    struct Record {
        let line: Int
        let fields: [String]
    }

    static func record(from lines: LineReader) throws -> Record? {
        guard var text = lines.next() else { return nil }
        let start = lines.lineNumber
        while true {
            if let fields = parse(text) { return Record(line: start, fields: fields) }
            guard let more = lines.next() else {
                throw LabelForgeError(
                    .invalidDataset, "\(lines.path):\(start): a quoted field is never closed.")
            }
            text += "\n" + more
        }
    }

    /// The fields of one record, or `nil` when a quoted field continues on the next line.
    static func parse(_ text: String) -> [String]? {
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = text.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    if let n = iterator.next() {
                        if n == "\"" {
                            field.append("\"")
                        } else {
                            inQuotes = false
                            pending = n
                        }
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" {
                inQuotes = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(c)
            }
        }
        if inQuotes { return nil }
        fields.append(field)
        return fields
    }
}
