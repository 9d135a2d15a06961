import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `labelforge engine vllm`: the printed engine block runs as a config against a server in vLLM's
/// wire format, the run records what the server reports it ran with, and `--exec` runs and stops
/// the replicas (a stand-in `vllm` on PATH: no GPU here).
@Suite(.serialized) struct EngineCommandTests {
    @Test("the printed engine block, pasted into a config, runs; the manifest records the server's /server_info")
    func printedBlockRuns() async throws {
        let stub = try await StubEngine.start(model: "org/model")
        defer { Task { await stub.stop() } }
        stub.serveServerInfo([
            "vllm_config": [
                "model_config": ["seed": 0, "revision": "abc123", "generation_config": "vllm"],
                "cache_config": ["enable_prefix_caching": false],
            ],
            "vllm_env": ["VLLM_BATCH_INVARIANT": true, "VLLM_ENABLE_V1_MULTIPROCESSING": false],
            "system_env": ["os": "Linux"],
        ])
        let printed = try await CLI.run([
            "engine", "vllm", "--model", "org/model", "--revision", "abc123", "--strict", "--server-info", "--port",
            String(stub.port),
        ])
        #expect(printed.exitCode == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("VLLM_SERVER_DEV_MODE=1"))
        #expect(printed.stdout.contains("--no-enable-prefix-caching"))
        let block = printed.stdout.split(separator: "\n").drop { !$0.hasPrefix("# engines:") }.map {
            String($0.dropFirst(2))
        }.joined(separator: "\n")
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 4)
        try ws.writePromptPack()
        try ws.write(
            "config.yaml",
            block + """

                dataset: {path: data/reviews.jsonl, id_field: id}
                prompts: {pack: prompts}
                stages:
                  - {id: sentiment, type: classify, labels: [positive, negative, neutral]}
                """)
        let run = try await CLI.run([
            "run", "--config", ws.path("config.yaml"), "--runs-dir", ws.path("runs"), "--cache-path",
            ws.path("c.sqlite"),
        ])
        #expect(run.exitCode == 0, "\(run.stderr)\n\(block)")
        let name = try #require(
            try FileManager.default.contentsOfDirectory(atPath: ws.path("runs")).first { !$0.hasPrefix(".") })
        let first = try String(contentsOfFile: ws.path("runs/\(name)/manifest.jsonl"), encoding: .utf8).split(
            separator: "\n")[0]
        let record = try JSONValue.parse(String(first))
        #expect(record["determinism"] == "strict")
        let info = record["engines"]?.arrayValue?.first?["info"]
        let expected: JSONValue = [
            "seed": 0, "revision": "abc123", "generation_config": "vllm", "enable_prefix_caching": false,
            "VLLM_BATCH_INVARIANT": true, "VLLM_ENABLE_V1_MULTIPROCESSING": false,
        ]
        #expect(info?["server_config"] == expected, "\(String(describing: info))")
    }

    /// A stand-in `vllm` that records its arguments, environment and PID, then waits (or exits
    /// with `LF_FAKE_EXIT` when its port matches `LF_FAKE_EXIT_PORT`).
    func fakeVLLM(in dir: String) throws {
        let script = """
            #!/bin/sh
            port=""
            prev=""
            for a in "$@"; do [ "$prev" = "--port" ] && port="$a"; prev="$a"; done
            out="\(dir)/replica-$port"
            # Before the files the test waits for: a SIGTERM right after them must find the trap.
            trap 'echo stopped > "$out.stopped"; exit 0' TERM
            echo "$$" > "$out.pid"
            echo "$@" > "$out.args"
            # Renamed into place: the test waits for the file and must never read it half written.
            env | grep -E '^(VLLM_|CUDA_VISIBLE_DEVICES)' | sort > "$out.env.partial"
            mv "$out.env.partial" "$out.env"
            # The replica that exits waits until the other has set its trap (its pid file is written
            # after it), so the other always finds a SIGTERM handled, however loaded the machine.
            if [ "$port" = "$LF_FAKE_EXIT_PORT" ]; then
              while [ -n "$LF_FAKE_WAIT_FOR" ] && [ ! -f "$LF_FAKE_WAIT_FOR" ]; do sleep 0.1; done
              sleep 1; exit "$LF_FAKE_EXIT"
            fi
            while true; do sleep 0.1; done
            """
        try script.write(toFile: dir + "/vllm", atomically: true, encoding: .utf8)
        chmod(dir + "/vllm", 0o755)
    }

    func launch(_ arguments: [String], path: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LabelForgeBinary.path())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = path + ":" + (env["PATH"] ?? "")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func waitFor(_ paths: [String], seconds: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("--exec runs every replica with its environment; SIGTERM stops them all and exits 0")
    func execStopsReplicas() async throws {
        let ws = try TestWorkspace()
        try fakeVLLM(in: ws.path(""))
        let process = try launch(
            [
                "engine", "vllm", "--model", "m", "--replicas", "2", "--port", "18700", "--exec", "--", "--dtype",
                "half",
            ],
            path: ws.path(""))
        let files = ["replica-18700.pid", "replica-18701.pid", "replica-18700.env", "replica-18701.env"].map(ws.path)
        try await waitFor(files)
        #expect(files.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        let args = try String(contentsOfFile: ws.path("replica-18701.args"), encoding: .utf8)
        #expect(
            args.hasPrefix(
                "serve m --seed 0 --generation-config vllm "
                    + #"--structured-outputs-config {"backend":"xgrammar","disable_any_whitespace":true} "#
                    + "--host 127.0.0.1 --port 18701 --dtype half"),
            "\(args)")
        let env = try String(contentsOfFile: ws.path("replica-18701.env"), encoding: .utf8)
        #expect(env.contains("CUDA_VISIBLE_DEVICES=1\n") && env.contains("VLLM_BATCH_INVARIANT=1\n"), "\(env)")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        for port in [18700, 18701] {
            let pid = Int32(
                try String(contentsOfFile: ws.path("replica-\(port).pid"), encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines))!
            #expect(kill(pid, 0) != 0, "replica \(port) outlived labelforge")
            #expect(FileManager.default.fileExists(atPath: ws.path("replica-\(port).stopped")))
        }
    }

    @Test("--exec: a replica that exits stops the others, and labelforge exits with its status")
    func execReplicaExits() async throws {
        let ws = try TestWorkspace()
        try fakeVLLM(in: ws.path(""))
        let process = try launch(
            ["engine", "vllm", "--model", "m", "--replicas", "2", "--port", "18800", "--exec"], path: ws.path(""),
            environment: [
                "LF_FAKE_EXIT_PORT": "18801", "LF_FAKE_EXIT": "3", "LF_FAKE_WAIT_FOR": ws.path("replica-18800.pid"),
            ])
        process.waitUntilExit()
        #expect(process.terminationStatus == 3)
        let pid = Int32(
            try String(contentsOfFile: ws.path("replica-18800.pid"), encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines))!
        #expect(kill(pid, 0) != 0)
        #expect(FileManager.default.fileExists(atPath: ws.path("replica-18800.stopped")))
    }
}
