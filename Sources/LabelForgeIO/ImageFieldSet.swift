import Foundation
import LabelForgeCore

/// Which fields of a dataset hold images, where their relative paths start, and the limits each
/// image must meet.
///
/// A field may hold a path (relative to the dataset file's directory, or to an image folder), a
/// `data:image/…;base64,…` URL, or an object `{"base64": "…"}` (JSONL and Parquet, whose image columns
/// arrive as `{"base64": …, "path": …}`; without bytes, the path is read). Images are identified
/// by their bytes: row IDs and cache keys use the content hash, never the path.
public struct ImageFieldSet: Sendable {
    public var fields: [String]
    /// The directory relative paths start from.
    public var baseDirectory: String
    public var limits: ImageFile.Limits
    /// Fields that only say where an image lives (an image folder's `path`); left out of row IDs,
    /// so moving or renaming a file keeps its row's ID.
    public var locatorFields: [String]

    public init(fields: [String], baseDirectory: String, limits: ImageFile.Limits, locatorFields: [String] = []) {
        self.fields = fields
        self.baseDirectory = baseDirectory
        self.limits = limits
        self.locatorFields = locatorFields
    }

    /// The image fields of a dataset: paths are relative to the dataset file's directory, or to the
    /// folder itself for `imagefolder` and a Parquet dataset folder.
    public init(fields: [String], datasetPath: String, format: DatasetFormat, limits: ImageFile.Limits) {
        var isDirectory: ObjCBool = false
        let isFolder =
            format == .imagefolder
            || (format == .parquet && FileManager.default.fileExists(atPath: datasetPath, isDirectory: &isDirectory)
                && isDirectory.boolValue)
        let directory = isFolder ? datasetPath : (datasetPath as NSString).deletingLastPathComponent
        self.init(
            fields: fields, baseDirectory: directory.isEmpty ? "." : directory, limits: limits,
            locatorFields: isFolder ? ["path"] : [])
    }

    /// Reads and checks every image of one record. A bad image is that field's failure, not a throw.
    public func load(_ record: DatasetRecord) -> LoadedRecord {
        var loaded = LoadedRecord(identity: record.fields, recorded: record.fields)
        for field in locatorFields { loaded.identity.removeValue(forKey: field) }
        for field in fields {
            do {
                let (image, inline) = try self.image(in: record.fields[field], field: field)
                loaded.images[field] = image
                loaded.identity[field] = .string(image.contentHash)
                if inline { loaded.recorded[field] = .string(image.contentHash) }
            } catch let error as ImageError {
                loaded.failures[field] = ImageError(
                    error.kind, "\(record.location), field '\(field)': \(error.message)")
                // An inline image that fails is still recorded by hash, never as its base64 text.
                if let value = record.fields[field], Self.isInline(value) {
                    let hash = ContentHash.prefixed(ContentHash.hex(value))
                    loaded.identity[field] = .string(hash)
                    loaded.recorded[field] = .string(hash)
                }
            } catch {
                loaded.failures[field] = ImageError(.unreadable, "\(record.location), field '\(field)': \(error)")
            }
        }
        return loaded
    }

    /// Longer strings are not taken for paths (likely bare base64): they are recorded by hash.
    static let maxPathLength = 4096

    /// Whether a field value carries (or may carry) the image's bytes itself, so run files record
    /// it by hash, never as text.
    static func isInline(_ value: JSONValue) -> Bool {
        if value.objectValue?["base64"] != nil { return true }
        guard let text = value.stringValue else { return false }
        return text.hasPrefix("data:") || text.utf8.count > maxPathLength
    }

    private func image(in value: JSONValue?, field: String) throws -> (ImageFile, inline: Bool) {
        switch value {
        case nil:
            throw ImageError(.invalidReference, "the row has no field '\(field)'.")
        case .string(let text) where text.hasPrefix("data:"):
            guard let comma = text.firstIndex(of: ","), text[..<comma].hasSuffix(";base64") else {
                throw ImageError(.invalidReference, "the data URL is not of the form data:image/…;base64,….")
            }
            return (try decode(String(text[text.index(after: comma)...])), true)
        case .string(let text) where text.utf8.count > Self.maxPathLength:
            throw ImageError(
                .invalidReference,
                "the value is \(text.utf8.count) characters, too long for a path; for inline images use "
                    + "data:image/…;base64,… or {\"base64\": …}.")
        case .string(let text) where !text.isEmpty:
            let path = text.hasPrefix("/") ? text : baseDirectory + "/" + text
            return (try ImageFile.read(path: path, limits: limits), false)
        case .object(let members) where members["base64"]?.isNull == true && members["path"]?.stringValue != nil:
            // A `datasets` Image struct (Parquet) without its bytes: the file it names.
            return try image(in: members["path"], field: field)
        case .object(let members) where members["base64"] != nil:
            guard let payload = members["base64"]?.stringValue else {
                throw ImageError(.invalidReference, "'base64' must be a string of base64 image bytes.")
            }
            return (try decode(payload), true)
        default:
            throw ImageError(
                .invalidReference,
                "expected an image path, a data:image/…;base64 URL or {\"base64\": …}, found \(value!.typeName) "
                    + "\(String(CanonicalJSON.string(value!).prefix(40))).")
        }
    }

    private func decode(_ payload: String) throws -> ImageFile {
        guard payload.utf8.count / 4 * 3 - 3 <= limits.maxBytes else {
            throw ImageError(
                .tooLarge,
                "the inline image is about \(payload.utf8.count / 4 * 3) bytes, over the limit of \(limits.maxBytes).")
        }
        guard let bytes = Data(base64Encoded: payload) else {
            throw ImageError(.invalidReference, "the inline image is not valid base64.")
        }
        return try ImageFile.parse(bytes, name: "(inline)", limits: limits)
    }
}

/// One dataset record with its images loaded, and the record as row IDs and outputs see it.
public struct LoadedRecord: Sendable {
    public var images: [String: ImageFile] = [:]
    public var failures: [String: ImageError] = [:]
    /// The record with each image replaced by its content hash and locator fields left out: what
    /// the row ID is computed from.
    public var identity: [String: JSONValue]
    /// The record as run outputs repeat it: inline images replaced by their content hash.
    public var recorded: [String: JSONValue]

    /// `identity`, with a configured ID column as the dataset has it (even `path` or an image field).
    public func identity(idField: String?) -> [String: JSONValue] {
        guard let idField, let value = recorded[idField] else { return identity }
        var record = identity
        record[idField] = value
        return record
    }
}
