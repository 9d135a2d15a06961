import Foundation
import LabelForgeCore
import LabelForgeKernel

extension RunPlan {
    /// Loads and checks a config; `limit` overrides `run.limit`.
    /// - Parameter resolved: the config is a run's `config.resolved.yaml` (`RunConfig.load`).
    static func prepare(configPath: String, limit: Int?, resolved: Bool = false) throws -> RunPlan {
        try prepare(config: try RunConfig.load(file: configPath, resolved: resolved), limit: limit)
    }

    /// Checks a loaded config and plans it with its models resolved from their files; `limit`
    /// overrides `run.limit`.
    static func prepare(config: RunConfig, limit: Int?) throws -> RunPlan {
        try prepare(config: config, limit: limit, resolveModel: ResolvedModel.resolve)
    }

    /// The plan a run directory was made with (its `config.resolved.yaml`), checked against the
    /// pins its manifest recorded, for `--resume` and `replay`.
    /// - Parameters:
    ///   - refusal: the start of the error when they differ, e.g. "Cannot resume".
    ///   - advice: appended to that error.
    static func reload(runDirectory dir: String, recorded run: RunRecord?, refusal: String, advice: String = "")
        throws -> RunPlan
    {
        let plan = try prepare(configPath: dir + "/config.resolved.yaml", limit: nil, resolved: true)
        if let run {
            let reasons = plan.differences(from: run)
            guard reasons.isEmpty else {
                throw LabelForgeError(
                    .invalidConfig, "\(refusal) \(dir): " + reasons.joined(separator: "; ") + "." + advice)
            }
        }
        return plan
    }
}
