import LabelForgeCore

extension RunConfig.Engine {
    /// What only a `batch` engine takes: its provider, its limits and how it is polled.
    public struct Batch: Sendable {
        /// `openai` (files + batches), `anthropic` (message batches) or `vllm-file` (batch files
        /// for `vllm run-batch`).
        public var provider: String
        /// How often an open batch is polled, in seconds.
        public var pollSeconds: Double
        /// How long requests gather before a batch forms (no request joined for this long).
        public var gatherSeconds: Double
        /// The most requests, and bytes of request lines, one batch takes (the provider's limits).
        public var maxRequests: Int
        public var maxBytes: Int
        /// OpenAI's `completion_window`.
        public var completionWindow: String
        /// `vllm-file`: where batch files are written and answers read (a directory this machine and
        /// the one running `vllm run-batch` see); nil: `<run directory>/batches`.
        public var directory: String?
        /// `vllm-file`: the command that answers a batch file, with `{input}`, `{output}` and
        /// `{model}` replaced; nil: something else does (a cluster job watching the directory).
        public var command: [String]?

        /// The keys only a `batch` engine takes.
        static let keys = [
            "provider", "poll_s", "gather_s", "max_batch_requests", "max_batch_bytes", "completion_window",
            "batch_dir", "command",
        ]

        /// The provider's own limits: OpenAI 50,000 requests and 200 MB a batch, Anthropic 100,000
        /// and 256 MB; a vLLM batch file takes what OpenAI's does.
        static func limits(_ provider: String) -> (requests: Int, bytes: Int) {
            provider == "anthropic" ? (100_000, 256_000_000) : (50_000, 200_000_000)
        }

        /// Where the provider is when the config gives no `base_url`.
        static func defaultBaseURL(_ provider: String) -> String? {
            switch provider {
            case "openai": "https://api.openai.com/v1"
            case "anthropic": "https://api.anthropic.com"
            default: nil
            }
        }

        var json: [String: JSONValue] {
            var json: [String: JSONValue] = [
                "provider": .string(provider), "poll_s": .double(pollSeconds), "gather_s": .double(gatherSeconds),
                "max_batch_requests": .int(Int64(maxRequests)), "max_batch_bytes": .int(Int64(maxBytes)),
                "completion_window": .string(completionWindow),
            ]
            if let directory { json["batch_dir"] = .string(directory) }
            if let command { json["command"] = .array(command.map(JSONValue.string)) }
            return json
        }

        /// The `batch` settings of an engine node; refuses them on other kinds.
        /// - Throws: `LabelForgeError.invalidConfig` naming the file and line.
        static func parse(_ node: ConfigReader, kind: String, strict: Bool) throws -> Batch? {
            guard kind == "batch" else {
                for key in keys {
                    if let extra = try node.child(key) {
                        throw extra.error("'\(key)' applies to engines of kind 'batch' only.")
                    }
                }
                return nil
            }
            guard let providerNode = try node.child("provider") else {
                throw node.error("an engine of kind 'batch' needs 'provider': openai, anthropic or vllm-file.")
            }
            let provider = try providerNode.oneOf(["openai", "anthropic", "vllm-file"])
            if strict {
                throw node.error(
                    "determinism: strict sends one request at a time, so a batch engine would submit a batch per "
                        + "request: use determinism: standard (a batch API orders its answers itself).")
            }
            let limits = limits(provider)
            func positive(_ key: String, _ fallback: Double) throws -> Double {
                guard let child = try node.child(key) else { return fallback }
                let value = try child.double()
                guard value > 0 else { throw child.error("'\(key)' must be more than 0.") }
                return value
            }
            let commandNode = try node.child("command")
            let command = try commandNode?.stringList()
            if let commandNode, provider != "vllm-file" || command?.isEmpty == true {
                throw commandNode.error(
                    "'command' is the program that answers a vLLM batch file (provider: vllm-file), as a list, e.g. "
                        + "[vllm, run-batch, -i, '{input}', -o, '{output}', --model, '{model}'].")
            }
            let directoryNode = try node.child("batch_dir")
            if let directoryNode, provider != "vllm-file" {
                throw directoryNode.error("'batch_dir' applies to provider: vllm-file only.")
            }
            return Batch(
                provider: provider, pollSeconds: try positive("poll_s", 30), gatherSeconds: try positive("gather_s", 2),
                maxRequests: Int(try positive("max_batch_requests", Double(limits.requests))),
                maxBytes: Int(try positive("max_batch_bytes", Double(limits.bytes))),
                completionWindow: try node.child("completion_window")?.string() ?? "24h",
                directory: try directoryNode?.filePath(), command: command)
        }
    }
}
