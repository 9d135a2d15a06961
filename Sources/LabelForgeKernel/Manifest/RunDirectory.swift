import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// A run's directory, `runs/<run_id>/` (docs/architecture.md).
public struct RunDirectory: Sendable {
    public let runID: String
    public let path: String

    package init(runID: String, path: String) {
        self.runID = runID
        self.path = path
    }

    public var manifestPath: String { path + "/manifest.jsonl" }
    public var outputsPath: String { path + "/outputs" }
    public var resolvedConfigPath: String { path + "/config.resolved.yaml" }
    public var reportPath: String { path + "/report.md" }
    public var reportHTMLPath: String { path + "/report.html" }
    public var engineLogPath: String { path + "/engine.log" }
    public func outputPath(stage: String) -> String { outputsPath + "/\(stage).jsonl" }

    /// Creates `<runsDir>/<yyyymmdd-hhmmss>-<plan hash prefix>`, adding `-2`, `-3`, … if it exists,
    /// holding `config.resolved.yaml`, an empty manifest and `outputs/`.
    ///
    /// The directory is assembled under a hidden name and renamed into place, so a run killed at
    /// any moment leaves either no directory or one that `--resume` can continue.
    public static func create(runsDir: String, planHash: String, resolvedConfig: String, now: Date = Date()) throws
        -> RunDirectory
    {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let base = "\(formatter.string(from: now))-\(ContentHash.unprefixed(planHash).prefix(8))"
        let fileManager = FileManager.default
        do {
            try fileManager.createDirectory(atPath: runsDir, withIntermediateDirectories: true)
            removeAbandonedStaging(in: runsDir, now: Date())
            let staging = runsDir + "/.\(base)-\(UUID().uuidString).partial"
            try fileManager.createDirectory(atPath: staging + "/outputs", withIntermediateDirectories: true)
            try resolvedConfig.write(toFile: staging + "/config.resolved.yaml", atomically: true, encoding: .utf8)
            _ = fileManager.createFile(atPath: staging + "/manifest.jsonl", contents: nil)
            var runID = base
            var suffix = 1
            while true {
                // rename(2) fails if the target exists, so two runs never share a directory.
                if rename(staging, runsDir + "/" + runID) == 0 { break }
                guard errno == EEXIST || errno == ENOTEMPTY else {
                    throw LabelForgeError(
                        .io, "Cannot create the run directory \(runsDir)/\(runID): \(String(cString: strerror(errno)))."
                    )
                }
                suffix += 1
                runID = "\(base)-\(suffix)"
            }
            return RunDirectory(runID: runID, path: runsDir + "/" + runID)
        } catch let error as LabelForgeError {
            throw error
        } catch {
            throw LabelForgeError(.io, "Cannot create a run directory under \(runsDir): \(error.localizedDescription)")
        }
    }
}

extension RunDirectory {
    /// Staging takes milliseconds; one older than this was left by a run killed while staging.
    package static let abandonedStagingAge: TimeInterval = 600

    /// Removes hidden `.…partial` directories that runs killed mid-staging left behind.
    package static func removeAbandonedStaging(in runsDir: String, now: Date) {
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: runsDir)) ?? []
        where name.hasPrefix(".") && name.hasSuffix(".partial") {
            let path = runsDir + "/" + name
            guard let modified = (try? fileManager.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                now.timeIntervalSince(modified) > abandonedStagingAge
            else { continue }
            try? fileManager.removeItem(atPath: path)
        }
    }
}

/// ISO 8601 UTC timestamps for manifests.
package enum Timestamp {
    package static func now() -> String { string(from: Date()) }

    package static func string(from date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// The checkout's git revision, read from `.git` without running git; for an installed
/// `labelforge`, the revision `make install` recorded in the data directory's `REVISION`.
public enum GitRevision {
    public static func current() -> String? {
        guard let root = ProjectPaths.projectRoot() else { return nil }
        if let recorded = try? String(contentsOfFile: root + "/REVISION", encoding: .utf8) {
            return recorded.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let gitDir = root + "/.git"
        guard
            let head = try? String(contentsOfFile: gitDir + "/HEAD", encoding: .utf8)
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
