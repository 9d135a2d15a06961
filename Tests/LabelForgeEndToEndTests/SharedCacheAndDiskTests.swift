import Foundation
import LabelForgeCore
import LabelForgeTesting
import Subprocess
import SystemPackage
import Testing

/// Two processes on one cache, and a disk that fills up while outputs are written.
@Suite(.serialized) struct SharedCacheAndDiskTests {
    static let stages = """
          - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
          - {id: reply, type: generate, template: reply, n: 2}
        """

    func workspace(rows: Int, baseURL: String) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: rows)
        try ws.writePromptPack()
        try ws.write("prompts/reply.mustache", "Reply to this {{sentiment.label}} review: {{text}}\n")
        try ws.writeStubConfig(name: "shared", seed: 8, baseURL: baseURL, stages: Self.stages)
        return ws
    }

    /// The run directory a `labelforge run` printed (`run: <dir>`).
    func runDirectory(_ result: CLIResult, in ws: TestWorkspace) throws -> String {
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
        let path = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
        return path.hasPrefix("/") ? path : ws.path(path)
    }

    func outputs(_ dir: String) throws -> [Data] {
        try ["outputs/sentiment.jsonl", "outputs/reply.jsonl", "dataset.jsonl"].map {
            try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0))
        }
    }

    @Test("two processes run the same config on one cache at once: both complete, same outputs, every entry verifies")
    func twoProcessesOneCache() async throws {
        let stub = try await StubEngine.start(delay: .milliseconds(2), answer: StubEngine.followConstraintBySeed)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: 600, baseURL: stub.baseURL)
        let cache = ws.path("shared.sqlite")
        func run(_ runs: String) async throws -> CLIResult {
            try await CLI.run(
                ["run", "--config", "config.yaml", "--runs-dir", runs, "--cache-path", cache], workingDirectory: ws.root
            )
        }
        async let first = run("runs-a")
        async let second = run("runs-b")
        let (a, b) = try await (first, second)
        #expect(a.exitCode == 0, "\(a.stderr)")
        #expect(b.exitCode == 0, "\(b.stderr)")
        #expect(try outputs(runDirectory(a, in: ws)) == outputs(runDirectory(b, in: ws)))
        // Both asked for the same 1,800 requests; racing processes may both miss an entry (no
        // single-flight across processes), never more than twice each.
        #expect(stub.chatRequests >= 1800 && stub.chatRequests <= 3600, "\(stub.chatRequests)")

        let verify = try await CLI.run(["cache", "verify", "--cache-path", cache])
        #expect(verify.exitCode == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("entries checked: 1800, failed verification: 0"), "\(verify.stdout)")
        // A third run is all cache hits.
        let third = try await run("runs-c")
        #expect(third.exitCode == 0)
        #expect(third.stdout.contains("engine requests sent: 0"), "\(third.stdout)")
    }

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as on CI machines here).
    static let canMount: Bool = {
        let probe = NSTemporaryDirectory() + "lf-mount-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount(probe)
        return true
    }()

    @Test(
        "the disk fills while outputs are written: a clear error, a consistent manifest, and --resume completes once space is freed",
        .enabled(if: canMount, "needs permission to mount a tmpfs"))
    func diskFull() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.followConstraintBySeed)
        defer { Task { await stub.stop() } }
        let ws = try workspace(rows: 1500, baseURL: stub.baseURL)
        let reference = try await CLI.run(
            ["run", "--config", "config.yaml", "--runs-dir", "ref", "--cache-path", ws.path("ref.sqlite")],
            workingDirectory: ws.root)
        #expect(reference.exitCode == 0, "\(reference.stderr)")

        // A 384 KiB disk for the run directory: the outputs of 1,500 rows need about 1.5 MB.
        let disk = ws.path("disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        #expect(mount("tmpfs", disk, "tmpfs", 0, "size=384k") == 0)
        defer { umount2(disk, Int32(MNT_DETACH)) }
        let full = try await CLI.run(
            ["run", "--config", "config.yaml", "--runs-dir", disk, "--cache-path", ws.path("c.sqlite")],
            workingDirectory: ws.root)
        #expect(full.exitCode != 0, "the run cannot have completed on a full disk")
        #expect(full.stderr.contains("No space left on device"), "\(full.stderr)")
        #expect(full.stderr.contains("labelforge run --resume"), "the error should say how to resume: \(full.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: disk).filter { !$0.hasPrefix(".") }
        let dir = disk + "/" + (try #require(names.first))

        // Space comes back (the tmpfs grows), and the run resumes to the reference's outputs.
        #expect(mount("tmpfs", disk, "tmpfs", UInt(MS_REMOUNT), "size=16m") == 0)
        let resumed = try await CLI.run(["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")])
        #expect(resumed.exitCode == 0, "\(resumed.stderr)")
        #expect(try outputs(dir) == outputs(runDirectory(reference, in: ws)))
        let manifest = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8)
        let pairs = try manifest.split(separator: "\n").map { try JSONValue.parse(String($0)) }
            .filter { $0["type"] == "row" }.map { "\($0["row_id"]!.textForm)/\($0["stage"]!.textForm)" }
        #expect(pairs.count == 1500 * 3 && Set(pairs).count == pairs.count, "\(pairs.count) row lines")
    }
}
