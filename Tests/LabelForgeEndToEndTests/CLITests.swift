import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeTesting
import Subprocess
import SystemPackage
import Testing

/// The CLI as a user meets it: the built binary, its output and its exit codes.
@Suite struct CLITests {
    @Test("--help lists the commands and run --help explains every option")
    func help() async throws {
        let top = try await CLI.run(["--help"])
        #expect(top.exitCode == 0)
        for word in ["run", "cache", "Exit codes"] { #expect(top.stdout.contains(word)) }
        let run = try await CLI.run(["run", "--help"])
        #expect(run.exitCode == 0)
        for option in ["--config", "--runs-dir", "--limit", "--no-cache", "--cache-path", "--verbose"] {
            #expect(run.stdout.contains(option), "run --help does not mention \(option)")
        }
    }

    @Test("--version prints the release and the checkout's git revision")
    func version() async throws {
        let result = try await CLI.run(["--version"], workingDirectory: LabelForgeBinary.projectRoot())
        #expect(result.exitCode == 0)
        let line = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("labelforge \(LabelForgeVersion.current) (git "), "\(line)")
        // A checkout (CI clones one) names its revision: 40 hex digits.
        #expect(line.range(of: "\\(git [0-9a-f]{40}\\)$", options: .regularExpression) != nil, "\(line)")
    }

    @Test("CITATION.cff is valid CFF 1.2 (cffconvert --validate, installed by make test)")
    func citation() async throws {
        let root = LabelForgeBinary.projectRoot()
        let result = try await Subprocess.run(
            .path(FilePath(root + "/.venv/bin/cffconvert")), arguments: ["--validate", "-i", root + "/CITATION.cff"],
            output: .string(limit: 1 << 16), error: .string(limit: 1 << 16))
        #expect(result.terminationStatus.isSuccess, "\(result.standardOutput) \(result.standardError)")
        #expect(result.standardOutput.contains("valid according to schema version 1.2.0"))
        #expect(FileManager.default.fileExists(atPath: root + "/LICENSE"))
    }

    @Test("mine selects hard negatives from .npy vectors: positives excluded, the margin kept, best first")
    func mineFromVectors() async throws {
        let ws = try TestWorkspace()
        // Corpus rows on a circle; the query points at row 0 (its positive) and rows 1, 2 are close.
        let angles: [Float] = [0, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5]
        let corpus = try NpyWriter(path: ws.path("c.npy"))
        for a in angles { try corpus.append([cos(a), sin(a)]) }
        try corpus.finish()
        let queries = try NpyWriter(path: ws.path("q.npy"))
        try queries.append([1, 0])
        try queries.finish()
        try ws.write("positives.txt", "0\n")
        let result = try await CLI.run([
            "mine", "--queries", ws.path("q.npy"), "--corpus", ws.path("c.npy"), "--positives",
            ws.path("positives.txt"),
            "--absolute-margin", "0.01", "--num-negatives", "3", "--range-max", "10", "--output", ws.path("out.jsonl"),
        ])
        #expect(result.exitCode == 0, "\(result.stderr)")
        let line = try JSONValue.parse(try String(contentsOfFile: ws.path("out.jsonl"), encoding: .utf8))
        // cos(0.1) = 0.995 is within 0.01 of the positive's 1.0: dropped; then 0.2, 0.3, 0.5.
        #expect(line["negatives"] == [2, 3, 4])
        let bad = try ws.write("bad.txt", "99\n")
        let refused = try await CLI.run([
            "mine", "--queries", ws.path("q.npy"), "--corpus", ws.path("c.npy"), "--positives", bad, "--output",
            ws.path("x"),
        ])
        #expect(
            refused.exitCode == 64 && refused.stderr.contains("bad.txt:1: not a list of corpus rows"),
            "\(refused.stderr)")
    }

    @Test("init writes a starter project that plans at once from its own directory, and never overwrites")
    func initProject() async throws {
        let ws = try TestWorkspace()
        let created = try await CLI.run(["init", ws.path("demo")])
        #expect(created.exitCode == 0, "\(created.stderr)")
        for file in [
            "config.yaml", "prompts/pack.yaml", "prompts/sentiment.mustache", "data/reviews.jsonl", "README.md",
        ] {
            #expect(FileManager.default.fileExists(atPath: ws.path("demo/" + file)), "\(file)")
        }
        let rows = try String(contentsOfFile: ws.path("demo/data/reviews.jsonl"), encoding: .utf8).split(
            separator: "\n")
        #expect(rows.count == 20 && rows.allSatisfy { (try? JSONValue.parse(String($0)))?["sentiment"] != nil })
        let again = try await CLI.run(["init", ws.path("demo")])
        #expect(again.exitCode == 64 && again.stderr.contains("already exist"), "\(again.stderr)")
        // The config, prompts and data check out (plan reads them all; no engine starts).
        let plan = try await CLI.run(
            ["plan", "--config", "config.yaml", "--cache-path", ws.path("cache.sqlite")],
            workingDirectory: ws.path("demo"))
        #expect(plan.exitCode == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("sentiment (classify): 20 rows, 0 cached, 20 new"), "\(plan.stdout)")
    }

    @Test("a config typo is one error line naming file, line and suggestion, exit 64")
    func typo() async throws {
        let ws = try TestWorkspace()
        let config = try ws.write(
            "c.yaml", "dataset: {path: d.jsonl}\nengines: [{model: {id: m}}]\nprompts: {pack: p}\nstagse: []\n")
        let result = try await CLI.run(["run", "--config", config])
        #expect(result.exitCode == 64)
        #expect(result.stderr.contains("\(config):4: unknown key 'stagse'. Did you mean 'stages'?"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test("an unreachable engine: one clear error line, exit 69, failure in the manifest")
    func unreachable() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        try ws.writePromptPack()
        let config = try ws.write(
            "c.yaml",
            """
            dataset: {path: \(ws.path("data/reviews.jsonl"))}
            engines: [{kind: openai, base_url: "http://127.0.0.1:9", model: {id: m, revision: r}}]
            prompts: {pack: \(ws.path("prompts"))}
            stages: [{id: s, type: classify, template: classify, labels: [a, b]}]
            """)
        let result = try await CLI.run(
            ["run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("cache.sqlite")])
        #expect(result.exitCode == 69)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("Cannot reach the engine at http://127.0.0.1:9"))
        let runs = try FileManager.default.contentsOfDirectory(atPath: ws.path("runs"))
        #expect(try ws.read("runs/\(try #require(runs.first))/manifest.jsonl").contains(#""status":"failed""#))
    }

    @Test("cache stats reports an empty cache")
    func cacheStats() async throws {
        let ws = try TestWorkspace()
        let result = try await CLI.run(["cache", "stats", "--cache-path", ws.path("c/cache.sqlite"), "--json"])
        #expect(result.exitCode == 0)
        let stats = try JSONValue.parse(result.stdout)
        #expect(stats["entries"] == 0)
    }
}
