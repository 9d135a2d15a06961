import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// Writes JSON lines as one Parquet file with `scripts/parquet_io.py write` (polars, fixed options:
/// the same lines give the same bytes).
package enum ParquetWriter {
    /// - Parameters:
    ///   - rows: the JSON lines.
    ///   - file: the Parquet file to write.
    ///   - schema: the declared types of the rows' fields (`ColumnType.object`); the rest are typed
    ///     from their values.
    ///   - vectors: embed stages' vectors joined to the rows, as fixed-size lists of float32.
    ///   - images: the fields holding `{base64, path}` images, written as the `datasets` Image
    ///     struct (`bytes`, `path`) and listed as `image` features.
    ///   - rowsPerFile: write `<file>-00000-of-0000n.parquet`, … of this many rows each instead of
    ///     `file` (the writer's `files` lists them).
    /// - Returns: what the writer wrote.
    /// - Throws: `LabelForgeError` when the writer is not installed or fails, with its reason.
    package static func write(
        rows: String, to file: String, schema: ColumnType? = nil, vectors: [Vectors] = [], images: [String] = [],
        rowsPerFile: Int? = nil
    ) throws -> Written {
        let (python, script) = try command()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments =
            [script, "write", "--input", rows, "--output", file]
            + (schema.map { ["--schema", CanonicalJSON.string($0.json)] } ?? [])
            + (vectors.isEmpty ? [] : ["--vectors", CanonicalJSON.string(.array(vectors.map(\.json)))])
            + (images.isEmpty ? [] : ["--images", CanonicalJSON.string(.array(images.map(JSONValue.string)))])
            + (rowsPerFile.map { ["--rows-per-file", String($0)] } ?? [])
        let output = Pipe()
        let errors = try ChildErrors()
        process.standardOutput = output
        process.standardError = errors.handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, process.terminationReason == .exit,
            let result = try? JSONValue.parse(printed)
        else {
            throw LabelForgeError(.invalidDataset, "writing \(file) failed: \(errors.reason(of: process))")
        }
        return Written(
            rows: result["rows"]?.intValue ?? 0, files: (result["files"]?.arrayValue ?? []).compactMap(\.stringValue),
            features: result["features"] ?? [], undeclared: result["undeclared"]?.stringValue)
    }

    /// What `scripts/parquet_io.py write` wrote.
    package struct Written: Sendable {
        package var rows: Int
        /// The Parquet files, in order.
        package var files: [String]
        /// The columns as a dataset card's `dataset_info.features` lists them.
        package var features: JSONValue
        /// Why every field was typed from its values instead of as declared (a value that did not
        /// fit its declared type); `nil` when the declarations held.
        package var undeclared: String?
    }

    /// An embed stage's vectors joined to the rows: row `i` of the `.npy` file goes to the rows whose
    /// `index` field is `i`, as `column`; `dropIndex` leaves the index field out of the file.
    package struct Vectors: Sendable {
        package var npy: String
        package var index: String
        package var column: String
        package var dropIndex: Bool

        package init(npy: String, index: String, column: String, dropIndex: Bool = false) {
            self.npy = npy
            self.index = index
            self.column = column
            self.dropIndex = dropIndex
        }

        var json: JSONValue {
            ["npy": .string(npy), "index": .string(index), "column": .string(column), "drop_index": .bool(dropIndex)]
        }
    }

    /// The Python (with polars) and the script that read and write Parquet, where `make setup`
    /// installed them.
    package static var installed: (python: String, script: String)? {
        guard let python = ProjectPaths.venvPython(), let script = ProjectPaths.projectFile("scripts/parquet_io.py")
        else { return nil }
        return (python, script)
    }

    /// `installed`, for writing.
    /// - Throws: `LabelForgeError.fileNotFound` when they are not installed.
    package static func command() throws -> (python: String, script: String) {
        guard let installed else {
            throw LabelForgeError(
                .fileNotFound,
                "writing Parquet needs scripts/parquet_io.py and the Python environment with polars that `make setup` "
                    + "(or `labelforge setup`) installs.")
        }
        return installed
    }
}

extension RunDirectory {
    /// The Parquet view beside a JSONL file: the same name with `.parquet`.
    package static func parquetPath(of jsonl: String) -> String {
        (jsonl.hasSuffix(".jsonl") ? String(jsonl.dropLast(6)) : jsonl) + ".parquet"
    }
}
