import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// The HTML reports (a run's `report.html`, `diff --format html`, an ablation's `summary.html`),
/// rendered in headless Chromium: a non-blank page, the expected titles and numbers, no console errors.
@Suite(.serialized) struct HTMLReportTests {
    static func check(_ path: String, contains expected: [String]) async throws -> Chromium.Rendering {
        let rendering = try await Chromium.render(path)
        #expect(rendering.inkedShare > 0.01, "\(path) renders blank")
        #expect(rendering.consoleMessages.isEmpty, "\(rendering.consoleMessages)")
        for text in expected { #expect(rendering.dom.contains(text), "\(path) lacks \(text)") }
        return rendering
    }

    @Test("report.html of an image run and diff --format html render in Chromium with their numbers")
    func runAndDiff() async throws {
        let stub = try await VisionPipelineTests.start()
        defer { Task { await stub.stop() } }
        let ws = try VisionPipelineTests.workspace(stub: stub)
        let result = try await CLI.run(
            ["run", "--config", "configs/vlm.yaml", "--runs-dir", "runs", "--cache-path", "c.sqlite"],
            workingDirectory: ws.root)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("html report:"))
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
        let run = ws.path(line.dropFirst(4).trimmingCharacters(in: .whitespaces))
        let summary = try #require(
            try String(contentsOfFile: run + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").last.map {
                try JSONValue.parse(String($0))
            })
        let shape = try #require(summary["gold"]?.arrayValue?.first { $0["stage"] == "shape" })
        let accuracy = String(format: "%.1f%%", (shape["accuracy"]?.doubleValue ?? 0) * 100)
        let rendering = try await Self.check(
            run + "/report.html",
            contains: [
                "LabelForge run", "Accuracy against gold", accuracy, "shape.label: confusion matrix",
                "shape: reliability diagram", "caption_score.score: histogram", "latency of rows sent to the engine",
                "Images (first rows)", "<img src=\"data:image/png;base64,",
            ])
        #expect(rendering.dom.components(separatedBy: "<svg").count > 8)

        // `labelforge report` rebuilds the same page from the run directory.
        let before = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        let rebuilt = try await CLI.run(["report", run], workingDirectory: ws.root)
        #expect(rebuilt.exitCode == 0 && rebuilt.stdout.contains("report.html"))
        #expect(try String(contentsOfFile: run + "/report.html", encoding: .utf8) == before)

        // A second run from the cache, then the diff as HTML.
        let second = try await CLI.run(
            ["run", "--config", "configs/vlm.yaml", "--runs-dir", "runs", "--cache-path", "c.sqlite"],
            workingDirectory: ws.root)
        let secondLine = try #require(second.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
        let other = ws.path(secondLine.dropFirst(4).trimmingCharacters(in: .whitespaces))
        let diff = try await CLI.run(["diff", run, other, "--format", "html"], workingDirectory: ws.root)
        #expect(diff.exitCode == 0, "\(diff.stderr)")
        let diffPath = try ws.write("diff.html", diff.stdout)
        _ = try await Self.check(
            diffPath,
            contains: ["LabelForge diff", "Config and pins that differ", "Stage shape: agreement per field", "100.0%"])
    }

    @Test("an ablation's summary.html renders in Chromium with each variant and the kappa matrix")
    func ablationSummary() async throws {
        let stub = try await StubEngine.start { body in
            let prompt = CanonicalJSON.string(body["messages"] ?? nil)
            let seed = body["seed"]?.intValue ?? 0
            return .content(prompt.contains("number 1") || seed % 3 == 0 ? "negative" : "positive")
        }
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 9)
        try ws.writePromptPack()
        try ws.writeStubConfig(
            "configs/base.yaml", name: "base", baseURL: stub.baseURL, dataset: "../data/reviews.jsonl",
            pack: "../prompts",
            stages:
                "  - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral], gold_field: sentiment}"
        )
        try ws.write("configs/ablation.yaml", "base: base.yaml\nname: seeds\nmatrix:\n  run.seed: [1, 2, 3]\n")
        let result = try await CLI.run(
            [
                "ablate", "--config", "configs/ablation.yaml", "--ablations-dir", "ablations", "--cache-path",
                "c.sqlite",
            ],
            workingDirectory: ws.root)
        #expect(result.exitCode == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("ablation:") })
        let printed = line.dropFirst("ablation:".count).trimmingCharacters(in: .whitespaces)
        #expect(printed.hasPrefix("/"), "the ablation directory is printed absolute")
        let directory = printed
        _ = try await Self.check(
            directory + "/summary.html",
            contains: [
                "LabelForge ablation seeds", "seed=1", "seed=2", "seed=3", "Cohen's kappa between variants",
                "sentiment.label: accuracy per variant", "★",
            ])
        // Every variant but the most accurate is compared with it on the same rows.
        let summary = try JSONValue.parse(String(contentsOfFile: directory + "/summary.json", encoding: .utf8))
        let best = try #require(summary["best"]?["sentiment.label.accuracy"]?.stringValue)
        for variant in try #require(summary["variants"]?.arrayValue) {
            let versus = variant["versus_best"]?["sentiment.label"]
            guard variant["name"]?.stringValue != best else {
                #expect(versus == nil)
                continue
            }
            let paired = try #require(versus, "\(variant)")
            #expect(paired["n"] == 9)
            let interval = try #require(paired["difference_ci"]?.arrayValue).compactMap { $0.doubleValue }
            #expect(paired["within_noise"] == .bool(interval[0] <= 0 && 0 <= interval[1]))
            #expect(variant["gold"]?["sentiment.label"]?["accuracy_ci"]?.arrayValue?.count == 2)
        }
        let markdown = try String(contentsOfFile: directory + "/summary.md", encoding: .utf8)
        #expect(markdown.contains("≈ an accuracy within the noise of the best"))
    }
}
