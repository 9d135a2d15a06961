import Foundation
import LabelForgeCore

/// The `vllm serve` command lines and environment that match a LabelForge determinism mode, and
/// the engine block that points a config at them (`labelforge engine vllm`).
public struct VLLMLaunch: Sendable {
    public var model: String
    public var revision: String?
    /// `strict`: one process, no prefix cache (reproducible to the bit where vLLM can be).
    public var strict: Bool
    public var replicas: Int
    /// The first replica's port; replica i listens on `port + i`.
    public var port: Int
    public var host: String
    public var seed: Int
    /// GPUs per replica: replica i gets `CUDA_VISIBLE_DEVICES` i·n … i·n+n−1 (and `--tensor-parallel-size n`).
    public var gpusPerReplica: Int
    /// Set `VLLM_SERVER_DEV_MODE=1` so the server answers `/server_info`, which LabelForge records
    /// (seed, prefix caching, batch invariance as the server ran them). Dev mode also exposes
    /// admin routes: keep such a server on a private network.
    public var serverInfo: Bool
    /// More `vllm serve` arguments, appended as given.
    public var extraArguments: [String]
    public var engineName: String

    public init(
        model: String, revision: String? = nil, strict: Bool = false, replicas: Int = 1, port: Int = 8000,
        host: String = "127.0.0.1", seed: Int = 0, gpusPerReplica: Int = 1, serverInfo: Bool = false,
        extraArguments: [String] = [], engineName: String = "vllm"
    ) {
        self.model = model
        self.revision = revision
        self.strict = strict
        self.replicas = replicas
        self.port = port
        self.host = host
        self.seed = seed
        self.gpusPerReplica = gpusPerReplica
        self.serverInfo = serverInfo
        self.extraArguments = extraArguments
        self.engineName = engineName
    }

    /// One replica's process: its environment additions and its argument vector (`vllm serve …`).
    public struct Replica: Sendable {
        public var environment: [(String, String)]
        public var arguments: [String]
        public var baseURL: String

        /// The command as one shell line.
        public var shellLine: String {
            (environment.map { "\($0.0)=\(VLLMLaunch.quoted($0.1))" } + arguments.map(VLLMLaunch.quoted)).joined(
                separator: " ")
        }
    }

    /// The environment a determinism mode needs: batch invariance (the answer to a request does not
    /// depend on what it was batched with) and, in strict mode, one process. The same for
    /// `vllm serve` and for vLLM inside a Ray job.
    public static func determinismEnvironment(strict: Bool) -> [(String, String)] {
        var environment = [("VLLM_BATCH_INVARIANT", "1")]
        if strict { environment.append(("VLLM_ENABLE_V1_MULTIPROCESSING", "0")) }
        return environment
    }

    /// The engine arguments LabelForge's requests rely on, by vLLM's engine-argument names and in
    /// `vllm serve`'s order: the pinned revision, the default seed, sampling defaults from vLLM
    /// rather than the model's generation_config.json (LabelForge sends every parameter it relies
    /// on), compact JSON for structured outputs, and in strict mode no prefix caching. The same go
    /// on a server's command line and into a Ray job's `engine_kwargs`.
    ///
    /// Compact JSON is a server setting: vLLM reads `disable_any_whitespace` only from
    /// `--structured-outputs-config` and ignores it in a request (vllm#48765), and with backend
    /// `auto` the flag is refused, so the backend is named.
    public static func engineArguments(seed: Int, revision: String?, strict: Bool) -> [(
        name: String, value: JSONValue
    )] {
        var settings: [(name: String, value: JSONValue)] = []
        if let revision { settings.append(("revision", .string(revision))) }
        settings += [
            ("seed", .int(Int64(seed))), ("generation_config", "vllm"),
            ("structured_outputs_config", structuredOutputsConfig),
        ]
        if strict { settings.append(("enable_prefix_caching", false)) }
        return settings
    }

    /// `--structured-outputs-config`: xgrammar, without free whitespace in JSON (where small models
    /// loop until `max_tokens`).
    public static let structuredOutputsConfig: JSONValue = ["backend": "xgrammar", "disable_any_whitespace": true]

    public var replicaCommands: [Replica] {
        (0..<replicas).map { index in
            var environment = Self.determinismEnvironment(strict: strict)
            if serverInfo { environment.append(("VLLM_SERVER_DEV_MODE", "1")) }
            let gpus = (index * gpusPerReplica..<(index + 1) * gpusPerReplica).map(String.init).joined(separator: ",")
            environment.append(("CUDA_VISIBLE_DEVICES", gpus))
            var arguments = ["vllm", "serve", model]
            for (name, value) in Self.engineArguments(seed: seed, revision: revision, strict: strict) {
                let flag = name.replacingOccurrences(of: "_", with: "-")
                // A false switch is its `--no-` form; every other value (an object as its JSON) follows its flag.
                arguments += value == false ? ["--no-" + flag] : ["--" + flag, value.textForm]
            }
            if gpusPerReplica > 1 { arguments += ["--tensor-parallel-size", String(gpusPerReplica)] }
            arguments += ["--host", host, "--port", String(port + index)]
            arguments += extraArguments
            let shownHost = host == "0.0.0.0" ? "127.0.0.1" : host
            return Replica(
                environment: environment, arguments: arguments, baseURL: "http://\(shownHost):\(port + index)")
        }
    }

    /// The config's engine block for these replicas (and, for strict, the run setting).
    public var engineBlock: String {
        let urls = replicaCommands.map { "\"\($0.baseURL)\"" }.joined(separator: ", ")
        let perReplica = strict ? 1 : 64
        var lines = [
            "engines:", "  - name: \(engineName)", "    kind: openai", "    dialect: vllm",
            replicas == 1 ? "    base_url: \(urls)" : "    base_urls: [\(urls)]",
            revision.map { "    model: {id: \(model), revision: \($0)}" }
                ?? "    model: {id: \(model)}   # add revision: <commit> to pin the weights",
            "    max_in_flight: \(perReplica * replicas)",
        ]
        if replicas > 1 { lines.append("    max_in_flight_per_replica: \(perReplica)") }
        if strict { lines += ["run:", "  determinism: strict       # one request at a time, no prompt cache"] }
        return lines.joined(separator: "\n")
    }

    /// The whole printout of `labelforge engine vllm`.
    public var script: String {
        var lines = [
            "# vLLM for LabelForge (\(strict ? "strict" : "standard") determinism; docs/vllm.md)."
        ]
        for (index, replica) in replicaCommands.enumerated() {
            lines.append("# replica \(index + 1) of \(replicas)")
            lines.append(replica.shellLine + (replicas > 1 ? " &" : ""))
        }
        if replicas > 1 { lines.append("wait") }
        lines.append("")
        lines.append("# The engine block for the config:")
        lines.append(contentsOf: engineBlock.split(separator: "\n").map { "# " + $0 })
        return lines.joined(separator: "\n") + "\n"
    }

    /// A shell word: quoted only when it needs to be (also the Ray job entrypoint's words).
    static func quoted(_ word: String) -> String {
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./:=,@%+"))
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
