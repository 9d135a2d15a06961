import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The Ray Data LLM backend against a real Ray head (from PyPI, on loopback ports) whose jobs send
/// requests to the real local llama.cpp engine with `HttpRequestProcessorConfig`. In the local
/// engine suite, so it never runs beside another engine test.
extension LocalEngineTests {
    @discardableResult
    func rayConfig(_ ws: TestWorkspace, name: String, engine: String, cache: String = "{path: cache.sqlite}") throws
        -> String
    {
        try ws.write(
            name,
            """
            run: {seed: 11}
            dataset: {path: data/reviews.jsonl, id_field: id}
            engines:
            \(engine)
            prompts: {pack: prompts}
            cache: \(cache)
            stages:
              - {id: sentiment, type: classify, labels: [positive, negative, neutral], max_validation_retries: 1}
              - {id: note, type: generate, template: note, sampling: {max_tokens: 12}}
            """)
    }

    @Test(
        "a Ray Data LLM job answers a run's requests (HTTP processor to llama.cpp); the answers are cached under the HTTP keys: the same run over HTTP is all hits and byte-identical; with an S3 cache the job's files travel through the bucket; Ctrl-C stops the running job"
    )
    func rayBackend() async throws {
        let python = try #require(RayHead.python, "run scripts/test_deps.sh: it installs Ray into .venv-ray")
        let model = try #require(
            ProjectPaths.defaultModel(named: "SmolLM2-135M-Instruct.Q4_1.gguf"), "run `make setup`")
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 6)
        try ws.writePromptPack()
        try ws.write("prompts/note.mustache", "Summarize in five words: {{text}}\n")
        let server = try await SeaweedServer.start()
        defer { server.remove() }
        // The cluster has its own credentials for the bucket (as nodes with an instance role do).
        let head = try await RayHead.start(environment: SeaweedServer.credentials)
        defer { head.stop() }
        // The head uses token authentication: labelforge finds the token where Ray's clients do.
        let clients = SeaweedServer.credentials.merging(head.clientEnvironment) { _, token in token }
        let options = LocalEngineOptions(
            modelPath: model, task: .chat, slots: 2, contextPerSlot: 1024, threads: 1, logPath: ws.path("engine.log"))
        try await LocalEngine.withRunning(options, logger: CapturedLogs().logger) { running in
            let model = "{id: smollm2, revision: test-pin}"
            try rayConfig(
                ws, name: "ray.yaml",
                engine: """
                      - {name: e, kind: ray, dialect: llamacpp, address: "\(head.dashboard)", base_url: "\(running.baseURL)", python: \(python), output_dir: ray-out, model: \(model), batch_size: 4}
                    """)
            try rayConfig(
                ws, name: "http.yaml",
                engine: """
                      - {name: e, kind: openai, dialect: llamacpp, base_url: "\(running.baseURL)", model: \(model)}
                    """)
            let viaRay = try await CLI.run(
                ["run", "--config", ws.path("ray.yaml"), "--runs-dir", ws.path("ray-runs")], environment: clients)
            #expect(viaRay.exitCode == 0, "\(viaRay.stderr)")
            let sent = viaRay.stdout.split(separator: "\n").first { $0.hasPrefix("engine requests sent: ") }.flatMap {
                Int($0.dropFirst("engine requests sent: ".count))
            }
            #expect((sent ?? 0) >= 12, "\(viaRay.stdout)")
            let rayDir = try runDir(from: viaRay.stdout)
            let record = try JSONValue.parse(
                String(
                    try String(contentsOfFile: rayDir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")[0]))
            let info = record["engines"]?.arrayValue?.first?["info"]
            #expect(info?["ray_version"] == "2.60.0" && info?["processor"] == "http", "\(String(describing: info))")
            // Results came through the output directory, which each job cleans up after.
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: ws.path("ray-out"))) ?? []).isEmpty)

            let viaHTTP = try await CLI.run([
                "run", "--config", ws.path("http.yaml"), "--runs-dir", ws.path("http-runs"),
            ])
            #expect(viaHTTP.exitCode == 0, "\(viaHTTP.stderr)")
            #expect(viaHTTP.stdout.contains("engine requests sent: 0"), "\(viaHTTP.stdout)")
            #expect(viaHTTP.stdout.contains("cache hit rate: 100.0%"), "\(viaHTTP.stdout)")
            let httpDir = try runDir(from: viaHTTP.stdout)
            for file in ["outputs/sentiment.jsonl", "outputs/note.jsonl", "dataset.jsonl"] {
                #expect(
                    FileManager.default.contents(atPath: rayDir + "/" + file)
                        == FileManager.default.contents(atPath: httpDir + "/" + file), "\(file)")
            }

            // Through the bucket: the cache is S3 and the engine names no output_dir. The request file
            // and results are objects under <prefix>/ray-jobs/; the same run over HTTP is all hits.
            let bucketCache =
                "{kind: s3, bucket: \(SeaweedServer.bucket), prefix: team, endpoint: \"\(server.endpoint)\"}"
            try rayConfig(
                ws, name: "ray-s3.yaml",
                engine: """
                      - {name: e, kind: ray, dialect: llamacpp, address: "\(head.dashboard)", base_url: "\(running.baseURL)", python: \(python), model: \(model), batch_size: 4}
                    """, cache: bucketCache)
            try rayConfig(
                ws, name: "http-s3.yaml",
                engine: """
                      - {name: e, kind: openai, dialect: llamacpp, base_url: "\(running.baseURL)", model: \(model)}
                    """, cache: bucketCache)
            let jobsBefore = Set(try await head.jobs().compactMap { $0["submission_id"]?.stringValue })
            let viaBucket = try await CLI.run(
                ["run", "--config", ws.path("ray-s3.yaml"), "--runs-dir", ws.path("ray-s3-runs")],
                environment: clients)
            #expect(viaBucket.exitCode == 0, "\(viaBucket.stderr)")
            #expect(!viaBucket.stdout.contains("engine requests sent: 0"), "\(viaBucket.stdout)")
            let bucketJobs = try await head.jobs().filter {
                !jobsBefore.contains($0["submission_id"]?.stringValue ?? "")
            }
            #expect(!bucketJobs.isEmpty)
            let objects = try S3Objects(
                location: S3Location(
                    bucket: SeaweedServer.bucket, prefix: "team/ray-jobs", endpoint: server.endpoint,
                    region: "us-east-1"),
                environment: clients)
            for job in bucketJobs {
                let id = try #require(job["submission_id"]?.stringValue)
                let entrypoint = job["entrypoint"]?.stringValue ?? ""
                #expect(
                    job["status"] == "SUCCEEDED"
                        && entrypoint.contains(
                            "--requests s3://\(SeaweedServer.bucket)/team/ray-jobs/\(id)/requests.jsonl"),
                    "\(job.textForm)")
                // Each job's files are removed once its answers are in.
                #expect(try await objects.get(id + "/requests.jsonl") == nil)
                #expect(try await objects.get(id + "/results.jsonl") == nil)
            }
            // The credentials stayed on this machine: the cluster used its own.
            let jobTable = try await head.jobs().map(\.textForm).joined()
            #expect(!jobTable.contains(SeaweedServer.secretKey) && !jobTable.contains(head.token))

            // A wrong token: refused before any job, with what to do, and without the token.
            let wrongToken = try ws.write("wrong-token", "0123456789abcdef0123456789abcdef\n")
            let refused = try await CLI.run(
                ["run", "--config", ws.path("ray-s3.yaml"), "--runs-dir", ws.path("refused-runs")],
                environment: SeaweedServer.credentials.merging([
                    "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": wrongToken,
                ]) {
                    _, new in new
                })
            #expect(refused.exitCode != 0)
            #expect(refused.stderr.contains("token authentication"), "\(refused.stderr)")
            #expect(!(refused.stdout + refused.stderr).contains("0123456789abcdef"))
            let viaBucketHTTP = try await CLI.run(
                ["run", "--config", ws.path("http-s3.yaml"), "--runs-dir", ws.path("http-s3-runs")],
                environment: clients)
            #expect(viaBucketHTTP.exitCode == 0, "\(viaBucketHTTP.stderr)")
            #expect(viaBucketHTTP.stdout.contains("engine requests sent: 0"), "\(viaBucketHTTP.stdout)")
            #expect(viaBucketHTTP.stdout.contains("cache hit rate: 100.0%"), "\(viaBucketHTTP.stdout)")
            let bucketDirs = try [viaBucket, viaBucketHTTP].map { try runDir(from: $0.stdout) }
            for file in ["outputs/sentiment.jsonl", "outputs/note.jsonl"] {
                #expect(
                    FileManager.default.contents(atPath: bucketDirs[0] + "/" + file)
                        == FileManager.default.contents(atPath: bucketDirs[1] + "/" + file), "\(file)")
            }

            // processor: vllm reaches the cluster as vLLMEngineProcessorConfig jobs: the entrypoint names
            // the model and engine_kwargs, runtime_env carries vLLM's determinism switches. The job
            // renders its prompts (its log shows them), then fails: the model source `smollm2` is no
            // model vLLM can load on any machine (here it fails earlier still, with no torch), and the
            // rows fail with the job's end, whatever the failure's text.
            try rayConfig(
                ws, name: "ray-vllm.yaml",
                engine: """
                      - {name: e, kind: ray, processor: vllm, address: "\(head.dashboard)", python: \(python), output_dir: ray-out, model: \(model), engine_kwargs: {max_model_len: 2048, tokenizer: "\(ws.path("tokenizer"))"}}
                    """)
            // The job renders its chat prompts with this tokenizer (the model's would come from the Hub).
            try RayDriverTests.writeTokenizer(at: ws.path("tokenizer"), python: python)
            let jobsBeforeVLLM = Set(try await head.jobs().compactMap { $0["submission_id"]?.stringValue })
            let viaVLLM = try await CLI.run(
                ["run", "--config", ws.path("ray-vllm.yaml"), "--runs-dir", ws.path("ray-vllm-runs")],
                environment: clients)
            #expect(viaVLLM.stdout.contains("rows labeled:   0/6 (6 failed"), "\(viaVLLM.stdout)")
            let vllmJob = try #require(
                try await head.jobs().first { !jobsBeforeVLLM.contains($0["submission_id"]?.stringValue ?? "") })
            let entrypoint = vllmJob["entrypoint"]?.stringValue ?? ""
            #expect(
                entrypoint.contains("--processor vllm --model-source smollm2 --engine-kwargs")
                    && entrypoint.contains("\"max_model_len\":2048")
                    && entrypoint.contains("\"revision\":\"test-pin\""),
                "\(entrypoint)")
            #expect(vllmJob["runtime_env"]?["env_vars"]?["VLLM_BATCH_INVARIANT"] == "1", "\(vllmJob.textForm)")
            #expect(
                entrypoint.contains(
                    #""structured_outputs_config":{"backend":"xgrammar","disable_any_whitespace":true}"#),
                "\(entrypoint)")
            #expect(vllmJob["status"] == "FAILED")
            // The rows' requests (6 rows × 2 stages, neither reading the other) went out in one job or
            // several as they arrived: their logs show every prompt rendered once, with the
            // template's generation prompt.
            var rendered = 0
            var logs = ""
            for job in try await head.jobs() where !jobsBeforeVLLM.contains(job["submission_id"]?.stringValue ?? "") {
                let log = try await head.logs(of: try #require(job["submission_id"]?.stringValue))
                logs += log
                if let match = log.firstMatch(of: /rendered (\d+) chat prompt\(s\)/) { rendered += Int(match.1) ?? 0 }
            }
            #expect(
                rendered == 12 && logs.contains(#"<|start_header_id|>assistant<|end_header_id|>"#),
                "\(rendered) rendered: \(logs.suffix(2000))")
            let rows = try String(contentsOfFile: try runDir(from: viaVLLM.stdout) + "/manifest.jsonl", encoding: .utf8)
                .split(separator: "\n").map { try JSONValue.parse(String($0)) }.filter { $0["type"] == "row" }
            #expect(rows.count == 12, "6 rows × 2 stages")
            for row in rows {
                let message = row["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("ended FAILED"), "\(row.textForm)")
            }

            // Ctrl-C while a job runs: labelforge stops the job and exits 130.
            let fresh = try String(contentsOfFile: ws.path("ray.yaml"), encoding: .utf8).replacingOccurrences(
                of: "seed: 11", with: "seed: 12")
            try ws.write("ray2.yaml", fresh)
            let before = Set(try await head.jobs().compactMap { $0["submission_id"]?.stringValue })
            let process = Process()
            process.executableURL = URL(fileURLWithPath: LabelForgeBinary.path())
            process.arguments = ["run", "--config", ws.path("ray2.yaml"), "--runs-dir", ws.path("ray-runs-2")]
            process.environment = ProcessInfo.processInfo.environment.merging(clients) { _, new in new }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var job: String?
            let deadline = Date().addingTimeInterval(60)
            while job == nil && Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
                job = try await head.jobs().first {
                    $0["status"] == "RUNNING" && !before.contains($0["submission_id"]?.stringValue ?? "")
                }?["submission_id"]?.stringValue
            }
            let running = try #require(job, "no job started")
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
            #expect(process.terminationStatus == 130)
            var status: JSONValue?
            let stopDeadline = Date().addingTimeInterval(30)
            while Date() < stopDeadline {
                status = try await head.jobs().first { $0["submission_id"]?.stringValue == running }?["status"]
                if status == "STOPPED" { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(status == "STOPPED", "job \(running) is \(String(describing: status))")
        }
        let tree = head.processTree
        #expect(tree.count > 3)
        head.stop()
        // Stopped by its own PIDs: nothing it started is left.
        #expect(RayHead.leftovers(of: tree).isEmpty)
    }
}
