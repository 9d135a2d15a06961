import ArgumentParser
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines

@main
struct LabelForgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labelforge",
        abstract: "Deterministic, replayable labeling and synthetic-data pipelines over LLM/VLM engines.",
        discussion: """
            Exit codes: 0 success; 1 the run failed or was aborted, or a replay found differing rows; 64 bad \
            usage, config, dataset or prompt pack; 69 the engine could not be reached or started; 130 interrupted. \
            diff: 0 no output differs, 1 some do, 2 error.
            """,
        // The release and the checkout's git revision (read from `.git` when run from a checkout).
        version: "labelforge \(LabelForgeVersion.current) (git \(GitRevision.current() ?? "revision unknown"))",
        subcommands: [
            Init.self, Setup.self, Run.self, Merge.self, Ablate.self, PlanCommand.self, Replay.self, Diff.self,
            Inspect.self, Report.self, Export.self, ImportReview.self, Mine.self, Cache.self, EngineCommand.self,
        ]
    )
}
