import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel
import Logging

/// Runs an ablation: every variant as a normal run under `ablations/<id>/runs/`, with one set of
/// engines for the variants that share their `engines` section and one cache for all, then a
/// summary across the variants (docs/ablations.md).
///
/// `ablations/<id>/` holds `ablation.json` (the variants, their config files, run directories and
/// status, updated after each one), `variants/<name>.yaml`, `runs/`, `engine.log`, and
/// `summary.json` / `summary.md` / `summary.html`. `resume` keeps finished variants and resumes or starts the rest.
public struct AblationRunner: Sendable {
    public var logger: Logger
    /// Process only the first N rows of every variant.
    public var limit: Int?
    public var cachePath: String?

    public init(logger: Logger, limit: Int? = nil, cachePath: String? = nil) {
        self.logger = logger
        self.limit = limit
        self.cachePath = cachePath
    }

    /// Starts an ablation of `configPath` under `ablationsDir`; returns its directory.
    public func start(configPath: String, ablationsDir: String) async throws -> String {
        let ablation = try AblationConfig.load(file: configPath)
        let stamp = ISO8601DateFormatter.string(
            from: Date(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withYear, .withMonth, .withDay])
        let clock = DateFormatter()
        clock.dateFormat = "HHmmss"
        clock.timeZone = TimeZone(identifier: "UTC")
        let ablationsDir = URL(fileURLWithPath: ablationsDir).standardizedFileURL.path
        var directory =
            "\(ablationsDir)/\(stamp.replacingOccurrences(of: "-", with: ""))-\(clock.string(from: Date()))-\(ablation.name)"
        var n = 2
        while FileManager.default.fileExists(atPath: directory) {
            directory =
                directory.replacingOccurrences(of: "-\(n - 1)$", with: "", options: .regularExpression) + "-\(n)"
            n += 1
        }
        try FileManager.default.createDirectory(atPath: directory + "/variants", withIntermediateDirectories: true)
        var state = AblationState(name: ablation.name, config: configPath, limit: limit, variants: [])
        for variant in ablation.variants {
            let path = directory + "/variants/\(variant.name).yaml"
            try ablation.configYAML(for: variant).write(toFile: path, atomically: true, encoding: .utf8)
            // Check each variant before anything runs: a bad matrix value fails here, naming it.
            do {
                _ = try RunConfig.load(file: path)
            } catch let error as LabelForgeError {
                throw LabelForgeError(error.code, "variant \(variant.name): \(error.message)")
            }
            state.variants.append(
                AblationState.Entry(name: variant.name, assignments: variant.assignments, config: path))
        }
        try state.save(in: directory)
        try await run(directory: directory, state: state)
        return directory
    }

    /// Continues an interrupted ablation.
    public func resume(directory: String) async throws {
        let directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        let state = try AblationState.load(from: directory)
        try await run(directory: directory, state: state)
    }

