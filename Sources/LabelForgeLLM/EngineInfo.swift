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
                    return .object(entry)
                })
        }
        return .object(info)
    }
}
