import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Subprocess
import SystemPackage
import Testing

/// Features that earlier tests showed on the stub engine, shown here on the real llama.cpp server
/// (part of `LocalEngineTests`, whose tests run one at a time).
extension LocalEngineTests {
    /// The mvp config's stages against a llama.cpp server already running at `baseURL` (dialect
    /// `llamacpp`, as any OpenAI-compatible server), with `engineExtra` added to its engine.
    func remoteConfig(_ ws: TestWorkspace, baseURL: String, engineExtra: String = "", determinism: String = "strict")
        throws -> String
    {
        let mvp = try String(contentsOfFile: Self.root + "/configs/mvp-llm.yaml", encoding: .utf8)
        let stages = String(mvp[mvp.range(of: "stages:")!.lowerBound...])
        return try ws.write(
            "remote.yaml",
            """
            run: {name: remote, seed: 7, determinism: \(determinism)}
            dataset: {path: \(Self.root)/data/mvp/reviews.jsonl, id_field: id}
            engines:
              - {name: local, kind: openai, dialect: llamacpp, base_url: "\(baseURL)", model: {id: smollm2-135m-instruct-q4_1, revision: pinned}, max_retries: 0\(engineExtra)}
            prompts: {pack: \(Self.root)/prompts/mvp}
            \(stages)
            """)
    }

