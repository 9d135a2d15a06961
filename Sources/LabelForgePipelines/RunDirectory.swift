import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// A run's directory, `runs/<run_id>/` (DESIGN.md §3.4).
public struct RunDirectory: Sendable {
    public let runID: String
    public let path: String

    public var manifestPath: String { path + "/manifest.jsonl" }
    public var outputsPath: String { path + "/outputs" }
    public var resolvedConfigPath: String { path + "/config.resolved.yaml" }
    public var reportPath: String { path + "/report.md" }
    public var engineLogPath: String { path + "/engine.log" }
    public func outputPath(stage: String) -> String { outputsPath + "/\(stage).jsonl" }

    /// Creates `<runsDir>/<yyyymmdd-hhmmss>-<plan hash prefix>`, adding `-2`, `-3`, … if it exists.
    public static func create(runsDir: String, planHash: String, now: Date = Date()) throws -> RunDirectory {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let hex = planHash.hasPrefix("sha256:") ? String(planHash.dropFirst(7)) : planHash
        let base = "\(formatter.string(from: now))-\(hex.prefix(8))"
        var runID = base
        var suffix = 1
        while FileManager.default.fileExists(atPath: runsDir + "/" + runID) {
            suffix += 1
            runID = "\(base)-\(suffix)"
        }
        let path = runsDir + "/" + runID
        do {
            try FileManager.default.createDirectory(atPath: path + "/outputs", withIntermediateDirectories: true)
        } catch {
            throw LabelForgeError(.io, "Cannot create the run directory \(path): \(error.localizedDescription)")
        }
        return RunDirectory(runID: runID, path: path)
    }
}

/// ISO 8601 UTC timestamps for manifests.
enum Timestamp {
    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// The checkout's git revision, read from `.git` without running git.
enum GitRevision {
    static func current() -> String? {
        guard let root = ProjectPaths.projectRoot() else { return nil }
        let gitDir = root + "/.git"
        guard let head = try? String(contentsOfFile: gitDir + "/HEAD", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        else { return nil }
        guard head.hasPrefix("ref: ") else { return head }
        let ref = String(head.dropFirst(5))
        if let value = try? String(contentsOfFile: gitDir + "/" + ref, encoding: .utf8) {
            return value.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let packed = (try? String(contentsOfFile: gitDir + "/packed-refs", encoding: .utf8)) ?? ""
        for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
            return String(line.split(separator: " ")[0])
        }
        return nil
    }
}
