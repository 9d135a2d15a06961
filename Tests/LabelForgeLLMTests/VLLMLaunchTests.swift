import Foundation
import LabelForgeLLM
import Testing

@Suite struct VLLMLaunchTests {
    @Test(
        "standard mode: batch invariance, the seed, vLLM's own generation defaults and compact JSON; one server, one base_url"
    )
    func standard() {
        let launch = VLLMLaunch(model: "Qwen/Qwen2.5-VL-3B-Instruct", revision: "abc123")
        let replicas = launch.replicaCommands
        #expect(replicas.count == 1)
        #expect(
            replicas[0].shellLine
                == "VLLM_BATCH_INVARIANT=1 CUDA_VISIBLE_DEVICES=0 vllm serve Qwen/Qwen2.5-VL-3B-Instruct --revision abc123 "
                + "--seed 0 --generation-config vllm "
                + #"--structured-outputs-config '{"backend":"xgrammar","disable_any_whitespace":true}' "#
                + "--host 127.0.0.1 --port 8000")
        #expect(launch.engineBlock.contains("    base_url: \"http://127.0.0.1:8000\""))
        #expect(launch.engineBlock.contains("model: {id: Qwen/Qwen2.5-VL-3B-Instruct, revision: abc123}"))
        #expect(!launch.engineBlock.contains("determinism"))
    }

    @Test("strict mode with replicas: one process each, no prefix cache, GPU groups, consecutive ports, a replica pool")
    func strictReplicas() {
        let launch = VLLMLaunch(
            model: "m", strict: true, replicas: 2, port: 9000, seed: 7, gpusPerReplica: 2, serverInfo: true,
            extraArguments: ["--max-model-len", "8192"])
        let replicas = launch.replicaCommands
        #expect(replicas.map(\.baseURL) == ["http://127.0.0.1:9000", "http://127.0.0.1:9001"])
        let second = replicas[1]
        #expect(
            second.environment.map(\.0) == [
                "VLLM_BATCH_INVARIANT", "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_SERVER_DEV_MODE",
                "CUDA_VISIBLE_DEVICES",
            ])
        #expect(second.environment.last?.1 == "2,3")
        #expect(
            second.arguments == [
                "vllm", "serve", "m", "--seed", "7", "--generation-config", "vllm", "--structured-outputs-config",
                #"{"backend":"xgrammar","disable_any_whitespace":true}"#, "--no-enable-prefix-caching",
                "--tensor-parallel-size", "2", "--host", "127.0.0.1", "--port", "9001", "--max-model-len", "8192",
            ])
        #expect(launch.engineBlock.contains("base_urls: [\"http://127.0.0.1:9000\", \"http://127.0.0.1:9001\"]"))
        #expect(launch.engineBlock.contains("max_in_flight_per_replica: 1"))
        #expect(launch.engineBlock.contains("determinism: strict"))
        #expect(launch.script.contains(" &\n") && launch.script.hasSuffix("\n") && launch.script.contains("\nwait\n"))
    }

    @Test("an argument with spaces or quotes is quoted for the shell")
    func quoting() {
        let launch = VLLMLaunch(model: "m", extraArguments: ["--limit-mm-per-prompt", "{\"image\": 1}", "it's"])
        #expect(launch.replicaCommands[0].shellLine.hasSuffix("--limit-mm-per-prompt '{\"image\": 1}' 'it'\\''s'"))
    }
}
