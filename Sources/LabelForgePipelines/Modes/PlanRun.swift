import Foundation
import LabelForgeCore
import LabelForgeKernel

extension RunSetup {
    /// `labelforge plan`: the config's plan run in a scratch directory (removed by the caller) with
    /// engines that send nothing (`PlanEngines`). No local engine or model is installed; the run stops
    /// after its first dataset-wide stage has looked its requests up, and no failure ratio aborts it
    /// (every new request is a miss).
    static func plan(configPath: String, options: RunOptions) throws -> RunSetup {
        let plan = try RunPlan.prepare(configPath: configPath, limit: options.limit)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "labelforge-plan-\(UUID().uuidString)"
        ).path
        let directory = try RunDirectory.create(
            runsDir: scratch, planHash: plan.planHash, resolvedConfig: ResolvedYAML.string(plan.resolved))
        return RunSetup(
            plan: plan, directory: directory, createdDirectory: true, runLine: RunLine(),
            stop: .afterFirstBarrierRequests, maxFailureRatio: 1)
    }
}
