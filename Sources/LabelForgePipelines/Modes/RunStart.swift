import Foundation
import LabelForgeCore
import LabelForgeKernel
import Logging

/// How a run begins: a new run of a config, the resumption of an interrupted one, the replay of a
/// finished one, the merge of shards, or the plan of a config (`labelforge plan`: a run that sends
/// nothing). Each case (in its own file) reads what it needs and returns the `RunSetup` that
/// `RunSession` runs.
enum RunStart {
    case new(configPath: String)
    case resume(directory: String, retryFailed: Bool)
    case replay(ReplayOptions)
    case merge(MergeOptions)
    case plan(configPath: String)

    init(_ options: RunOptions) {
        if let resume = options.resume {
            self = .resume(directory: resume, retryFailed: options.retryFailed)
        } else if let merge = options.merge {
            self = .merge(merge)
        } else if let replay = options.replay {
            self = .replay(replay)
        } else {
            self = .new(configPath: options.configPath)
        }
    }

    /// Reads what the run needs and creates (or reopens) its directory. `options` gives what every
    /// start shares: the runs directory, `--limit`, `--no-cache`, `--shard`.
    func setup(options: RunOptions, logger: Logger) throws -> RunSetup {
        var setup = try start(options: options, logger: logger)
        // `--budget-usd` / `--budget-tokens` replace the config's (a stopped run resumes with a raised one).
        if options.budgetUSD != nil || options.budgetTokens != nil {
            var budget = setup.plan.config.budget ?? RunConfig.Budget()
            if let usd = options.budgetUSD { budget.usd = usd }
            if let tokens = options.budgetTokens { budget.tokens = tokens }
            setup.plan.config.budget = budget
        }
        return setup
    }

    private func start(options: RunOptions, logger: Logger) throws -> RunSetup {
        switch self {
        case .new(let configPath): try RunSetup.new(configPath: configPath, options: options, logger: logger)
        case .resume(let directory, let retryFailed):
            try RunSetup.resume(directory: directory, retryFailed: retryFailed, options: options, logger: logger)
        case .replay(let replay): try RunSetup.replay(replay, options: options)
        case .merge(let merge): try RunSetup.merge(merge, options: options, logger: logger)
        case .plan(let configPath): try RunSetup.plan(configPath: configPath, options: options)
        }
    }
}
