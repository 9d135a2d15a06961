import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// API keys reach only the `Authorization` header: never a run file, the cache, a log line or a
/// message, even when the server echoes the key back in an error body.
@Suite(.serialized) struct SecretsTests {
    static let wrongKey = "lf-wrong-key-91c2d7e4a0f3"
    static let rightKey = "lf-right-key-5b8e3f1a2c77"
    static let unusedKey = "sk-unused-environment-key-4d6f8a"

    /// Every file under `paths` (recursively) and every text in `texts` that contains a key.
    func leaks(of keys: [String], in paths: [String], texts: [String: String]) -> [String] {
        var found: [String] = []
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if !isDirectory.boolValue {
                files.append(path)
                continue
            }
            for sub in FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [] {
                files.append(path + "/" + sub)
            }
        }
        for file in files {
            guard let bytes = FileManager.default.contents(atPath: file) else { continue }
            for key in keys where bytes.range(of: Data(key.utf8)) != nil { found.append("\(file) holds \(key)") }
        }
        for (name, text) in texts {
            for key in keys where text.contains(key) { found.append("\(name) holds \(key)") }
        }
        return found
    }

    @Test("a run refused with 401 (the key echoed in the body) and a run that succeeds leave no key anywhere")
    func keysNeverWritten() async throws {
        let stub = try await StubEngine.start(apiKey: Self.rightKey)
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        try ws.writePromptPack()
        let config = try ws.write(
            "config.yaml",
            """
            run: {seed: 3}
            dataset: {path: data/reviews.jsonl, id_field: id}
            engines:
              - {name: e, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: m, revision: r}, api_key_env: LF_TEST_KEY, max_retries: 1}
            prompts: {pack: prompts}
            stages:
              - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}
            """)
        let keys = [Self.wrongKey, Self.rightKey, Self.unusedKey]

        let refused = try await CLI.run(
            [
                "run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite"),
                "--verbose",
            ],
            environment: ["LF_TEST_KEY": Self.wrongKey, "OPENAI_API_KEY": Self.unusedKey])
        #expect(refused.exitCode != 0, "a run whose every request got 401 must not succeed")
        #expect(stub.authorizations.contains("Bearer \(Self.wrongKey)"), "the key was not sent")
        let manifest = try String(
            contentsOfFile: try RunFiles.onlyRun(in: ws.path("runs")) + "/manifest.jsonl",
            encoding: .utf8)
        // The server's message is quoted, with the token it echoed redacted.
        #expect(manifest.contains("Incorrect API key provided: Bearer [redacted]"), "\(manifest.prefix(2000))")

        let accepted = try await CLI.run(
            [
                "run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite"),
                "--verbose",
            ],
            environment: ["LF_TEST_KEY": Self.rightKey, "OPENAI_API_KEY": Self.unusedKey])
        #expect(accepted.exitCode == 0, "\(accepted.stderr)")

        let found = leaks(
            of: keys, in: [ws.path("runs"), ws.path("c.sqlite"), ws.path("c.sqlite-wal"), ws.path("config.yaml")],
            texts: [
                "stdout (refused)": refused.stdout, "stderr (refused)": refused.stderr,
                "stdout (accepted)": accepted.stdout, "stderr (accepted)": accepted.stderr,
            ])
        #expect(found.isEmpty, "\(found)")
    }

    @Test(
        "bearer tokens, sk- keys and the key sent are redacted from quoted server messages",
        arguments: [
            ("Incorrect API key provided: Bearer abc.DEF-123_x", [], "Incorrect API key provided: Bearer [redacted]"),
            ("invalid key sk-proj-AbCdEf123456 for org", [], "invalid key [redacted] for org"),
            ("key my-own-key-0001 rejected", ["my-own-key-0001"], "key [redacted] rejected"),
            ("authorization: bearer tok", [], "authorization: bearer [redacted]"),
            ("no secret here", [], "no secret here"),
        ])
    func redaction(text: String, secrets: [String], expected: String) {
        #expect(Redaction.redact(text, secrets: secrets) == expected)
    }
}
