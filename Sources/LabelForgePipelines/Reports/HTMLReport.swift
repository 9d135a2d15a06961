import Foundation
import LabelForgeCore
import LabelForgeEval
import LabelForgeIO
import LabelForgeKernel

/// Self-contained HTML reports (no scripts, no network: inline CSS and SVG charts), for a person
/// to look at: `report.html` of a run, and an ablation's `summary.html`.
public enum HTMLReport {
    /// The report of a run directory, from its files: counts, cache, gold scores, label
    /// distributions, confusion matrices, reliability diagrams, score and latency histograms, and
    /// image thumbnails.
    public static func run(directory: String) throws -> String {
        let artifacts = try RunArtifacts.load(directory)
        let config = try RunConfig.load(file: directory + "/config.resolved.yaml", resolved: true)
        let summary = artifacts.summary
        var page = Page(title: "LabelForge run \(artifacts.run.runID)")
        let counts = summary?.counts
        let stats = counts?.stages ?? [:]
        let hits = stats.values.reduce(0) { $0 + $1.cacheHits }
        let lookups = hits + stats.values.reduce(0) { $0 + $1.cacheMisses }
        page.facts([
            ("status", summary?.status ?? "unfinished"), ("rows", "\(counts?.rows ?? 0)"),
            ("rows with a failed stage", "\(counts?.rowsFailed ?? 0)"),
            (
                "cache hit rate",
                lookups == 0 ? "n/a" : Self.percent(Double(hits) / Double(lookups)) + " (\(hits)/\(lookups))"
            ),
            ("engine requests sent", "\(summary?.engineRequests ?? 0)"),
            ("models", artifacts.run.models.map { "\($0.id) @ \($0.revision.prefix(19))" }.joined(separator: ", ")),
        ])
        if lookups > 0 {
            page.chart(
                "Cache",
                SVG.bars([("hits", Double(hits)), ("misses", Double(lookups - hits))], format: { "\(Int($0))" }))
        }
        page.table(
            "Stages", header: ["stage", "type", "ok", "failed", "dropped", "cache hits", "tokens in", "tokens out"],
            rows: config.stages.map { stage in
                let s = stats[stage.id] ?? StageStats()
                return [
                    stage.id, stage.type, "\(s.ok)", "\(s.failed)", "\(s.dropped)", "\(s.cacheHits)", "\(s.tokensIn)",
                    "\(s.tokensOut)",
                ]
            })
        if let gold = summary?.gold, !gold.isEmpty {
            page.table(
                "Accuracy against gold", header: ["stage.field", "gold field", "n", "accuracy", "macro-F1"],
                rows: gold.map {
                    [
                        "\($0.stage).\($0.field)", $0.goldField, "\($0.n)", Self.percent($0.accuracy),
                        String(format: "%.3f", $0.macroF1),
                    ]
                })
        }

        // Outputs and final rows are streamed, a line at a time: a run of millions of rows draws its
        // report in the memory of a few numbers per row.
        let datasetPath = directory + "/dataset.jsonl"
        // Predictions against gold, for every labeled field with a gold field, in one pass.
        let goldPairs = config.stages.flatMap { stage in
            Self.labelFields(stage).compactMap { field, gold in gold.map { (stage: stage, field: field, gold: $0) } }
        }
        var tallies: [String: GoldTally] = [:]
        if !goldPairs.isEmpty {
            Self.forEachLine(datasetPath) { row in
                for (stage, field, goldField) in goldPairs {
                    guard let predicted = row["outputs"]?[stage.id]?[field], !predicted.isNull,
                        let gold = row["input"]?[goldField], !gold.isNull
                    else { continue }
                    let confidence =
                        stage.type == "classify" ? row["outputs"]?[stage.id]?["confidence"]?.doubleValue : nil
                    tallies[stage.id + "\u{0}" + field, default: GoldTally()].add(
                        predicted: predicted.textForm, gold: gold.textForm, confidence: confidence)
                }
            }
        }
        for stage in config.stages {
            let outputsPath = directory + "/outputs/\(stage.id).jsonl"
            let head = Self.lines(outputsPath, limit: 50)
            guard !head.isEmpty else { continue }
            let fields = Self.labelFields(stage)
            // Numeric outputs, as the first lines show them: histograms.
            let numeric = Set(
                head.flatMap { line in
                    (line.objectValue ?? [:]).compactMap { key, value -> String? in
                        guard !["index", "dimension", "sample_index", "words", "turns"].contains(key) else {
                            return nil
                        }
                        if case .double = value { return key }
                        if case .int = value { return key }
                        return nil
                    }
                }
            ).sorted()
            var labelCounts: [String: [String: Int]] = [:]
            var numbers: [String: [Double]] = [:]
            Self.forEachLine(outputsPath) { line in
                for (field, _) in fields {
                    if let value = line[field], !value.isNull {
                        labelCounts[field, default: [:]][value.textForm, default: 0] += 1
                    }
                }
                for field in numeric {
                    if let value = line[field]?.doubleValue { numbers[field, default: []].append(value) }
                }
            }
            for (field, goldField) in fields {
                page.chart(
                    "\(stage.id).\(field): label distribution",
                    SVG.bars(
                        (labelCounts[field] ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, Double($0.value)) },
                        format: { "\(Int($0))" }))
                guard let goldField, let tally = tallies[stage.id + "\u{0}" + field], tally.pairs > 0 else { continue }
                let confusion = tally.confusion
                let labels = Set(confusion.keys).union(confusion.values.flatMap(\.keys)).sorted()
                page.chart(
                    "\(stage.id).\(field): confusion matrix (rows: gold \(goldField), columns: predicted; n = \(tally.pairs))",
                    SVG.heatmap(
                        labels: labels, counts: labels.map { g in labels.map { p in confusion[g]?[p] ?? 0 } }))
                if !tally.confidences.isEmpty {
                    let (confidences, correct) = (tally.confidences, tally.correct)
                    let bins = Statistics.calibrationBins(confidences: confidences, correct: correct)
                    let ece = Statistics.expectedCalibrationError(confidences: confidences, correct: correct)
                    page.chart(
                        "\(stage.id): reliability diagram (10 equal-width confidence bins; ECE \(String(format: "%.3f", ece)))",
                        SVG.reliability(bins))
                }
            }
            for field in numeric {
                guard let values = numbers[field], values.count > 1 else { continue }
                page.chart("\(stage.id).\(field): histogram (n = \(values.count))", SVG.histogram(values))
            }
        }
        // Cascades: what each route cost and how well it labeled.
        for summary in RouteSummary.compute(directory: directory, config: config, artifacts: artifacts) {
            let table = summary.table
            page.table(
                "\(summary.stage): routes (which classifier answered each row; accuracy against gold)",
                header: table.header, rows: table.rows)
        }
        // Calibration: reliability before and after, on the rows the map was not fitted on.
        for stage in config.stages where stage.type == "calibrate" {
            guard let goldField = stage.goldField else { continue }
            var raw: [Double] = []
            var calibrated: [Double] = []
            var correct: [Bool] = []
            Self.forEachLine(datasetPath) { row in
                guard let output = row["outputs"]?[stage.id], output["split"] == "eval",
                    let before = output["raw_confidence"]?.doubleValue, let after = output["confidence"]?.doubleValue,
                    let label = output["label"], let gold = row["input"]?[goldField], !gold.isNull
                else { return }
                raw.append(before)
                calibrated.append(after)
                correct.append(label.textForm.lowercased() == gold.textForm.lowercased())
            }
            guard !correct.isEmpty else { continue }
            for (name, confidences) in [("before", raw), ("after", calibrated)] {
                let ece = Statistics.expectedCalibrationError(confidences: confidences, correct: correct)
                page.chart(
                    "\(stage.id): reliability \(name) calibration (\(correct.count) held-out rows; ECE "
                        + "\(String(format: "%.3f", ece)))",
                    SVG.reliability(Statistics.calibrationBins(confidences: confidences, correct: correct)))
            }
        }
        // Latency: per stage, requests that went to the engine.
        var latencies: [String: [Double]] = [:]
        if let manifest = try? ManifestReader(path: artifacts.manifestPath) {
            try? manifest.forEachRow { row in
                if row.cache == "miss" { latencies[row.stage, default: []].append(Double(row.latencyMs)) }
            }
        }
        for stage in config.stages {
            guard let values = latencies[stage.id], values.count > 1 else { continue }
            let sorted = values.sorted()
            page.chart(
                "\(stage.id): latency of rows sent to the engine (ms; median \(Int(sorted[sorted.count / 2])), "
                    + "p95 \(Int(sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))])))",
                SVG.histogram(values))
        }
        // Image thumbnails.
        if !config.dataset.imageFields.isEmpty {
            let base = (config.dataset.path as NSString).deletingLastPathComponent
            var thumbnails: [(String, String)] = []
            for row in Self.lines(datasetPath, limit: 24) {
                for field in config.dataset.imageFields {
                    guard let path = row["input"]?[field]?.stringValue, !path.hasPrefix("sha256:") else { continue }
                    let full = path.hasPrefix("/") ? path : base + "/" + path
                    guard let data = FileManager.default.contents(atPath: full), data.count < 512_000 else { continue }
                    let type = full.lowercased().hasSuffix(".png") ? "image/png" : "image/jpeg"
                    let caption = config.stages.compactMap { stage in
                        row["outputs"]?[stage.id].flatMap { outputs in
                            (outputs["label"] ?? outputs["caption"]).map { "\(stage.id): \($0.textForm)" }
                        }
                    }.joined(separator: "; ")
                    thumbnails.append(
                        (
                            "data:\(type);base64,\(data.base64EncodedString())",
                            (row["row_id"]?.textForm ?? "") + " " + caption
                        ))
                }
            }
            page.thumbnails("Images (first rows)", thumbnails)
        }
        return page.html
    }

    /// An ablation's summary: per-variant metrics, best marked, and the agreement matrices as heat maps.
    static func ablation(_ summary: AblationSummary) -> String {
        var page = Page(title: "LabelForge ablation \(summary.name)")
        let gold = summary.goldKeys
        var header = ["variant"]
        for key in gold { header += ["\(key) accuracy", "\(key) macro-F1"] }
        header += ["tokens in", "tokens out", "new requests", "cached", "wall s"]
        let bestTokens = summary.best({ Double($0.tokensIn + $0.tokensOut) }, lower: true)
        page.table(
            "Variants (★ best per column)", header: header,
            rows: summary.rows.enumerated().map { i, row in
                var cells = [row.name]
                for key in gold {
                    let a = summary.best { $0.gold[key]?.accuracy } == i ? " ★" : ""
                    let f = summary.best { $0.gold[key]?.macroF1 } == i ? " ★" : ""
                    cells += [
                        AblationSummary.format(row.gold[key]?.accuracy) + a,
                        AblationSummary.format(row.gold[key]?.macroF1) + f,
                    ]
                }
                cells += [
                    "\(row.tokensIn)" + (bestTokens == i ? " ★" : ""), "\(row.tokensOut)", "\(row.newRequests)",
                    "\(row.cachedRequests)", AblationSummary.format(row.wallSeconds, digits: 1),
                ]
                return cells
            })
        for key in gold {
            page.chart(
                "\(key): accuracy per variant",
                SVG.bars(summary.rows.map { ($0.name, $0.gold[key]?.accuracy ?? 0) }, format: { Self.percent($0) }))
        }
        for agreement in summary.agreements {
            page.chart(
                "\(agreement.stage).\(agreement.field): Cohen's kappa between variants (Fleiss \(AblationSummary.format(agreement.fleiss)), "
                    + "Krippendorff's alpha \(AblationSummary.format(agreement.alpha)))",
                SVG.matrix(labels: summary.rows.map(\.name), values: agreement.kappa))
        }
        return page.html
    }

    /// A diff of two runs: config and pin changes, per stage the rows that changed (with both
    /// values), agreement, and each categorical field's run-a × run-b table as a heat map.
    public static func diff(_ diff: RunDiff) -> String {
        var page = Page(
            title:
                "LabelForge diff \((diff.a as NSString).lastPathComponent) → \((diff.b as NSString).lastPathComponent)")
        page.facts([("run a", diff.a), ("run b", diff.b), ("outputs differ", diff.outputsDiffer ? "yes" : "no")])
        let changes =
            diff.config.map { ["config", $0.path, $0.a ?? "(absent)", $0.b ?? "(absent)"] }
            + diff.pins.map { ["pin", $0.path, $0.a ?? "(absent)", $0.b ?? "(absent)"] }
        page.table(
            "Config and pins that differ", header: ["kind", "key", "a", "b"],
            rows: changes.isEmpty ? [["—", "identical", "", ""]] : changes)
        for stage in diff.stages {
            page.table(
                "Stage \(stage.id)", header: ["changed", "unchanged", "only in a", "only in b"],
                rows: [["\(stage.changed)", "\(stage.unchanged)", "\(stage.onlyA)", "\(stage.onlyB)"]])
            page.table(
                "Stage \(stage.id): agreement per field",
                header: ["field", "kind", "n", "agreement", "Cohen's kappa", "mean delta", "Pearson", "Spearman"],
                rows: stage.fields.map { f in
                    [
                        f.name, f.kind, "\(f.count)", percent(f.agreement), AblationSummary.format(f.kappa),
                        AblationSummary.format(f.meanDelta), AblationSummary.format(f.pearson),
                        AblationSummary.format(f.spearman),
                    ]
                })
            for field in stage.fields where field.kind == "categorical" && !field.confusion.isEmpty {
                let labels = Array(Set(field.confusion.keys).union(field.confusion.values.flatMap(\.keys))).sorted()
                page.chart(
                    "Stage \(stage.id), \(field.name): rows by value in a (rows) and b (columns)",
                    SVG.heatmap(
                        labels: labels, counts: labels.map { a in labels.map { b in field.confusion[a]?[b] ?? 0 } }))
            }
            if !stage.samples.isEmpty {
                page.table(
                    "Stage \(stage.id): changed rows", header: ["row", "a", "b"],
                    rows: stage.samples.map { [$0.rowID, CanonicalJSON.string($0.a), CanonicalJSON.string($0.b)] })
            }
        }
        return page.html
    }

    static func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }

    /// The fields a stage labels, each with its gold field: a classify stage's `label`, a tag
    /// stage's non-string attributes.
    static func labelFields(_ stage: RunConfig.Stage) -> [(field: String, gold: String?)] {
        switch stage.type {
        case "classify": return [("label", stage.goldField)]
        case "tag":
            return ((stage.options as? TagOptions)?.attributes ?? []).filter { $0.type != "string" }
                .map { ($0.name, $0.goldField) }
        default: return []
        }
    }

    /// One labeled field's predictions against gold: a confusion table, and each classify row's
    /// confidence with whether it was right (for the reliability diagram).
    struct GoldTally {
        var confusion: [String: [String: Int]] = [:]
        var pairs = 0
        var confidences: [Double] = []
        var correct: [Bool] = []

        mutating func add(predicted: String, gold: String, confidence: Double?) {
            confusion[gold, default: [:]][predicted, default: 0] += 1
            pairs += 1
            if let confidence {
                confidences.append(confidence)
                correct.append(predicted == gold)
            }
        }
    }

    /// The first `limit` JSON lines of a file (fewer when it is shorter or missing).
    static func lines(_ path: String, limit: Int) -> [JSONValue] {
        var lines: [JSONValue] = []
        guard let reader = try? LineReader(path: path) else { return [] }
        while lines.count < limit, let text = reader.next() {
            if let value = try? JSONValue.parse(text) { lines.append(value) }
        }
        return lines
    }

    /// Calls `body` with each JSON line of a file, one at a time; nothing for a missing file.
    static func forEachLine(_ path: String, _ body: (JSONValue) -> Void) {
        guard let reader = try? LineReader(path: path) else { return }
        while let text = reader.next() {
            if let value = try? JSONValue.parse(text) { body(value) }
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// An HTML page being assembled: sections of facts, tables and charts.
struct Page {
    var title: String
    private var body: [String] = []

    init(title: String) { self.title = title }

    mutating func facts(_ items: [(String, String)]) {
        body.append(
            "<dl class=\"facts\">"
                + items.map { "<dt>\(HTMLReport.escape($0.0))</dt><dd>\(HTMLReport.escape($0.1))</dd>" }.joined()
                + "</dl>")
    }

    mutating func table(_ caption: String, header: [String], rows: [[String]]) {
        var html = "<section><h2>\(HTMLReport.escape(caption))</h2><table><thead><tr>"
        html += header.map { "<th>\(HTMLReport.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { html += "<tr>" + row.map { "<td>\(HTMLReport.escape($0))</td>" }.joined() + "</tr>" }
        body.append(html + "</tbody></table></section>")
    }

    mutating func chart(_ caption: String, _ svg: String) {
        body.append("<section><h2>\(HTMLReport.escape(caption))</h2>\(svg)</section>")
    }

    mutating func thumbnails(_ caption: String, _ images: [(url: String, caption: String)]) {
        guard !images.isEmpty else { return }
        body.append(
            "<section><h2>\(HTMLReport.escape(caption))</h2><div class=\"thumbs\">"
                + images.map {
                    "<figure><img src=\"\($0.url)\" alt=\"\(HTMLReport.escape($0.caption))\"><figcaption>"
                        + "\(HTMLReport.escape($0.caption))</figcaption></figure>"
                }.joined() + "</div></section>")
    }

    var html: String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(HTMLReport.escape(title))</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
        h1{font-size:22px}h2{font-size:16px;margin:24px 0 8px}
        table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
        th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
        dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{color:#666}dd{margin:0}
        .thumbs{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:140px;font-size:11px}
        figure img{width:128px;height:128px;object-fit:contain;border:1px solid #ddd}
        svg text{font:11px system-ui,sans-serif}
        </style></head><body>
        <h1>\(HTMLReport.escape(title))</h1>
        \(body.joined(separator: "\n"))
        </body></html>

        """
    }
}

/// Inline SVG charts.
enum SVG {
    static func bars(_ items: [(String, Double)], format: (Double) -> String) -> String {
        let top = max(items.map(\.1).max() ?? 0, 1e-9)
        let rowHeight = 22
        let width = 700
        let labelWidth = 260
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(items.count * rowHeight + 4)\">"
        for (i, (label, value)) in items.enumerated() {
            let y = i * rowHeight + 2
            let w = Int(Double(width - labelWidth - 80) * value / top)
            svg += "<text x=\"0\" y=\"\(y + 15)\">\(HTMLReport.escape(String(label.prefix(40))))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(max(w, 1))\" height=\"16\" fill=\"#4878a8\"/>"
            svg += "<text x=\"\(labelWidth + w + 6)\" y=\"\(y + 15)\">\(HTMLReport.escape(format(value)))</text>"
        }
        return svg + "</svg>"
    }

    /// A confusion matrix: counts as cells shaded by their share of the row.
    static func heatmap(labels: [String], counts: [[Int]]) -> String {
        let values = counts.map { row -> [Double?] in
            let total = max(row.reduce(0, +), 1)
            return row.map { Double($0) / Double(total) }
        }
        return matrix(labels: labels, values: values, text: { i, j in "\(counts[i][j])" })
    }

    /// A square matrix of values in [0, 1] (or kappa in [-1, 1]) as shaded cells.
    static func matrix(labels: [String], values: [[Double?]], text: ((Int, Int) -> String)? = nil) -> String {
        let cell = 44
        let left = 230
        let topMargin = 24
        let n = labels.count
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + n * cell + 10)\" height=\"\(topMargin + n * cell + 10)\">"
        for (j, _) in labels.enumerated() {
            svg += "<text x=\"\(left + j * cell + cell / 2)\" y=\"16\" text-anchor=\"middle\">\(j + 1)</text>"
        }
        for (i, label) in labels.enumerated() {
            let y = topMargin + i * cell
            svg +=
                "<text x=\"0\" y=\"\(y + cell / 2 + 4)\">\(i + 1). \(HTMLReport.escape(String(label.prefix(32))))</text>"
            for j in 0..<n {
                let value = values[i][j]
                let shade = value.map { max(0, min(1, $0)) } ?? 0
                let color = value == nil ? "#eeeeee" : "rgb(\(Int(255 - 180 * shade)),\(Int(255 - 120 * shade)),255)"
                let label = text?(i, j) ?? value.map { String(format: "%.2f", $0) } ?? "n/a"
                svg +=
                    "<rect x=\"\(left + j * cell)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"\(color)\"/>"
                svg +=
                    "<text x=\"\(left + j * cell + cell / 2 - 1)\" y=\"\(y + cell / 2 + 3)\" text-anchor=\"middle\">\(label)</text>"
            }
        }
        return svg + "</svg>"
    }

    /// A histogram of values in 20 equal-width bins.
    static func histogram(_ values: [Double]) -> String {
        // Only finite values within ±1e15 are drawn (an answer of 1e300 must not break the page).
        let values = values.filter { $0.isFinite && abs($0) < 1e15 }
        let low = values.min() ?? 0
        let high = values.max() ?? 1
        let bins = 20
        let span = high > low ? high - low : 1
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, Int((v - low) / span * Double(bins)))] += 1 }
        let top = max(counts.max() ?? 1, 1)
        let width = 600
        let height = 160
        let barWidth = width / bins
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width + 20)\" height=\"\(height + 30)\">"
        for (i, c) in counts.enumerated() {
            let h = Int(Double(height) * Double(c) / Double(top))
            svg +=
                "<rect x=\"\(i * barWidth)\" y=\"\(height - h)\" width=\"\(barWidth - 2)\" height=\"\(max(h, 0))\" fill=\"#4878a8\"><title>\(c)</title></rect>"
        }
        svg += "<text x=\"0\" y=\"\(height + 16)\">\(format(low))</text>"
        svg += "<text x=\"\(width)\" y=\"\(height + 16)\" text-anchor=\"end\">\(format(high))</text>"
        return svg + "</svg>"
    }

    /// Accuracy against mean confidence per bin, with the diagonal of perfect calibration.
    static func reliability(_ bins: [CalibrationBin]) -> String {
        let size = 260
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(size + 60)\" height=\"\(size + 40)\">"
        svg += "<rect x=\"30\" y=\"0\" width=\"\(size)\" height=\"\(size)\" fill=\"none\" stroke=\"#999\"/>"
        svg += "<line x1=\"30\" y1=\"\(size)\" x2=\"\(30 + size)\" y2=\"0\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>"
        for bin in bins where bin.count > 0 {
            let x = 30 + Int(bin.lower * Double(size))
            let w = Int((bin.upper - bin.lower) * Double(size))
            let h = Int(bin.accuracy * Double(size))
            svg +=
                "<rect x=\"\(x + 1)\" y=\"\(size - h)\" width=\"\(w - 2)\" height=\"\(h)\" fill=\"#4878a8\" opacity=\"0.8\"><title>\(bin.count) rows</title></rect>"
        }
        svg +=
            "<text x=\"30\" y=\"\(size + 16)\">confidence 0</text><text x=\"\(size + 30)\" y=\"\(size + 16)\" text-anchor=\"end\">1</text>"
        svg += "<text x=\"0\" y=\"12\">acc 1</text>"
        return svg + "</svg>"
    }

    static func format(_ x: Double) -> String {
        guard x.isFinite, abs(x) < 1e15 else { return String(format: "%.3g", x) }
        return abs(x) >= 100 || x == x.rounded() ? String(Int(x.rounded())) : String(format: "%.3f", x)
    }
}
