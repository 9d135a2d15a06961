import Foundation

/// The machine a run ran on, recorded in every manifest (docs/architecture.md).
public struct EnvironmentInfo: Sendable {
    public var os: String
    public var kernel: String
    public var cpu: String
    public var cpuCount: Int
    public var memoryBytes: UInt64
    public var swiftVersion: String

    /// Reads the current machine's description.
    public static func capture() -> EnvironmentInfo {
        let processInfo = ProcessInfo.processInfo
        return EnvironmentInfo(
            os: osName(),
            kernel: (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? processInfo.operatingSystemVersionString,
            cpu: cpuModel(),
            cpuCount: processInfo.activeProcessorCount,
            memoryBytes: processInfo.physicalMemory,
            swiftVersion: compilerVersion
        )
    }

    /// This record as JSON, for the manifest.
    public var json: JSONValue {
        [
            "os": .string(os), "kernel": .string(kernel), "cpu": .string(cpu),
            "cpu_count": .int(Int64(cpuCount)), "memory_bytes": .int(Int64(memoryBytes)),
            "swift_version": .string(swiftVersion),
        ]
    }

    private static func osName() -> String {
        guard let text = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8) else {
            return ProcessInfo.processInfo.operatingSystemVersionString
        }
        for line in text.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return "unknown"
    }

    private static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    private static var compilerVersion: String {
        #if compiler(>=6.4)
        return "6.4+"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #else
        return "6.1"
        #endif
    }
}
