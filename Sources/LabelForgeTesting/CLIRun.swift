import Foundation
import Subprocess
import SystemPackage

/// The result of running the `labelforge` executable.
public struct CLIResult: Sendable {
    public var exitCode: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs the built `labelforge` binary, as a user would.
public enum CLI {
    public static func run(
        _ arguments: [String], workingDirectory: String? = nil, environment: [String: String] = [:]
    ) async throws -> CLIResult {
        var overrides: [Environment.Key: String?] = [:]
        for (key, value) in environment { overrides[Environment.Key(stringLiteral: key)] = value }
        let result = try await Subprocess.run(
            .path(FilePath(LabelForgeBinary.path())), arguments: Arguments(arguments),
            environment: .inherit.updating(overrides),
            workingDirectory: workingDirectory.map { FilePath($0) },
            output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        let code: Int32
        switch result.terminationStatus {
        case .exited(let c): code = Int32(c)
        case .signaled(let s): code = 128 + Int32(s)
        }
        return CLIResult(exitCode: code, stdout: result.standardOutput, stderr: result.standardError)
    }
}
