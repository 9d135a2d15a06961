import ArgumentParser
import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

#if canImport(Glibc)
    import Glibc
#endif

struct EngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Print (or run) the command lines of an engine set up for LabelForge.",
        subcommands: [VLLM.self]
    )

    struct VLLM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vllm",
            abstract: "The `vllm serve` command lines for a determinism mode, and the config's engine block.",
            discussion: """
                Standard: VLLM_BATCH_INVARIANT=1 (an answer does not depend on what it was batched with), --seed, \
                --generation-config vllm. --strict adds VLLM_ENABLE_V1_MULTIPROCESSING=0 and \
                --no-enable-prefix-caching, and the engine block sets run.determinism: strict. --replicas N gives \
                N servers on consecutive ports, one GPU group each, and a replica pool block. Arguments after `--` \
                go to every `vllm serve`. With --exec the replicas run here until Ctrl-C (vllm on PATH).
                """
        )

        @Option(name: .long, help: "The model (a Hugging Face id or a path).")
        var model: String

        @Option(name: .long, help: "The model's revision (a commit): pin it, and put it in the engine block.")
        var revision: String?

        @Flag(name: .long, help: "Strict determinism: one engine process, no prefix cache.")
        var strict = false

        @Option(name: .long, help: "How many servers (one per GPU group) on consecutive ports.")
        var replicas = 1

        @Option(name: .long, help: "GPUs per replica (tensor parallel).")
        var gpusPerReplica = 1

        @Option(name: .long, help: "The first replica's port.")
        var port = 8000

        @Option(name: .long, help: "The address the servers listen on.")
        var host = "127.0.0.1"

        @Option(name: .long, help: "The servers' default seed (LabelForge sends a seed with every request).")
        var seed = 0

        @Flag(
            name: .long,
            help:
                "Set VLLM_SERVER_DEV_MODE=1 so the server answers /server_info, which runs record (it also exposes admin routes)."
        )
        var serverInfo = false

        @Option(name: .long, help: "The engine's name in the printed block.")
        var name = "vllm"

        @Flag(name: .long, help: "Run the replicas here instead of printing them.")
        var exec = false

        @Argument(parsing: .postTerminator, help: "More `vllm serve` arguments (after --).")
        var extra: [String] = []

        func validate() throws {
            if replicas < 1 { throw ValidationError("--replicas must be at least 1.") }
            if gpusPerReplica < 1 { throw ValidationError("--gpus-per-replica must be at least 1.") }
            if !(1...65535).contains(port + replicas - 1) || port < 1 {
                throw ValidationError("--port \(port) with \(replicas) replicas leaves the port range.")
            }
        }

        var launch: VLLMLaunch {
            VLLMLaunch(
                model: model, revision: revision, strict: strict, replicas: replicas, port: port, host: host,
                seed: seed, gpusPerReplica: gpusPerReplica, serverInfo: serverInfo, extraArguments: extra,
                engineName: name)
        }

        func run() async throws {
            guard exec else {
                print(launch.script, terminator: "")
                return
            }
            let status = try Self.runReplicas(launch.replicaCommands)
            FileHandle.standardError.write(Data("engine block for the config:\n\(launch.engineBlock)\n".utf8))
            if status != 0 { throw ExitCode(status) }
        }

        /// Starts every replica, stops them all on SIGINT/SIGTERM or when one exits, and returns
        /// the first nonzero exit status (0 when all stopped cleanly or were stopped by a signal).
        static func runReplicas(_ replicas: [VLLMLaunch.Replica]) throws -> Int32 {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
            guard
                let binary = path.split(separator: ":").map({ String($0) + "/" + replicas[0].arguments[0] }).first(
                    where: { FileManager.default.isExecutableFile(atPath: $0) })
            else {
                throw Terminal.exit(
                    for: LabelForgeError(
                        .engineUnavailable,
                        "`vllm` is not on PATH. Install it on the GPU machine (pip install vllm), or run without --exec "
                            + "and start the printed command lines yourself."))
            }
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            var processes: [Process] = []
            let stopping = DispatchSemaphore(value: 0)
            var sources: [DispatchSourceSignal] = []
            for number in [SIGINT, SIGTERM] {
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { stopping.signal() }
                source.resume()
                sources.append(source)
            }
            for replica in replicas {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = Array(replica.arguments.dropFirst())
                var environment = ProcessInfo.processInfo.environment
                for (key, value) in replica.environment { environment[key] = value }
                process.environment = environment
                process.terminationHandler = { _ in stopping.signal() }
                FileHandle.standardError.write(Data("starting: \(replica.shellLine)\n".utf8))
                try process.run()
                processes.append(process)
            }
            // Until a signal arrives or any replica exits.
            stopping.wait()
            let firstExit = processes.first { !$0.isRunning }
            for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) }
            let deadline = Date().addingTimeInterval(30)
            while processes.contains(where: \.isRunning) && Date() < deadline { usleep(100_000) }
            for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
            for process in processes { process.waitUntilExit() }
            _ = sources
            guard let firstExit, firstExit.terminationReason == .exit else { return 0 }
            return firstExit.terminationStatus
        }
    }
}
