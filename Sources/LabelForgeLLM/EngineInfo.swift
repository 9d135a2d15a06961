import LabelForgeCore
import Logging

/// What an engine reports about itself, recorded in the manifest and stored with cache entries.
public enum EngineInfo {
    /// Reads `/props` (llama.cpp) or `/version` and `/v1/models` (vLLM); missing endpoints are skipped.
    ///
    /// The result is JSON: `{kind, version, build_info, total_slots, model_path, models, …}`.
    public static func probe(client: OpenAIClient, dialect: EngineDialect) async -> JSONValue {
        var info: [String: JSONValue] = ["dialect": .string(dialect.name)]
        if let props = try? await client.get(path: "/props") {
            info["build_info"] = props["build_info"] ?? .null
            info["total_slots"] = props["total_slots"] ?? .null
            if let path = props["model_path"]?.stringValue {
                info["model_file"] = .string(path.split(separator: "/").last.map(String.init) ?? path)
            }
            if let settings = props["default_generation_settings"]?["params"] {
                info["default_seed"] = settings["seed"] ?? .null
            }
            info["modalities"] = props["modalities"] ?? .null
        }
        if let version = try? await client.get(path: "/version") {
            info["version"] = version["version"] ?? .null
        }
        if let models = try? await client.get(path: "/v1/models"), let data = models["data"]?.arrayValue {
            info["models"] = .array(
                data.map { model in
                    // llama.cpp reports the model's local path as its id; keep only the file name.
                    let id = model["id"]?.stringValue.map { $0.split(separator: "/").last.map(String.init) ?? $0 }
                    var entry: [String: JSONValue] = ["id": id.map(JSONValue.string) ?? .null]
                    for key in ["root", "max_model_len", "owned_by"] where model[key] != nil { entry[key] = model[key] }
                    // llama.cpp: the model's training context, the window an embedding model takes.
                    if let window = model["meta"]?["n_ctx_train"] { entry["n_ctx_train"] = window }
                    return .object(entry)
                })
        }
        // vLLM with VLLM_SERVER_DEV_MODE=1 (`labelforge engine vllm --server-info`): what it ran with.
        if dialect.name == "vllm", let server = try? await client.get(path: "/server_info?config_format=json") {
            let config = server["vllm_config"]
            let environment = server["vllm_env"]
            var ran: [String: JSONValue] = [:]
            let fields: [(String, JSONValue?)] = [
                ("seed", config?["model_config"]?["seed"]), ("revision", config?["model_config"]?["revision"]),
                ("generation_config", config?["model_config"]?["generation_config"]),
                ("enable_prefix_caching", config?["cache_config"]?["enable_prefix_caching"]),
                ("VLLM_BATCH_INVARIANT", environment?["VLLM_BATCH_INVARIANT"]),
                ("VLLM_ENABLE_V1_MULTIPROCESSING", environment?["VLLM_ENABLE_V1_MULTIPROCESSING"]),
            ]
            for (key, value) in fields { if let value { ran[key] = value } }
            if !ran.isEmpty { info["server_config"] = .object(ran) }
        }
        return .object(info)
    }
}
