import Foundation
import LabelForgeCore

/// Reading what runs and ablations wrote, for assertions.
public enum RunFiles {
    /// An ablation summary's requests: engine requests its variants sent, and the distinct request
    /// keys their manifests list (equal when every shared request went to the engine once).
    public static func ablationRequests(summary: JSONValue) throws -> (sent: Int, distinctKeys: Int) {
        var keys = Set<String>()
        var sent = 0
        for variant in summary["variants"]?.arrayValue ?? [] {
            guard let run = variant["run"]?.stringValue else { continue }
            sent += variant["engine_requests"]?.intValue ?? 0
            for line in try String(contentsOfFile: run + "/manifest.jsonl", encoding: .utf8).split(separator: "\n") {
                for key in try JSONValue.parse(String(line))["request_keys"]?.arrayValue ?? [] {
                    keys.insert(key.textForm)
                }
            }
        }
        return (sent, keys.count)
    }

    /// The files of `outputs/` (names given) that differ between two run directories.
    public static func differingOutputs(_ a: String, _ b: String, files: [String]) -> [String] {
        files.filter {
            FileManager.default.contents(atPath: a + "/outputs/" + $0)
                != FileManager.default.contents(atPath: b + "/outputs/" + $0)
        }
    }
}
