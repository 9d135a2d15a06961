import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// Writes JSON lines as one Parquet file with `scripts/parquet_io.py write` (polars, fixed options:
/// the same lines give the same bytes).
package enum ParquetWriter {
    /// - Returns: what the writer printed: `rows`, `features` (as a dataset card lists them) and
    ///   `options`.
    /// - Throws: `LabelForgeError` when the writer is not installed or fails, with its reason.
    package static func write(rows: String, to file: String) throws -> JSONValue {
        let (python, script) = try command()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "write", "--input", rows, "--output", file]
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
        return result
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
