import Foundation
import LabelForgeCore
import Logging
import Subprocess
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// What a local llama.cpp server serves: one model, one kind of request (xllamacpp and
/// llama-server serve one model per process).
public enum LocalEngineTask: String, Sendable, CaseIterable {
    /// `/v1/chat/completions`.
    case chat
    /// `/v1/embeddings` (`--embedding`; the model's own pooling).
    case embed
    /// `/v1/rerank` (`--reranking`: embeddings with rank pooling).
    case rerank

    /// The server flags that select the task.
    var arguments: [String] {
        switch self {
        case .chat: return []
        case .embed: return ["--embedding"]
        case .rerank: return ["--reranking"]
        }
    }
}

/// How to start the embedded llama.cpp server (`engines[].kind: local`).
public struct LocalEngineOptions: Sendable {
    /// Path of the GGUF model file.
    public var modelPath: String
    public var task: LocalEngineTask
    /// Decoding slots (`--parallel`); strict determinism uses 1.
    public var slots: Int
    /// Context length per slot, in tokens.
    public var contextPerSlot: Int
    /// CPU threads; 0 lets llama.cpp decide.
    public var threads: Int
    /// How hard ggml's idle threads poll for work, 0 (sleep at once) to 100 (`--poll`); `nil`
    /// keeps llama.cpp's default (50).
    public var poll: Int?
    /// Where the server's own log goes.
    public var logPath: String
    /// How long to wait for `/health` to answer 200.
    public var startupTimeout: Duration
    /// Tokens in one physical batch (`--batch-size` and `--ubatch-size`); `nil` keeps llama.cpp's 512.
    /// An embedding or rerank model needs each input whole in one batch.
    public var batchTokens: Int? = nil
    /// A file holding the API key the server requires (`--api-key-file`: the key never appears on a
    /// command line); `nil` for none.
    public var apiKeyFile: String? = nil

    public init(
        modelPath: String, task: LocalEngineTask = .chat, slots: Int = 2, contextPerSlot: Int = 2048, threads: Int = 0,
        poll: Int? = nil, logPath: String, startupTimeout: Duration = .seconds(120)
    ) {
        self.poll = poll
        self.modelPath = modelPath
        self.task = task
        self.slots = slots
        self.contextPerSlot = contextPerSlot
        self.threads = threads
        self.logPath = logPath
        self.startupTimeout = startupTimeout
    }
}

/// A running embedded engine, as the body of `LocalEngine.withRunning` sees it.
public struct RunningLocalEngine: Sendable {
    public var baseURL: String
    /// `llama-server` (a binary) or `xllamacpp` (llama.cpp's server in-process in Python).
    public var launcher: String
    public var command: [String]
}