    /// Runs `body` with the default chat model served by llama.cpp, requiring `apiKey` when given.
    func withChatServer<T: Sendable>(
        _ ws: TestWorkspace, apiKey: String? = nil, _ body: (String) async throws -> T
    ) async throws -> T {
        let model = try #require(ProjectPaths.defaultModel(named: "SmolLM2-135M-Instruct.Q4_1.gguf"))
        var options = LocalEngineOptions(
            modelPath: model, slots: 1, contextPerSlot: 2048, threads: 1, logPath: ws.path("server.log"))
        if let apiKey {
            let file = ws.path("api-key")
            try apiKey.write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o600)
            options.apiKeyFile = file
        }
        return try await LocalEngine.withRunning(options, logger: CapturedLogs().logger) { try await body($0.baseURL) }
    }

    @Test(
        "llama-server with --api-key: the key from api_key_env is sent and the run succeeds; a wrong key fails the rows with the server's 401; the key is in no run file, output or message"
    )
    func apiKeyOnRealServer() async throws {
        let ws = try TestWorkspace()
        let key = "sk-lf-real-4b1d9c"
        let wrong = "sk-lf-wrong-77e0aa"
        try await withChatServer(ws, apiKey: key) { baseURL in
            let config = try remoteConfig(ws, baseURL: baseURL, engineExtra: ", api_key_env: LF_REAL_KEY")
            let good = try await CLI.run(
                [
                    "run", "--config", config, "--limit", "3", "--runs-dir", ws.path("runs"), "--cache-path",
                    ws.path("c.sqlite"),
                ],
                environment: ["LF_REAL_KEY": key])
            #expect(good.exitCode == 0 && good.stdout.contains("rows labeled:   3/3"), "\(good.stdout)\(good.stderr)")
            let refused = try await CLI.run(
                [
                    "run", "--config", config, "--limit", "3", "--no-cache", "--runs-dir", ws.path("refused"),
                    "--cache-path", ws.path("c.sqlite"),
                ], environment: ["LF_REAL_KEY": wrong])
            let manifest = try String(
                contentsOfFile: try RunFiles.onlyRun(in: ws.path("refused")) + "/manifest.jsonl", encoding: .utf8)
            #expect(manifest.contains("answered HTTP 401"), "\(refused.stdout)\(refused.stderr)")
            for secret in [key, wrong] {
                #expect(!(good.stdout + good.stderr + refused.stdout + refused.stderr).contains(secret))
                let grep = try await Subprocess.run(
                    .path(FilePath("/usr/bin/grep")), arguments: ["-rl", secret, ws.path("runs"), ws.path("refused")],
                    output: .string(limit: 1 << 16))
                #expect(grep.standardOutput.isEmpty, "\(secret) found in \(grep.standardOutput)")
            }
        }
    }

    @Test("plan against a running llama.cpp server counts the new prompt tokens exactly as the run then reports them")
    func planCountsWithLlamaTokenizer() async throws {
        let ws = try TestWorkspace()
        try await withChatServer(ws) { baseURL in
            let config = try remoteConfig(ws, baseURL: baseURL)
            let plan = try await CLI.run(
                ["plan", "--config", config, "--limit", "4", "--json", "--cache-path", ws.path("c.sqlite")])
            #expect(plan.exitCode == 0, "\(plan.stderr)")
            let planned = try JSONValue.parse(plan.stdout)
            #expect(planned["tokens_counted_by"] == ["local"], "\(plan.stdout)")
            let sentiment = try #require(planned["stages"]?.arrayValue?.first { $0["id"] == "sentiment" })
            #expect(sentiment["new"] == 4)
            let run = try await CLI.run(
                [
                    "run", "--config", config, "--limit", "4", "--runs-dir", ws.path("runs"), "--cache-path",
                    ws.path("c.sqlite"),
                ])
            #expect(run.exitCode == 0, "\(run.stderr)")
            let lines = try String(contentsOfFile: try runDir(from: run.stdout) + "/manifest.jsonl", encoding: .utf8)
            let summary = try JSONValue.parse(String(lines.split(separator: "\n").last!))
            // Every first attempt: validation retries (a new request each) would add their own tokens.
            #expect(summary["counts"]?["stages"]?["sentiment"]?["failed"] == 0)
            #expect(
                sentiment["new_prompt_tokens_estimated"] == summary["counts"]?["stages"]?["sentiment"]?["tokens_in"],
                "plan \(sentiment.textForm), run \(summary["counts"]?.textForm ?? "")")
        }
    }

    @Test(
        "corrupted cache entries of a real engine's answers: each is a miss, asked again, reported; the outputs are the same"
    )
    func corruptionOnRealEngine() async throws {
        let ws = try TestWorkspace()
        try await withChatServer(ws) { baseURL in
            let config = try remoteConfig(ws, baseURL: baseURL)
            let cache = ws.path("c.sqlite")
            func run(_ runs: String) async throws -> CLIResult {
                try await CLI.run(
                    ["run", "--config", config, "--limit", "4", "--runs-dir", ws.path(runs), "--cache-path", cache])
            }
            let first = try await run("first")
            #expect(first.exitCode == 0, "\(first.stderr)")
            let flip = try await Subprocess.run(
                .path(FilePath("/usr/bin/env")),
                arguments: [
                    "python3", "-c",
                    """
                    import sqlite3, sys
                    db = sqlite3.connect(sys.argv[1])
                    rows = db.execute("SELECT key, response FROM entries ORDER BY key LIMIT 3").fetchall()
                    for key, response in rows:
                        data = bytearray(response if isinstance(response, bytes) else response.encode())
                        data[5] ^= 1
                        db.execute("UPDATE entries SET response = ? WHERE key = ?", (bytes(data), key))
                    db.commit(); print(len(rows))
                    """,
                    cache,
                ], output: .string(limit: 4096), error: .string(limit: 1 << 16))
            #expect(flip.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
            let second = try await run("second")
            #expect(second.exitCode == 0, "\(second.stderr)")
            #expect(second.stdout.contains("cache entries that failed verification (refetched): 3"), "\(second.stdout)")
            #expect(second.stdout.contains("engine requests sent: 3"), "\(second.stdout)")
            let a = try runDir(from: first.stdout)
            let b = try runDir(from: second.stdout)
            for file in ["outputs/sentiment.jsonl", "outputs/attributes.jsonl"] {
                #expect(
                    FileManager.default.contents(atPath: a + "/" + file)
                        == FileManager.default.contents(atPath: b + "/" + file), "\(file)")
            }
        }
    }
}