    private func run(directory: String, state initial: AblationState) async throws {
        var state = initial
        // Variants with the same engines share them: grouped by the resolved `engines` section.
        var groups: [(engines: JSONValue, indices: [Int])] = []
        for (index, entry) in state.variants.enumerated() {
            let engines = try RunConfig.load(file: entry.config).resolvedJSON["engines"] ?? .null
            if let g = groups.firstIndex(where: { $0.engines == engines }) {
                groups[g].indices.append(index)
            } else {
                groups.append((engines, [index]))
            }
        }
        for group in groups {
            let pending = group.indices.filter { state.variants[$0].status != "completed" }
            guard let firstPending = pending.first else { continue }
            let first = state.variants[firstPending]
            try Runner.installRuntimeIfMissing(configPath: first.config)
            var plan = try RunPlan.prepare(configPath: first.config, limit: state.limit)
            // Engines are started for what a plan's stages use: here, every stage of the variants
            // still to run, since one may use an engine another does not (a chat model, an embedding one).
            for index in pending.dropFirst() {
                plan.stages += try RunPlan.prepare(configPath: state.variants[index].config, limit: state.limit).stages
            }
            try await LiveEngines(logger: logger).withEngines(for: plan, logPath: directory + "/engine.log") {
                engines in
                for index in group.indices where state.variants[index].status != "completed" {
                    let entry = state.variants[index]
                    logger.info("ablation \(state.name): variant \(entry.name)")
                    var options = RunOptions(
                        configPath: entry.config, runsDir: directory + "/runs", limit: state.limit,
                        cachePath: cachePath)
                    // An interrupted variant's run: the one recorded, else an unfinished run of its plan.
                    let unfinished =
                        try entry.run
                        ?? ManifestRecovery.unfinishedRuns(
                            runsDir: directory + "/runs",
                            planHash: RunPlan.prepare(configPath: entry.config, limit: state.limit).planHash
                        ).last
                    if let run = unfinished, FileManager.default.fileExists(atPath: run + "/manifest.jsonl"),
                        (try? RunArtifacts.load(run))?.summary?.isFinal != true
                    {
                        options = RunOptions(
                            configPath: "", runsDir: directory + "/runs", cachePath: cachePath, resume: run)
                    }
                    let runner = Runner(options: options, logger: logger)
                    let report = try await runner.run(sharedEngines: engines)
                    state.variants[index].run = report.runDirectory.path
                    state.variants[index].status = report.status
                    try state.save(in: directory)
                }
            }
        }
        let summary = try AblationSummary.compute(state: state)
        try (CanonicalJSON.string(summary.json) + "\n").write(
            toFile: directory + "/summary.json", atomically: true, encoding: .utf8)
        try summary.markdown.write(toFile: directory + "/summary.md", atomically: true, encoding: .utf8)
        try HTMLReport.ablation(summary).write(toFile: directory + "/summary.html", atomically: true, encoding: .utf8)
    }
}

/// `ablation.json`: what an ablation is made of and how far it got.
struct AblationState: Codable, Sendable {
    struct Entry: Codable, Sendable {
        var name: String
        var assignments: [String: JSONValue]
        var config: String
        var run: String? = nil
        var status = "pending"
    }

    var name: String
    var config: String
    var limit: Int?
    var variants: [Entry]

    func save(in directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = directory + "/ablation.json"
        try encoder.encode(self).write(to: URL(fileURLWithPath: path + ".tmp"))
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: path + ".tmp", toPath: path)
    }

    static func load(from directory: String) throws -> AblationState {
        let path = directory + "/ablation.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabelForgeError(.fileNotFound, "\(directory) is not an ablation directory: it has no ablation.json.")
        }
        return try JSONDecoder().decode(AblationState.self, from: data)
    }
}

/// `labelforge plan` of an ablation: each variant's plan, and the distinct new requests across
/// them (a request two variants would send is sent once).
public struct AblationPlan: Sendable {
    public var name: String
    public var variants: [(name: String, report: PlanReport)]
    public var distinctNewRequests: Int

    /// Plans every variant of the ablation config against the cache; nothing is sent.
    public static func make(configPath: String, limit: Int?, cachePath: String?, runsDir: String, logger: Logger)
        async throws -> AblationPlan
    {
        let ablation = try AblationConfig.load(file: configPath)
        let scratch = NSTemporaryDirectory() + "labelforge-ablation-plan-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var variants: [(String, PlanReport)] = []
        var keys: Set<String> = []
        for variant in ablation.variants {
            let path = scratch + "/\(variant.name).yaml"
            try ablation.configYAML(for: variant).write(toFile: path, atomically: true, encoding: .utf8)
            let report = try await Runner(
                options: RunOptions(configPath: path, runsDir: runsDir, limit: limit, cachePath: cachePath),
                logger: logger
            ).plan()
            keys.formUnion(report.newKeys)
            variants.append((variant.name, report))
        }
        return AblationPlan(name: ablation.name, variants: variants, distinctNewRequests: keys.count)
    }

    public var json: JSONValue {
        [
            "ablation": .string(name), "distinct_new_requests": .int(Int64(distinctNewRequests)),
            "variants": .array(
                variants.map { ["name": .string($0.name), "plan": $0.report.json] }),
        ]
    }

    public var rendered: String {
        var lines = ["ablation \(name): \(variants.count) variants"]
        for (name, report) in variants {
            lines.append("  \(name): \(report.rows) rows, \(report.cachedRequests) cached, \(report.newRequests) new")
        }
        lines.append(
            "new requests: \(distinctNewRequests) distinct across variants (the sum is "
                + "\(variants.reduce(0) { $0 + $1.report.newRequests }); a request variants share is sent once)")
        return lines.joined(separator: "\n") + "\n"
    }
}