/// Starts llama.cpp's HTTP server on a free loopback port, waits until it is healthy, and stops
/// it when the body returns, throws or is cancelled (docs/architecture.md).
///
/// The server is `llama-server` when `LABELFORGE_LLAMA_SERVER` names it or it is on `PATH`;
/// otherwise `scripts/llama_server.py`, which runs llama.cpp's server in-process through
/// PyPI's `xllamacpp`, from the project's `.venv`.
public enum LocalEngine {
    /// Runs `body` while the engine is up.
    /// - Throws: `LabelForgeError.engineUnavailable` when no launcher is found or the server
    ///   does not become healthy; rethrows what `body` throws.
    public static func withRunning<T: Sendable>(
        _ options: LocalEngineOptions, logger: Logger,
        _ body: (RunningLocalEngine) async throws -> T
    ) async throws -> T {
        guard FileManager.default.fileExists(atPath: options.modelPath) else {
            throw LabelForgeError(
                .fileNotFound,
                "Model file \(options.modelPath) does not exist. Run `make setup` to install the default model, "
                    + "or set engines[].model.path to a GGUF file.")
        }
        let port = try freeLoopbackPort()
        let (executable, prefix, launcher) = try resolveLauncher(for: options)
        let common = ["--model", options.modelPath, "--host", "127.0.0.1", "--port", String(port)]
        let threads = options.threads > 0 ? ["--threads", String(options.threads)] : []
        let arguments: [String]
        if launcher == embeddingServer {
            arguments = prefix + common + ["--log-file", options.logPath] + threads
        } else {
            arguments =
                prefix + common + [
                    "--parallel", String(options.slots), "--ctx-size", String(options.contextPerSlot * options.slots),
                    "--log-file", options.logPath,
                ] + threads
                + (options.poll.map { ["--poll", String($0)] } ?? [])
                + (options.batchTokens.map { ["--batch-size", String($0), "--ubatch-size", String($0)] } ?? [])
                + (options.apiKeyFile.map { ["--api-key-file", $0] } ?? [])
                + options.task.arguments
        }
        let baseURL = "http://127.0.0.1:\(port)"
        logger.info(
            "starting local \(options.task.rawValue) engine (\(launcher)) on \(baseURL) with \(options.slots) slot(s)")
        var platform = PlatformOptions()
        platform.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(3))]
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments),
            // The xllamacpp launcher exits as soon as this process is no longer its parent.
            environment: .inherit.updating(["LABELFORGE_PARENT_PID": String(getpid())]), platformOptions: platform,
            input: .none, output: .discarded, error: .discarded
        ) { execution -> T in
            let running = RunningLocalEngine(baseURL: baseURL, launcher: launcher, command: [executable] + arguments)
            do {
                try await waitForHealth(
                    baseURL: baseURL, pid: execution.processIdentifier.value, options: options, logger: logger)
                let value = try await body(running)
                await execution.teardown(using: [.gracefulShutDown(allowedDurationToNextStep: .seconds(3))])
                return value
            } catch {
                await execution.teardown(using: [.gracefulShutDown(allowedDurationToNextStep: .seconds(3))])
                throw error
            }
        }
        logger.info("local engine stopped")
        return result.closureResult
    }

    /// The launcher of an ONNX embedding model (`scripts/embedding_server.py`: ONNX Runtime behind
    /// vLLM's embeddings API).
    public static let embeddingServer = "onnxruntime"

    /// The launcher for `options`' model: the ONNX embedding server for an `.onnx` file, else
    /// llama.cpp's (`resolveLauncher()`).
    /// - Throws: `LabelForgeError.invalidConfig` for an ONNX model asked to chat or rerank;
    ///   `engineUnavailable` when no launcher is installed.
    public static func resolveLauncher(for options: LocalEngineOptions) throws -> (String, [String], String) {
        guard options.modelPath.hasSuffix(".onnx") else { return try resolveLauncher() }
        guard options.task == .embed else {
            throw LabelForgeError(
                .invalidConfig,
                "\(options.modelPath) is an ONNX embedding model: it serves task: embed only. Give a GGUF model for "
                    + "task: \(options.task.rawValue).")
        }
        guard let python = ProjectPaths.venvPython(),
            let script = ProjectPaths.projectFile("scripts/embedding_server.py")
        else {
            throw LabelForgeError(
                .engineUnavailable,
                "No embedding server found: it needs the Python environment `labelforge setup` (or `make setup` in a "
                    + "checkout) installs, with onnxruntime and tokenizers.")
        }
        return (python, [script], embeddingServer)
    }

    /// The llama.cpp launcher that would be used now: `(executable, leading arguments, name)`.
    public static func resolveLauncher() throws -> (String, [String], String) {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["LABELFORGE_LLAMA_SERVER"], !explicit.isEmpty {
            return (explicit, [], "llama-server")
        }
        if let onPath = ProjectPaths.findOnPath("llama-server") {
            return (onPath, [], "llama-server")
        }
        guard let python = ProjectPaths.venvPython(), let script = ProjectPaths.projectFile("scripts/llama_server.py")
        else {
            throw LabelForgeError(
                .engineUnavailable,
                "No local engine found: no llama-server on PATH and no Python environment with xllamacpp. "
                    + "Run `labelforge setup` (or `make setup` in a checkout), or set LABELFORGE_LLAMA_SERVER.")
        }
        return (python, [script], "xllamacpp")
    }

    private static func waitForHealth(
        baseURL: String, pid: pid_t, options: LocalEngineOptions, logger: Logger
    ) async throws {
        try await OpenAIClient.withClient(
            options: EndpointOptions(baseURLs: [baseURL], maxRetries: 0), logger: logger
        ) { client in
            let deadline = ContinuousClock.now + options.startupTimeout
            while ContinuousClock.now < deadline {
                try Task.checkCancellation()
                if let health = try? await client.get(path: "/health", timeout: .seconds(2)),
                    health["status"]?.stringValue == "ok"
                {
                    return
                }
                if !isAlive(pid) {
                    throw LabelForgeError(
                        .engineUnavailable,
                        "The local engine exited during startup. Its log (\(options.logPath)) ends with: "
                            + logTail(options.logPath))
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            throw LabelForgeError(
                .engineUnavailable,
                "The local engine did not become healthy within \(options.startupTimeout). See \(options.logPath).")
        }
    }

    private static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
            return kill(pid, 0) == 0
        }
        guard let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    private static func logTail(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LabelForgeError(.engineUnavailable, "Cannot open a socket to find a free port.") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw LabelForgeError(.engineUnavailable, "Cannot bind 127.0.0.1 to find a free port.") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
