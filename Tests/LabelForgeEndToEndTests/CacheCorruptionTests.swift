import Foundation
import LabelForgeCore
import LabelForgeTesting
import Subprocess
import SystemPackage
import Testing

/// A flipped byte in each of 100 cache entries: every one detected, refetched and reported, and the
/// outputs the same as before.
@Suite struct CacheCorruptionTests {
    @Test("100 corrupted cache entries: cache verify finds all 100; the rerun refetches and reports them")
    func flippedBytes() async throws {
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 100)
        try ws.writePromptPack()
        try ws.writeStubConfig(
            name: "corrupt", seed: 4, baseURL: stub.baseURL,
            stages: "  - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}")
        let cache = ws.path("cache.sqlite")
        func run() async throws -> (stdout: String, dir: String) {
            let result = try await CLI.run(
                ["run", "--config", "config.yaml", "--runs-dir", "runs", "--cache-path", cache],
                workingDirectory: ws.root)
            #expect(result.exitCode == 0, "\(result.stderr)")
            let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
            return (result.stdout, ws.path(line.dropFirst(4).trimmingCharacters(in: .whitespaces)))
        }
        let first = try await run()
        #expect(stub.chatRequests == 100)

        // One byte of each stored response changes (its sixth character, +1), outside LabelForge.
        let flip = try await Subprocess.run(
            .path(FilePath("/usr/bin/env")),
            arguments: [
                "python3", "-c",
                """
                import sqlite3, sys
                db = sqlite3.connect(sys.argv[1])
                n = 0
                for key, response in db.execute("SELECT key, response FROM entries").fetchall():
                    data = bytearray(response if isinstance(response, bytes) else response.encode())
                    data[5] ^= 1
                    db.execute("UPDATE entries SET response = ? WHERE key = ?", (bytes(data), key)); n += 1
                db.commit(); print(n)
                """,
                cache,
            ], output: .string(limit: 4096), error: .string(limit: 1 << 16))
        #expect(flip.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "100", "\(flip.standardError)")

        let verify = try await CLI.run(["cache", "verify", "--cache-path", cache])
        #expect(verify.exitCode == 1 && verify.stdout.contains("entries checked: 100, failed verification: 100"))

        // The rerun: all 100 detected, asked of the engine again, reported; the same outputs.
        let second = try await run()
        #expect(stub.chatRequests == 200)
        #expect(second.stdout.contains("cache entries that failed verification (refetched): 100"), "\(second.stdout)")
        #expect(
            try String(contentsOfFile: second.dir + "/report.md", encoding: .utf8).contains(
                "cache entries that failed verification (refetched): 100"))
        #expect(
            FileManager.default.contents(atPath: first.dir + "/outputs/sentiment.jsonl")
                == FileManager.default.contents(atPath: second.dir + "/outputs/sentiment.jsonl"))
        let healed = try await CLI.run(["cache", "verify", "--cache-path", cache])
        #expect(healed.exitCode == 0 && healed.stdout.contains("failed verification: 0"), "\(healed.stdout)")
    }
}
