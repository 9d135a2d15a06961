import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Subprocess
import SystemPackage
import Testing

/// The real embedded engine: llama.cpp's server with the SmolLM2 GGUF that `make setup` installs.
@Suite(.serialized, .exclusiveCPU) struct LocalEngineTests {
    static let root = LabelForgeBinary.projectRoot()

    func config(_ ws: TestWorkspace, determinism: String = "standard") throws -> String {
        try ws.write(
            "mvp-llm.yaml",
            try String(contentsOfFile: Self.root + "/configs/mvp-llm.yaml", encoding: .utf8)
                .replacingOccurrences(of: "path: ../data/", with: "path: \(Self.root)/data/")
                .replacingOccurrences(of: "pack: ../prompts/", with: "pack: \(Self.root)/prompts/")
                .replacingOccurrences(of: "determinism: standard", with: "determinism: \(determinism)"))
    }

    /// PIDs of live processes whose command line contains `text`.
    static func processes(mentioning text: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { pid in
            guard Int(pid) != nil, let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), !stat.contains(") Z ")
            else { return false }
            return String(decoding: cmdline.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(text)
        }
    }

    func outputs(_ runDir: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in ["outputs/sentiment.jsonl", "outputs/attributes.jsonl", "dataset.jsonl"] {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: runDir + "/" + name))
        }
        return files
    }

    /// Runs the checkout's `configs/<name>` as is (from the checkout, so its relative paths hold) on
    /// its first `limit` rows, with runs and cache in `ws`.
    func run(config name: String, limit: Int, in ws: TestWorkspace) async throws -> CLIResult {
        try await CLI.run(
            [
                "run", "--config", "configs/\(name)", "--limit", String(limit), "--runs-dir", ws.path("runs"),
                "--cache-path", ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
    }

    @Test(
        "the embedding engine: all-MiniLM-L6-v2 as make setup converts it matches transformers' vectors (cosine ≥ 0.999)"
    )
    func minilmReference() async throws {
        let fixture = try JSONValue.parse(
            Data(contentsOf: URL(fileURLWithPath: Self.root + "/Tests/Fixtures/minilm-embeddings.json")))
        let sentences = fixture["sentences"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let expected = fixture["embeddings"]?.arrayValue?.map { $0.arrayValue?.compactMap(\.doubleValue) ?? [] } ?? []
        #expect(sentences.count == 8 && expected.count == 8)
        let model = try #require(
            ProjectPaths.defaultModel(named: "all-MiniLM-L6-v2.f16.gguf"), "run `make setup` to convert the model")
        let ws = try TestWorkspace()
        let options = LocalEngineOptions(
            modelPath: model, task: .embed, slots: 1, contextPerSlot: 512, threads: 1, logPath: ws.path("engine.log"))
        let vectors = try await LocalEngine.withRunning(options, logger: CapturedLogs().logger) { running in
            try await OpenAIClient.withClient(
                options: EndpointOptions(baseURLs: [running.baseURL], maxRetries: 0), logger: CapturedLogs().logger
            ) { client in
                let reply = try await client.send(
                    EngineRequest(kind: .embeddings, body: EmbeddingsRequest(input: sentences).body(modelID: "minilm")))
                return try EmbeddingsResponse(raw: reply.body).vectors
            }
        }
        #expect(vectors.count == sentences.count)
        for (vector, reference) in zip(vectors, expected) {
            #expect(vector.count == 384)
            let dot = zip(vector, reference).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            let norms =
                vector.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                * reference.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            #expect(dot / norms >= 0.999, "cosine \(dot / norms)")
        }
    }

    @Test("the rerank engine: llama.cpp in rank mode answers /v1/rerank with one score per document (wire format only)")
    func rerankWireFormat() async throws {
        // MiniLM has no classification head, so its rank scores mean nothing: this checks the
        // plumbing (task: rerank starts the server in rank mode; the response parses), not relevance.
        let model = try #require(ProjectPaths.defaultModel(named: "all-MiniLM-L6-v2.f16.gguf"))
        let ws = try TestWorkspace()
        let options = LocalEngineOptions(
            modelPath: model, task: .rerank, slots: 1, contextPerSlot: 512, threads: 1, logPath: ws.path("engine.log"))
        let scores = try await LocalEngine.withRunning(options, logger: CapturedLogs().logger) { running in
            try await OpenAIClient.withClient(
                options: EndpointOptions(baseURLs: [running.baseURL], maxRetries: 0), logger: CapturedLogs().logger
            ) { client in
                let request = RerankRequest(query: "warranty", documents: ["two years", "free shipping", "blue"])
                let reply = try await client.send(EngineRequest(kind: .rerank, body: request.body(modelID: "minilm")))
                return try RerankResponse(raw: reply.body, documents: 3).scores
            }
        }
        #expect(scores.count == 3 && scores.allSatisfy { $0.isFinite })
    }

    func runDir(from stdout: String) throws -> String {
        let line = try #require(stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
        return line.dropFirst(4).trimmingCharacters(in: .whitespaces)
    }

    @Test(
        "configs/mvp.yaml, the demo, on the real embedding engine: every field beats always-the-most-common-label by 10 points or more; a rerun is all cache hits and byte-identical"
    )
    func demoLabelsWell() async throws {
        let ws = try TestWorkspace()
        let first = try await run(config: "mvp.yaml", limit: 240, in: ws)
        #expect(first.exitCode == 0, "\(first.stderr)")
        let a = try runDir(from: first.stdout)
        let summary = try #require(
            try String(contentsOfFile: a + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").last.map {
                try JSONValue.parse(String($0))
            })
        let gold = summary["gold"]?.arrayValue ?? []
        #expect(Set(gold.compactMap { $0["gold_field"]?.stringValue }) == ["sentiment", "topic", "mentions_price"])
        for field in gold {
            let accuracy = try #require(field["accuracy"]?.doubleValue)
            let baseline = try #require(field["majority_baseline"]?.doubleValue)
            #expect(field["n"] == 240)
            #expect(
                accuracy >= baseline + 0.10,
                "\(field["field"]?.stringValue ?? ""): \(accuracy) against \(baseline) for the most common label")
        }
        let second = try await run(config: "mvp.yaml", limit: 240, in: ws)
        #expect(second.exitCode == 0 && second.stdout.contains("engine requests sent: 0"), "\(second.stdout)")
        let b = try runDir(from: second.stdout)
        for name in ["outputs/sentiment.jsonl", "outputs/attributes.jsonl", "dataset.jsonl"] {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: a + "/" + name))
                    == Data(contentsOf: URL(fileURLWithPath: b + "/" + name)), "\(name)")
        }
    }

    @Test("a 20-row run twice: the second is 100% cache hits, sends zero requests, outputs byte-identical")
    func cachedRerun() async throws {
        let ws = try TestWorkspace()
        let config = try config(ws)
        let arguments = [
            "run", "--config", config, "--limit", "20", "--runs-dir", ws.path("runs"), "--cache-path",
            ws.path("cache.sqlite"),
        ]

        let first = try await CLI.run(arguments, workingDirectory: Self.root)
        #expect(first.exitCode == 0, "\(first.stderr)")
        #expect(first.stdout.contains("engine requests sent: 40"))
        #expect(first.stdout.contains("rows labeled:   20/20"))
        let second = try await CLI.run(arguments, workingDirectory: Self.root)
        #expect(second.exitCode == 0, "\(second.stderr)")
        #expect(second.stdout.contains("cache hit rate: 100.0% (40/40)"))
        #expect(second.stdout.contains("engine requests sent: 0"))
        let a = try runDir(from: first.stdout)
        let b = try runDir(from: second.stdout)
        #expect(a != b)
        #expect(try outputs(a) == outputs(b))

        // The manifest: a run line with pins and the engine's /props, 40 row lines, a summary.
        let manifest = try String(contentsOfFile: a + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }
        #expect(manifest.count == 42)
        let run = manifest[0]
        #expect(run["type"] == "run")
        #expect(run["models"]?.arrayValue?.first?["revision"]?.stringValue?.hasPrefix("sha256:") == true)
        #expect(run["engines"]?.arrayValue?.first?["info"]?["total_slots"] == 2)
        #expect(run["prompt_pack"]?["name"] == "mvp")
        #expect(manifest[41]["type"] == "summary")
        #expect(manifest[1...40].allSatisfy { $0["cache"] == "miss" && $0["error"] == nil })

        // Labels are real model answers within the label set, with a constrained confidence.
        let sentiment = try String(contentsOfFile: a + "/outputs/sentiment.jsonl", encoding: .utf8).split(
            separator: "\n"
        )
        .map { try JSONValue.parse(String($0)) }
        #expect(sentiment.count == 20)
        for row in sentiment {
            #expect(["positive", "negative", "neutral"].contains(row["label"]?.stringValue ?? ""))
            let confidence = try #require(row["confidence"]?.doubleValue)
            #expect(confidence > 0 && confidence <= 1)
        }
    }

    @Test(
        "configs/kernel-demo.yaml on the real engines: classify → filter → generate n=2 → dedup → embed; rerun all hits; replay, diff, inspect"
    )
    func kernelDemo() async throws {
        let ws = try TestWorkspace()
        let first = try await run(config: "kernel-demo.yaml", limit: 16, in: ws)
        #expect(first.exitCode == 0, "\(first.stderr)")
        let a = try runDir(from: first.stdout)
        func lines(_ file: String) throws -> [JSONValue] {
            try String(contentsOfFile: a + "/" + file, encoding: .utf8).split(separator: "\n").map {
                try JSONValue.parse(String($0))
            }
        }
        let sentiment = try lines("outputs/sentiment.jsonl")
        let kept = try lines("outputs/needs_reply.jsonl")
        let rejected = try lines("outputs/needs_reply.rejected.jsonl")
        #expect(sentiment.count == 16)
        #expect(kept.count + rejected.count == 16)
        // The filter keeps exactly the rows its rule holds for on the real model's labels and
        // confidences, in input order; on these 16 reviews the default model gives some.
        let passing = sentiment.filter { $0["label"] == "positive" && ($0["confidence"]?.doubleValue ?? 0) >= 0.92 }
        #expect(kept.map { $0["row_id"] } == passing.map { $0["row_id"] })
        #expect(!kept.isEmpty, "no review passed the filter, so the stages after it were not exercised")
        let replies = try lines("outputs/reply.jsonl")
        #expect(replies.count == 2 * kept.count)
        #expect(replies.map { $0["parent_row_id"] } == kept.flatMap { [$0["row_id"]!, $0["row_id"]!] })
        let unique = try lines("outputs/unique_replies.jsonl")
        #expect(unique.count + (try lines("outputs/unique_replies.rejected.jsonl")).count == replies.count)
        #expect(try lines("dataset.jsonl").count == unique.count)
        // The replies that survive get a 384-d unit vector each, in output order, from the second engine.
        let vectors = try lines("outputs/reply_vectors.jsonl")
        #expect(vectors.map { $0["row_id"] } == unique.map { $0["row_id"] })
        #expect(vectors.map { $0["index"]?.intValue } == Array(0..<unique.count))
        #expect(vectors.allSatisfy { $0["dimension"] == 384 && abs(($0["norm"]?.doubleValue ?? 0) - 1) < 1e-3 })
        let npy = try #require(FileManager.default.contents(atPath: a + "/outputs/reply_vectors.npy"))
        #expect(npy.count == 128 + unique.count * 384 * 4)

        let second = try await run(config: "kernel-demo.yaml", limit: 16, in: ws)
        #expect(second.exitCode == 0, "\(second.stderr)")
        #expect(second.stdout.contains("cache hit rate: 100.0%"))
        #expect(second.stdout.contains("engine requests sent: 0"))
        let b = try runDir(from: second.stdout)
        for file in [
            "sentiment.jsonl", "needs_reply.jsonl", "needs_reply.rejected.jsonl", "reply.jsonl", "unique_replies.jsonl",
            "unique_replies.rejected.jsonl", "reply_vectors.jsonl", "reply_vectors.npy",
        ] {
            #expect(
                FileManager.default.contents(atPath: a + "/outputs/\(file)")
                    == FileManager.default.contents(atPath: b + "/outputs/\(file)"), "\(file)")
        }
        let replay = try await CLI.run(
            [
                "replay", "--manifest", a + "/manifest.jsonl", "--runs-dir", ws.path("runs"), "--cache-path",
                ws.path("c.sqlite"),
            ])
        #expect(replay.exitCode == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("engine requests sent: 0"))
        for (stage, count) in [
            ("sentiment", 16), ("needs_reply", kept.count), ("reply", replies.count), ("unique_replies", unique.count),
            ("reply_vectors", unique.count),
        ] {
            #expect(
                replay.stdout.contains("\(stage): reproduced \(count)/\(count) rows byte-identical"), "\(replay.stdout)"
            )
        }
        let diff = try await CLI.run(["diff", a, b])
        #expect(diff.exitCode == 0, "\(diff.stdout) \(diff.stderr)")
        #expect(diff.stdout.contains("stage reply: 0 changed, \(replies.count) unchanged"))
        #expect(diff.stdout.contains("vectors (n=\(unique.count)): \(unique.count) identical"), "\(diff.stdout)")
        let inspect = try await CLI.run([
            "inspect", a, "--row", replies[0]["row_id"]!.stringValue!, "--cache-path", ws.path("c.sqlite"),
        ])
        #expect(inspect.exitCode == 0, "\(inspect.stderr)")
    }

    @Test("configs/mining.yaml on the embedding engine: hard negatives, a training file; rerun all cached; replay")
    func mining() async throws {
        let ws = try TestWorkspace()
        let first = try await run(config: "mining.yaml", limit: 24, in: ws)
        #expect(first.exitCode == 0, "\(first.stderr)")
        let a = try runDir(from: first.stdout)
        let rows = try String(contentsOfFile: a + "/outputs/negatives.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }
        #expect(rows.count == 24)
        let pairs = try String(contentsOfFile: Self.root + "/data/mining/pairs.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        for (row, pair) in zip(rows, pairs) {
            let negatives = row["negatives"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(!negatives.isEmpty && !negatives.contains(pair["passage"]!.stringValue!))
            // The relative margin: no negative within 5% of the positive's score.
            let positive = try #require(row["positive_score"]?.doubleValue)
            #expect(
                row["negative_scores"]?.arrayValue?.allSatisfy {
                    ($0.doubleValue ?? 1) <= positive - abs(positive) * 0.05 + 1e-6
                } == true)
        }
        // The same negatives as sentence-transformers' own mine_hard_negatives on the same data and
        // settings (Tests/Fixtures/mining-st-negatives.json, made by bench/st_mining_fixture.py),
        // with scores within the two engines' float noise.
        let reference = try #require(
            try JSONValue.parse(
                Data(contentsOf: URL(fileURLWithPath: Self.root + "/Tests/Fixtures/mining-st-negatives.json")))["rows"]?
                .arrayValue)
        #expect(reference.count == rows.count)
        for (row, expected) in zip(rows, reference) {
            let ours = row["negatives"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let theirs = expected["negatives"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let stScores = Array(expected["scores"]?.arrayValue?.dropFirst().compactMap(\.doubleValue) ?? [])
            #expect(ours.count == theirs.count, "\(expected["query"]?.textForm ?? "")")
            // Same negatives in the same order, except candidates whose scores tie within the float
            // noise between the engines (llama.cpp f16 vs torch f32: < 1e-3), which may swap.
            var start = 0
            while ours.count == theirs.count, start < theirs.count {
                var end = start + 1
                while end < theirs.count && stScores[end - 1] - stScores[end] < 1e-3 { end += 1 }
                #expect(
                    Set(ours[start..<min(end, ours.count)]) == Set(theirs[start..<end]),
                    "\(expected["query"]?.textForm ?? ""): \(ours) vs \(theirs)")
                start = end
            }
            let scores = row["negative_scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(
                zip(scores.sorted(), stScores.sorted()).allSatisfy { abs($0 - $1) < 2e-3 }, "\(scores) vs \(stScores)")
        }
        // The chat model judged every mined negative: P(yes) in [0, 1], one score per negative.
        let judged = try String(contentsOfFile: a + "/outputs/judged.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }
        for (row, mined) in zip(judged, rows) {
            let scores = row["scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            #expect(scores.count == mined["negatives"]?.arrayValue?.count && scores.allSatisfy { (0...1).contains($0) })
        }
        let triplets = try String(contentsOfFile: a + "/outputs/negatives.triplet.jsonl", encoding: .utf8)
        #expect(
            triplets.split(separator: "\n").count == rows.reduce(0) { $0 + ($1["negatives"]?.arrayValue?.count ?? 0) })

        let second = try await run(config: "mining.yaml", limit: 24, in: ws)
        #expect(second.exitCode == 0, "\(second.stderr)")
        #expect(second.stdout.contains("engine requests sent: 0"), "\(second.stdout)")
        let b = try runDir(from: second.stdout)
        #expect(
            RunFiles.differingOutputs(
                a, b, files: ["negatives.jsonl", "negatives.triplet.jsonl", "negatives.stats.json", "judged.jsonl"]
            ).isEmpty)
        let replay = try await CLI.run(
            [
                "replay", "--manifest", a + "/manifest.jsonl", "--runs-dir", ws.path("runs"), "--cache-path",
                ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
        #expect(replay.exitCode == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("negatives: reproduced 24/24 rows byte-identical"), "\(replay.stdout)")
        #expect(replay.stdout.contains("judged: reproduced 24/24 rows byte-identical"), "\(replay.stdout)")
    }

    @Test(
        "configs/synth.yaml on the real engine: questions n=3 → answers → quality filter → minhash dedup; rerun all hits; replay"
    )
    func synthesis() async throws {
        let ws = try TestWorkspace()
        let first = try await run(config: "synth.yaml", limit: 8, in: ws)
        #expect(first.exitCode == 0, "\(first.stderr)")
        let a = try runDir(from: first.stdout)
        func lines(_ dir: String, _ file: String) throws -> [JSONValue] {
            try String(contentsOfFile: dir + "/outputs/" + file, encoding: .utf8).split(separator: "\n")
                .map { try JSONValue.parse(String($0)) }
        }
        let questions = try lines(a, "questions.jsonl")
        #expect(questions.count == 24)
        let passages = try String(contentsOfFile: Self.root + "/data/synth/passages.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(
            questions.map { $0["lineage"]?["seed_row_id"] }
                == passages.flatMap { Array(repeating: $0["id"], count: 3) })
        #expect(questions.allSatisfy { $0["error"] == nil && !($0["question"]?.stringValue ?? "").isEmpty })
        #expect(try lines(a, "answers.jsonl").count == 24)
        // The filter keeps or rejects every judged pair, rejected ones with their scores.
        let kept = try lines(a, "quality.jsonl")
        let rejected = try lines(a, "quality.rejected.jsonl")
        #expect(kept.count + rejected.count == 24)
        #expect(rejected.allSatisfy { ($0["values"]?["quality_judge.expected_score"]?.doubleValue ?? 0) < 1.5 })
        #expect(kept.allSatisfy { ($0["values"]?["quality_judge.expected_score"]?.doubleValue ?? 0) >= 1.5 })
        let unique = try lines(a, "unique.jsonl")
        #expect(unique.count + (try lines(a, "unique.rejected.jsonl")).count == kept.count)
        let resolved = try String(contentsOfFile: a + "/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains("id: quality_judge") && resolved.contains("type: rubric_score"))

        let second = try await run(config: "synth.yaml", limit: 8, in: ws)
        #expect(second.exitCode == 0, "\(second.stderr)")
        #expect(second.stdout.contains("engine requests sent: 0"), "\(second.stdout)")
        let b = try runDir(from: second.stdout)
        let files = [
            "questions.jsonl", "answers.jsonl", "quality_judge.jsonl", "quality.jsonl", "quality.rejected.jsonl",
            "unique.jsonl", "unique.rejected.jsonl", "unique.pairs.jsonl", "unique.dedup.json",
        ]
        #expect(RunFiles.differingOutputs(a, b, files: files).isEmpty)
        let replay = try await CLI.run(
            [
                "replay", "--manifest", a + "/manifest.jsonl", "--runs-dir", ws.path("runs"), "--cache-path",
                ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
        #expect(replay.exitCode == 0, "\(replay.stderr)")
        for (stage, count) in [("questions", 24), ("answers", 24), ("quality_judge", 24), ("unique", unique.count)] {
            #expect(
                replay.stdout.contains("\(stage): reproduced \(count)/\(count) rows byte-identical"), "\(replay.stdout)"
            )
        }
    }

    /// Runs `command` with bash in `directory` with exactly `environment`; returns its exit code and output.
    static func shell(_ command: String, in directory: String, environment: [String: String]) async throws -> (
        Int32, String
    ) {
        let result = try await Subprocess.run(
            .path(FilePath("/bin/bash")), arguments: ["-c", command + " 2>&1"],
            environment: .custom(
                Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0), $1) })),
            workingDirectory: FilePath(directory), output: .string(limit: 1 << 22), error: .discarded)
        let code: Int32
        switch result.terminationStatus {
        case .exited(let c): code = Int32(c)
        case .signaled(let s): code = 128 + Int32(s)
        }
        return (code, result.standardOutput)
    }

    @Test("make install into a fresh HOME; then, from an empty directory, init and run with no LabelForge variables")
    func installAndRunAnywhere() async throws {
        let ws = try TestWorkspace()
        let home = ws.path("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        // The already built binary (the suite's), and pip's download cache, so nothing is fetched twice.
        let (installed, log) = try await Self.shell(
            "make install INSTALL_BIN='\(LabelForgeBinary.path())'", in: Self.root,
            environment: [
                "HOME": home, "PATH": systemPath,
                "PIP_CACHE_DIR": NSHomeDirectory() + "/.cache/pip",
            ])
        #expect(installed == 0, "\(log)")
        let data = home + "/.local/share/labelforge"
        for file in [
            home + "/.local/bin/labelforge", data + "/scripts/llama_server.py", data + "/REVISION",
            data + "/.venv/models/all-MiniLM-L6-v2.f16.gguf",
            home + "/.local/share/bash-completion/completions/labelforge",
            home + "/.local/share/zsh/site-functions/_labelforge", home + "/.config/fish/completions/labelforge.fish",
        ] {
            #expect(FileManager.default.fileExists(atPath: file), "\(file)")
        }
        #expect(log.contains("is not on PATH"))

        // A user's shell: the installed binary on PATH, nothing else of LabelForge's.
        let user = ["HOME": home, "PATH": home + "/.local/bin:" + systemPath]
        let elsewhere = ws.path("elsewhere")
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let (version, versionOut) = try await Self.shell("labelforge --version", in: elsewhere, environment: user)
        let revision = try String(contentsOfFile: data + "/REVISION", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version == 0 && versionOut.contains(revision), "\(versionOut)")
        let (code, out) = try await Self.shell(
            "labelforge init demo && cd demo && labelforge run --config config.yaml", in: elsewhere, environment: user)
        #expect(code == 0, "\(out)")
        #expect(out.contains("status:         completed"), "\(out)")
        let runs = try FileManager.default.contentsOfDirectory(atPath: elsewhere + "/demo/runs")
        #expect(runs.count == 1)
        let resolved = try String(
            contentsOfFile: elsewhere + "/demo/runs/\(runs[0])/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains(elsewhere + "/demo/data/"))

        // Runtime files gone: the next run installs them again by itself (first use), then runs.
        try FileManager.default.removeItem(atPath: data + "/.venv")
        let (again, againOut) = try await Self.shell(
            "PIP_CACHE_DIR='\(NSHomeDirectory())/.cache/pip' labelforge run --config demo/config.yaml --runs-dir demo/runs",
            in: elsewhere, environment: user)
        #expect(again == 0 && againOut.contains("first use: installing the local engine"), "\(againOut)")
        #expect(FileManager.default.fileExists(atPath: data + "/.venv/models/all-MiniLM-L6-v2.f16.gguf"))
    }

    /// The fenced blocks marked `sh runnable` in the README and docs/, with where each starts.
    static func runnableBlocks() throws -> [(location: String, script: String)] {
        let files =
            ["README.md"]
            + (try FileManager.default.contentsOfDirectory(atPath: root + "/docs")).filter { $0.hasSuffix(".md") }
            .sorted()
            .map { "docs/" + $0 }
        var blocks: [(String, String)] = []
        for file in files {
            let lines = try String(contentsOfFile: root + "/" + file, encoding: .utf8).components(separatedBy: "\n")
            var index = 0
            while index < lines.count {
                if lines[index].trimmingCharacters(in: .whitespaces) == "```sh runnable" {
                    let start = index + 1
                    var end = start
                    while end < lines.count, !lines[end].hasPrefix("```") { end += 1 }
                    blocks.append(("\(file):\(start)", lines[start..<end].joined(separator: "\n")))
                    index = end
                }
                index += 1
            }
        }
        return blocks
    }

    @Test("the docs' runnable examples run: each `sh runnable` block, in an empty directory, labelforge on PATH")
    func docsExamples() async throws {
        let blocks = try Self.runnableBlocks()
        #expect(blocks.count >= 2)
        #expect(blocks.contains { $0.location.hasPrefix("docs/README.md") })
        let binDirectory = (LabelForgeBinary.path() as NSString).deletingLastPathComponent
        for (location, script) in blocks {
            let ws = try TestWorkspace()
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = binDirectory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["LABELFORGE_CACHE_DIR"] = ws.path("cache")
            let (code, output) = try await Self.shell(
                "set -euo pipefail\n" + script, in: ws.root, environment: environment)
            #expect(code == 0, "\(location) failed:\n\(script)\n--- output ---\n\(output)")
        }
    }

    @Test("configs/ablation.yaml on the real engine: 8 variants, one engine, requests sent = distinct keys, summary")
    func ablation() async throws {
        let ws = try TestWorkspace()
        let result = try await CLI.run(
            [
                "ablate", "--config", "configs/ablation.yaml", "--limit", "12", "--ablations-dir", ws.path("ablations"),
                "--cache-path", ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
        #expect(result.exitCode == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("ablation:") })
        let directory = line.dropFirst("ablation:".count).trimmingCharacters(in: .whitespaces)
        let summary = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: directory + "/summary.json")))
        let variants = try #require(summary["variants"]?.arrayValue)
        #expect(variants.count == 8)
        #expect(variants.allSatisfy { $0["gold"]?["sentiment.label"]?["accuracy"]?.doubleValue != nil })
        let (sent, distinctKeys) = try RunFiles.ablationRequests(summary: summary)
        #expect(sent == distinctKeys, "sent \(sent), distinct keys \(distinctKeys)")
        let kappa = try #require(summary["agreement"]?.arrayValue?.first?["cohen_kappa"]?.arrayValue)
        #expect(kappa.count == 8)
        // One engine for all eight variants: one engine log, no per-run engine started.
        #expect(FileManager.default.fileExists(atPath: directory + "/engine.log"))
        let markdown = try String(contentsOfFile: directory + "/summary.md", encoding: .utf8)
        #expect(markdown.contains("sentiment.label accuracy") && markdown.contains("Cohen's kappa between variants"))
    }

    @Test("strict mode: two runs with --no-cache on the real engine give byte-identical outputs")
    func strictIsRepeatable() async throws {
        let ws = try TestWorkspace()
        let config = try config(ws, determinism: "strict")
        let arguments = [
            "run", "--config", config, "--limit", "8", "--no-cache", "--runs-dir", ws.path("runs"), "--cache-path",
            ws.path("cache.sqlite"),
        ]
        let first = try await CLI.run(arguments, workingDirectory: Self.root)
        let second = try await CLI.run(arguments, workingDirectory: Self.root)
        #expect(first.exitCode == 0 && second.exitCode == 0, "\(first.stderr) \(second.stderr)")
        #expect(second.stdout.contains("engine requests sent: 16"))
        let a = try runDir(from: first.stdout)
        let b = try runDir(from: second.stdout)
        #expect(try outputs(a) == outputs(b))
        // The manifest records what the engine ran with, read back from /props.
        let run = try JSONValue.parse(
            String(try String(contentsOfFile: a + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")[0]))
        #expect(run["engines"]?.arrayValue?.first?["info"]?["total_slots"] == 1)
        #expect(run["determinism"] == "strict")
    }

    @Test("replay --recompute on a standard run reports a measured identical rate per stage")
    func recomputeMeasures() async throws {
        let ws = try TestWorkspace()
        let config = try config(ws)
        let first = try await CLI.run(
            [
                "run", "--config", config, "--limit", "8", "--runs-dir", ws.path("runs"), "--cache-path",
                ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
        #expect(first.exitCode == 0, "\(first.stderr)")
        let replay = try await CLI.run(
            [
                "replay", "--manifest", try runDir(from: first.stdout) + "/manifest.jsonl", "--recompute", "--runs-dir",
                ws.path("runs"),
                "--cache-path", ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
        // Identical or not is what this measures (docs/determinism.md); both are valid outcomes.
        #expect(replay.exitCode == 0 || replay.exitCode == 1, "\(replay.stderr)")
        #expect(replay.stdout.contains("engine requests sent: 16"))
        for stage in ["sentiment", "attributes"] {
            #expect(replay.stdout.contains("\(stage): reproduced "), "\(replay.stdout)")
        }
    }

    @Test("on the real engine: SIGKILL then --resume, replay from cache, diff and inspect agree")
    func resumeReplayDiffInspect() async throws {
        let ws = try TestWorkspace()
        let config = try config(ws, determinism: "strict")
        let reference = try await CLI.run(
            [
                "run", "--config", config, "--limit", "16", "--runs-dir", ws.path("ref"), "--cache-path",
                ws.path("ref.sqlite"),
            ],
            workingDirectory: Self.root)
        #expect(reference.exitCode == 0, "\(reference.stderr)")
        let referenceDir = try runDir(from: reference.stdout)

        // Kill a fresh run (empty cache) part-way, then resume it.
        let killed = try await Subprocess.run(
            .path(FilePath(LabelForgeBinary.path())),
            arguments: [
                "run", "--config", config, "--limit", "16", "--runs-dir", ws.path("runs"), "--cache-path",
                ws.path("c.sqlite"),
            ],
            workingDirectory: FilePath(Self.root), input: .none, output: .discarded, error: .discarded
        ) { execution in
            // Part-way: once the engine has finished 8 of the run's 32 requests (its log says so per
            // request), whatever the machine's load.
            try await Waiting.until(timeout: .seconds(300)) {
                guard let dir = try? RunFiles.onlyRun(in: ws.path("runs")),
                    let log = try? String(contentsOfFile: dir + "/engine.log", encoding: .utf8)
                else { return false }
                return log.components(separatedBy: "stop processing").count - 1 >= 8
            }
            try? execution.send(signal: .kill)
        }
        #expect(killed.terminationStatus == .signaled(9), "the run finished before it could be killed")
        // The engine dies with its parent: no llama.cpp server of this run may outlive the kill.
        var survivors = Self.processes(mentioning: ws.path("runs"))
        for _ in 0..<20 where !survivors.isEmpty {
            try await Task.sleep(for: .milliseconds(250))
            survivors = Self.processes(mentioning: ws.path("runs"))
        }
        #expect(survivors.isEmpty, "engine processes outlived a SIGKILLed labelforge: \(survivors)")
        let dir = try RunFiles.onlyRun(in: ws.path("runs"))
        let resumed = try await CLI.run(
            ["run", "--resume", dir, "--cache-path", ws.path("c.sqlite")], workingDirectory: Self.root)
        #expect(resumed.exitCode == 0, "\(resumed.stderr)")
        #expect(try outputs(dir) == outputs(referenceDir))

        let diff = try await CLI.run(["diff", referenceDir, dir])
        #expect(diff.exitCode == 0, "\(diff.stdout)")

        let replay = try await CLI.run(
            [
                "replay", "--manifest", dir + "/manifest.jsonl", "--runs-dir", ws.path("replays"), "--cache-path",
                ws.path("c.sqlite"),
            ],
            workingDirectory: Self.root)
        #expect(replay.exitCode == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("engine requests sent: 0"))
        #expect(replay.stdout.contains("sentiment: reproduced 16/16 rows byte-identical"))

        let inspect = try await CLI.run(["inspect", dir, "--row", "r0002", "--cache-path", ws.path("c.sqlite")])
        #expect(inspect.exitCode == 0)
        #expect(inspect.stdout.contains("Classify the sentiment of a product review."))
        #expect(inspect.stdout.contains("seed "))
    }

    @Test(
        "SIGKILL while the engine starts (0, 50 ms, 300 ms, 2 s after it is spawned): no engine outlives labelforge",
        arguments: [0, 50, 300, 2000])
    func killDuringEngineStartup(afterSpawnMilliseconds delay: Int) async throws {
        let ws = try TestWorkspace()
        let config = try config(ws)
        let runs = ws.path("runs")
        let killed = try await Subprocess.run(
            .path(FilePath(LabelForgeBinary.path())),
            arguments: [
                "run", "--config", config, "--limit", "4", "--runs-dir", runs, "--cache-path", ws.path("c.sqlite"),
            ],
            workingDirectory: FilePath(Self.root), input: .none, output: .discarded, error: .discarded
        ) { execution in
            // The engine's command line names its log file in the run directory; labelforge's does not.
            let spawned = try await Waiting.until(timeout: .seconds(60)) {
                !Self.processes(mentioning: "--log-file \(runs)").isEmpty
            }
            #expect(spawned, "the engine was never seen starting")
            try await Task.sleep(for: .milliseconds(delay))
            try? execution.send(signal: .kill)
        }
        #expect(killed.terminationStatus == .signaled(9), "the run finished before it could be killed")
        var survivors = Self.processes(mentioning: runs)
        for _ in 0..<40 where !survivors.isEmpty {
            try await Task.sleep(for: .milliseconds(250))
            survivors = Self.processes(mentioning: runs)
        }
        #expect(survivors.isEmpty, "engine processes outlived a SIGKILLed labelforge: \(survivors)")
        for pid in survivors { kill(pid_t(pid)!, SIGKILL) }
    }

    @Test("rubric scores on the real engine: integer scores on the scale, with a logprob-weighted expectation")
    func rubricScores() async throws {
        let ws = try TestWorkspace()
        let result = try await run(config: "rubric.yaml", limit: 3, in: ws)
        #expect(result.exitCode == 0, "\(result.stderr)")
        let rows = try String(
            contentsOfFile: try runDir(from: result.stdout) + "/outputs/usefulness.jsonl", encoding: .utf8
        )
        .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows.count == 3)
        for row in rows {
            for criterion in ["specificity", "helpfulness"] {
                let score = try #require(row["scores"]?[criterion]?.intValue)
                #expect((1...5).contains(score))
                let expected = try #require(row["expected_scores"]?[criterion]?.doubleValue)
                #expect(expected >= 1 && expected <= 5)
            }
            #expect(row["rationale"]?.stringValue != nil)
        }
    }

    @Test("pairwise judging on the real engine: both orders asked with their own seeds, disagreement recorded")
    func pairwiseBothOrders() async throws {
        let ws = try TestWorkspace()
        let result = try await run(config: "pairwise.yaml", limit: 3, in: ws)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("engine requests sent: 6"))
        let run = try runDir(from: result.stdout)
        let rows = try String(contentsOfFile: run + "/outputs/preference.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows.count == 3)
        for row in rows {
            var disagreed = false
            for criterion in ["specificity", "helpfulness"] {
                let aFirst = try #require(row["verdicts"]?["a_first"]?[criterion]?.stringValue)
                let bFirst = try #require(row["verdicts"]?["b_first"]?[criterion]?.stringValue)
                #expect(["a", "b", "tie"].contains(aFirst) && ["a", "b", "tie"].contains(bFirst))
                #expect(row["winner"]?[criterion]?.stringValue == (aFirst == bFirst ? aFirst : "inconsistent"))
                disagreed = disagreed || aFirst != bFirst
            }
            #expect(row["inconsistent"]?.boolValue == disagreed)
        }
        let lines = try String(contentsOfFile: run + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0)) }.filter { $0["type"] == "row" }
        #expect(lines.allSatisfy { Set($0["request_keys"]?.arrayValue ?? []).count == 2 })
    }
}
