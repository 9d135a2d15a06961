import LabelForgeCore

/// The stages of a run in execution order, what each reads from upstream, and where the
/// barriers cut the stream.
///
/// A stage reads another's outputs through `{{<stage>.<field>}}` in its template or a
/// `<stage>.<field>` path in its options (candidates, filter clauses, a dedup field). The order is
/// the topological order of those reads, ties broken by config order. A stage that changes the row
/// set (a filter, a fan-out, a barrier) also orders the stages listed after it: they run after it
/// and see its rows.
public struct StageGraph: Sendable {
    /// One stretch of the stream: row-wise stages, then the barrier that ends it, if any.
    package struct Segment: Sendable {
        package var stages: [any PipelineStage]
        package var barrier: (any BarrierStage)?
    }

    package var order: [any PipelineStage]
    /// Upstream stage ids each stage reads, in execution order.
    package var reads: [String: [String]]
    package var segments: [Segment]

    /// Orders `stages` (given in config order) and checks every reference.
    /// - Throws: `LabelForgeError.invalidConfig` naming the config file, line, stage and template
    ///   of a reference to an unknown output, a stage that reads itself, or a cycle.
    package static func build(stages: [any PipelineStage], pack: PromptPack) throws -> StageGraph {
        let ids = stages.map(\.config.id)
        let byID = Dictionary(uniqueKeysWithValues: stages.map { ($0.config.id, $0) })
        let reads = try Self.reads(of: stages, byID: byID, pack: pack)

        // Edges: upstream → reader, and row-set changer → every stage listed after it.
        var before: [String: Set<String>] = [:]
        for (reader, upstreams) in reads { before[reader, default: []].formUnion(upstreams) }
        for (index, stage) in stages.enumerated() where stage.rowSet.changesRows {
            for later in ids[(index + 1)...] { before[later, default: []].insert(stage.config.id) }
        }
        var order: [String] = []
        var placed: Set<String> = []
        while order.count < ids.count {
            guard let next = ids.first(where: { !placed.contains($0) && before[$0, default: []].isSubset(of: placed) })
            else {
                let stuck = ids.filter { !placed.contains($0) }
                let detail = stuck.map { id in
                    let waits = before[id, default: []].subtracting(placed).sorted()
                    return
                        "'\(id)' (\(byID[id]!.config.location)) after \(waits.map { "'\($0)'" }.joined(separator: ", "))"
                }
                throw LabelForgeError(
                    .invalidConfig,
                    "the stages \(stuck.map { "'\($0)'" }.joined(separator: ", ")) cannot be ordered: "
                        + detail.joined(separator: "; ")
                        + ". A stage can read only stages that run before it, and every stage listed after a filter, "
                        + "a fan-out (n > 1) or a dataset-wide stage runs after it.")
            }
            order.append(next)
            placed.insert(next)
        }

        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        var segments: [Segment] = [Segment(stages: [], barrier: nil)]
        for id in order {
            let stage = byID[id]!
            if let barrier = stage.execution.datasetWide {
                segments[segments.count - 1].barrier = barrier
                segments.append(Segment(stages: [], barrier: nil))
            } else {
                segments[segments.count - 1].stages.append(stage)
            }
        }
        return StageGraph(
            order: order.map { byID[$0]! },
            reads: reads.mapValues { $0.sorted { position[$0]! < position[$1]! } },
            segments: segments)
    }

    /// The upstream stages each stage reads, through its templates and its options, each reference
    /// checked.
    private static func reads(of stages: [any PipelineStage], byID: [String: any PipelineStage], pack: PromptPack)
        throws -> [String: Set<String>]
    {
        var reads: [String: Set<String>] = [:]
        for stage in stages {
            let config = stage.config
            var paths: [(path: String, via: String)] = stage.optionReferences.map { ($0, "its options") }
            for template in stage.templates {
                let names = pack.references(of: template)
                paths += names.sorted().map { ($0, "template '\(template)'") }
                for name in names where byID[name] != nil && names.contains(where: { $0.hasPrefix(name + ".") }) {
                    throw LabelForgeError(
                        .invalidConfig,
                        "\(config.location): template '\(template)' (stage '\(config.id)') uses both {{\(name)}} "
                            + "and {{\(name).…}}; '\(name)' is also a stage id. Rename the stage or the field.")
                }
            }
            for (path, via) in paths {
                guard let dot = path.firstIndex(of: "."), let upstream = byID[String(path[..<dot])] else { continue }
                let field = String(path[path.index(after: dot)...])
                if upstream.config.id == config.id {
                    throw LabelForgeError(
                        .invalidConfig,
                        "\(config.location): stage '\(config.id)' reads its own output '\(path)' in \(via).")
                }
                // `judge.scores.accuracy` reads the output `scores`.
                guard upstream.outputFields.contains(String(field.prefix { $0 != "." })) else {
                    throw LabelForgeError(
                        .invalidConfig,
                        "\(config.location): stage '\(config.id)' reads '\(path)' in \(via), but stage '\(upstream.config.id)' "
                            + "has no output '\(field)'. Its outputs: \(upstream.outputFields.joined(separator: ", "))."
                    )
                }
                reads[config.id, default: []].insert(upstream.config.id)
            }
        }
        return reads
    }

    /// The upstream stages `stage` reads.
    package func reads(of stage: String) -> [String] { reads[stage] ?? [] }

    /// Row fields (not stage outputs) a path list names.
    package func rowFields(_ paths: [String]) -> [String] {
        let ids = Set(order.map(\.config.id))
        return paths.filter { path in
            guard let dot = path.firstIndex(of: ".") else { return true }
            return !ids.contains(String(path[..<dot]))
        }
    }
}
