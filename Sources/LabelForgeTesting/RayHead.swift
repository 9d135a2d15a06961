import AsyncHTTPClient
import Foundation
import LabelForgeCore

#if canImport(Glibc)
    import Glibc
#endif

/// A real Ray head for tests (`ray start --head --block` from the checkout's `.venv-ray`, which
/// `scripts/test_deps.sh` installs), its dashboard on a loopback port outside Ray's default
/// worker range (10002–19999), stopped by its own PIDs: never `ray stop`, which stops every Ray
/// process of the user.
public final class RayHead: @unchecked Sendable {
    public let dashboard: String
    /// The head runs with token authentication (`RAY_AUTH_MODE=token`), as a shared cluster should:
    /// every dashboard call needs this token.
    public let token: String
    /// What a client of this head needs in its environment (`RAY_AUTH_TOKEN`).
    public var clientEnvironment: [String: String] { ["RAY_AUTH_TOKEN": token] }
    public let directory: String
    private var process: Process?

    /// The venv's Python (the job entrypoint's interpreter: an absolute path).
    public static var python: String? {
        let path = LabelForgeBinary.projectRoot() + "/.venv-ray/bin/python"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    private init(dashboard: String, directory: String, process: Process, token: String) {
        self.dashboard = dashboard
        self.token = token
        self.directory = directory
        self.process = process
    }

    /// Starts a head with 2 CPUs and waits until its Jobs API answers. `environment` is added to
    /// the head's, which its jobs inherit (as a cluster's nodes carry their own credentials).
    public static func start(environment extra: [String: String] = [:]) async throws -> RayHead {
        guard let python else {
            throw TestServerError("no .venv-ray: run scripts/test_deps.sh (it installs ray[default,data])")
        }
        let ray = (python as NSString).deletingLastPathComponent + "/ray"
        // Short: Ray's socket paths live under it and must fit in 107 bytes.
        let directory = "/tmp/lf-ray-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = try SeaweedServer.freePorts(10)
        // Workers take a contiguous range: between Ray's default one (10002–19999) and the kernel's
        // ephemeral ports (from 32768), where the ports above come from. Ray refuses to start when
        // a port given falls inside the worker range (a fresh-clone run hit that once).
        let workers = 20000 + Int.random(in: 0..<120) * 100
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ray)
        process.arguments = [
            "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
            "--include-dashboard=true", "--num-cpus=2", "--temp-dir=\(directory)", "--disable-usage-stats",
            "--port=\(ports[0])", "--dashboard-port=\(ports[1])", "--ray-client-server-port=\(ports[2])",
            "--object-manager-port=\(ports[3])", "--node-manager-port=\(ports[4])",
            "--dashboard-agent-listen-port=\(ports[5])", "--dashboard-agent-grpc-port=\(ports[6])",
            "--runtime-env-agent-port=\(ports[7])", "--metrics-export-port=\(ports[8])",
            "--min-worker-port=\(workers)", "--max-worker-port=\(workers + 99)",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["RAY_USAGE_STATS_ENABLED"] = "0"
        // Its own token, whatever ~/.ray/auth_token holds (an earlier `ray.init()` writes one).
        let token = (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max)) }.joined()
        environment["RAY_AUTH_MODE"] = "token"
        environment["RAY_AUTH_TOKEN"] = token
        environment.removeValue(forKey: "RAY_AUTH_TOKEN_PATH")
        environment.merge(extra) { _, new in new }
        process.environment = environment
        FileManager.default.createFile(atPath: directory + "/head.log", contents: nil)
        let log = FileHandle(forWritingAtPath: directory + "/head.log")!
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let head = RayHead(
            dashboard: "http://127.0.0.1:\(ports[1])", directory: directory, process: process, token: token)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if process.isRunning == false { break }
            if (try? await head.jobs()) != nil { return head }
            try await Task.sleep(for: .milliseconds(250))
        }
        let lines = (try? String(contentsOfFile: directory + "/head.log", encoding: .utf8)) ?? ""
        head.stop()
        throw TestServerError(
            "the Ray head \(process.isRunning ? "did not answer on \(head.dashboard) within 60 s" : "exited"); its log "
                + "ends:\n" + String(lines.suffix(1500)))
    }

    /// The cluster's jobs as the Jobs API lists them (`GET /api/jobs/`: a list, or an object keyed
    /// by ID in some versions).
    public func jobs() async throws -> [JSONValue] {
        var request = HTTPClientRequest(url: dashboard + "/api/jobs/")
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard response.status == .ok else { throw TestServerError("GET /api/jobs/: HTTP \(response.status.code)") }
        let body = try await response.body.collect(upTo: 16 << 20)
        let value = try JSONValue.parse(Data(body.readableBytesView))
        return value.arrayValue ?? value.objectValue.map { Array($0.values) } ?? []
    }

    /// A job's driver log (`GET /api/jobs/<id>/logs`).
    public func logs(of submission: String) async throws -> String {
        var request = HTTPClientRequest(url: dashboard + "/api/jobs/\(submission)/logs")
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard response.status == .ok else {
            throw TestServerError("GET /api/jobs/\(submission)/logs: HTTP \(response.status.code)")
        }
        let body = try await response.body.collect(upTo: 16 << 20)
        return try JSONValue.parse(Data(body.readableBytesView))["logs"]?.stringValue ?? ""
    }

    /// Every process descending from `root`, read from /proc.
    static func descendants(of root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(pid) }
        }
        var found: [Int32] = []
        var stack = [root]
        while let pid = stack.popLast() {
            for child in children[pid] ?? [] {
                found.append(child)
                stack.append(child)
            }
        }
        return found
    }

    /// Stops the head and everything it started: SIGTERM, then SIGKILL after 3 s.
    public func stop() {
        guard let process else { return }
        self.process = nil
        let pid = process.processIdentifier
        var tree = Self.descendants(of: pid)
        if process.isRunning { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        tree += Self.descendants(of: pid)
        if process.isRunning { kill(pid, SIGKILL) }
        for child in Set(tree) { kill(child, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Those of `pids` still running (a zombie waiting to be reaped is not), after up to 5 s.
    public static func leftovers(of pids: [Int32]) -> [Int32] {
        func running(_ pid: Int32) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            return !stat[stat.index(after: close)...].hasPrefix(" Z")
        }
        let deadline = Date().addingTimeInterval(5)
        var alive = pids.filter(running)
        while !alive.isEmpty && Date() < deadline {
            usleep(100_000)
            alive = alive.filter(running)
        }
        return alive
    }

    /// The head's process and its descendants now.
    public var processTree: [Int32] {
        guard let process else { return [] }
        return [process.processIdentifier] + Self.descendants(of: process.processIdentifier)
    }

    deinit { stop() }
}
