import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeKernel

/// What each route of a cascade (`classify` with a `fallback`) did in a run: its rows, the requests
/// they made (and how many were new), tokens, mean latency, and accuracy against gold where the
/// stage has a gold field. Read from the stage's outputs (`route`), the manifest's row lines and
/// the final rows.
struct RouteSummary {
    struct Route {
        var name: String
        var rows = 0
        var requests = 0
        var newRequests = 0
        var tokensIn = 0
        var tokensOut = 0
        var latencyMs = 0
        var agreement = Agreement()

        var meanLatencyMs: Double { rows == 0 ? 0 : Double(latencyMs) / Double(rows) }
    }

    var stage: String
    var routes: [Route]

    /// Each stage of `config` whose outputs name routes, summarized; none for a run without one.
    static func compute(directory: String, config: RunConfig, artifacts: RunArtifacts) -> [RouteSummary] {
        // Only a cascade's outputs name routes: no other stage's file is read.
        config.stages.filter { ($0.options as? ClassifyOptions)?.fallback != nil }.compactMap {
            stage -> RouteSummary? in
            var routeOf: [String: String] = [:]
            HTMLReport.forEachLine(directory + "/outputs/\(stage.id).jsonl") { line in
                if let id = line["row_id"]?.stringValue, let route = line["route"]?.stringValue { routeOf[id] = route }
            }
            guard !routeOf.isEmpty else { return nil }
            var routes: [String: Route] = [:]
            if let manifest = try? ManifestReader(path: artifacts.manifestPath) {
                try? manifest.forEachRow { row in
                    guard row.stage == stage.id, let name = routeOf[row.rowID] else { return }
                    var route = routes[name] ?? Route(name: name)
                    route.rows += 1
                    route.requests += row.requestKeys.count
                    route.newRequests += row.requestKeys.count - row.cacheHits
                    route.tokensIn += row.tokensIn
                    route.tokensOut += row.tokensOut
                    route.latencyMs += row.latencyMs
                    routes[name] = route
                }
            }
            if let goldField = stage.goldField {
                HTMLReport.forEachLine(directory + "/dataset.jsonl") { row in
                    guard let id = row["row_id"]?.stringValue, let name = routeOf[id],
                        let predicted = row["outputs"]?[stage.id]?["label"], !predicted.isNull,
                        let gold = row["input"]?[goldField], !gold.isNull
                    else { return }
                    routes[name, default: Route(name: name)].agreement.add(
                        predicted: predicted.textForm.lowercased(), gold: gold.textForm.lowercased())
                }
            }
            return RouteSummary(stage: stage.id, routes: routes.values.sorted { $0.name < $1.name })
        }
    }

    /// The table's header and rows, for report.html.
    var table: (header: [String], rows: [[String]]) {
        let total = routes.reduce(0) { $0 + $1.rows }
        let header = [
            "route", "rows", "share", "requests", "new requests", "tokens in", "tokens out", "mean latency ms",
            "accuracy [95% CI]",
        ]
        let rows = routes.map { route -> [String] in
            let accuracy =
                route.agreement.count == 0
                ? "–"
                : RunReport.percent(route.agreement.accuracy, route.agreement.intervals()?.accuracy)
                    + " (n=\(route.agreement.count))"
            return [
                route.name, "\(route.rows)", RunReport.percent(total == 0 ? 0 : Double(route.rows) / Double(total)),
                "\(route.requests)", "\(route.newRequests)", "\(route.tokensIn)", "\(route.tokensOut)",
                String(format: "%.1f", route.meanLatencyMs), accuracy,
            ]
        }
        return (header, rows)
    }
}
