import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import LabelForgeVectors
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `classify` with `method: embedding` against the stub's vLLM-format `/v1/embeddings` (its vectors
/// are a hash of each text, so the expected label is computed here from the same vectors).
@Suite struct EmbeddingClassifyTests {
    static let labels = ["quality", "shipping", "price", "service"]

    static func config(_ ws: TestWorkspace, baseURL: String, extra: String = "") throws -> String {
        try ws.write(
            "config.yaml",
            """
            run: {name: embedding-classify, seed: 5}
            dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - id: topic
                type: classify
                method: embedding
                field: text
                prefix: "query: "
                label_prefix: "a review about "
                labels: [\(labels.joined(separator: ", "))]
            \(extra)
            """)
    }

    @Test(
        "the nearest label by cosine, a softmax confidence, each label's score; every text sent once; a rerun sends nothing and writes the same bytes"
    )
    func nearestLabel() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        let stub = try await StubEngine.start()
        let config = try Self.config(ws, baseURL: stub.baseURL)
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let lines = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "topic"))
        #expect(lines.count == 12)
        let labelVectors = Self.labels.map { StubEngine.embedding(of: "a review about " + $0) }
        var chosen: Set<String> = []
        for (i, line) in lines.enumerated() {
            let row = StubEngine.embedding(of: "query: Review number \(i): it's \"fine\" & works.")
            let similarities = labelVectors.map { VectorSearch.cosine(row, $0) }
            let best = similarities.indices.max { similarities[$0] < similarities[$1] }!
            #expect(line["label"]?.stringValue == Self.labels[best])
            chosen.insert(Self.labels[best])
            for (label, similarity) in zip(Self.labels, similarities) {
                #expect(abs((line["scores"]?[label]?.doubleValue ?? 9) - similarity) < 1e-5)
            }
            let weights = similarities.map { exp(($0 - similarities[best]) / 0.05) }
            #expect(abs((line["confidence"]?.doubleValue ?? 9) - weights[best] / weights.reduce(0, +)) < 1e-5)
        }
        #expect(chosen.count > 1, "the stub's vectors pick more than one label")
        // 12 row texts and 4 label texts, each sent once (a label's vector serves every row).
        let sent = stub.embeddingRequests.flatMap { $0 }
        #expect(sent.count == 16 && Set(sent).count == 16)

        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.embeddingRequests.flatMap { $0 }.count == 16)
        #expect(second.cacheHitRate == 1)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: second.runDirectory.outputPath(stage: "topic")))
                == Data(contentsOf: URL(fileURLWithPath: report.runDirectory.outputPath(stage: "topic"))))
    }

    @Test("method: embedding needs a field and an engine with task: embed; its keys are refused with method: llm")
    func configErrors() throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        let base = try String(contentsOfFile: Self.config(ws, baseURL: "http://127.0.0.1:9"), encoding: .utf8)
        let noField = base.replacingOccurrences(
            of: "    field: text\n", with: "")
        let error = #expect(throws: LabelForgeError.self) {
            try RunConfig.load(file: try ws.write("nofield.yaml", noField))
        }
        #expect(error?.message.contains("needs 'field'") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("nofield.yaml:") == true)

        let chatEngine = base.replacingOccurrences(
            of: "task: embed, ", with: "")
        let taskError = #expect(throws: LabelForgeError.self) {
            _ = try RunPlan.prepare(configPath: try ws.write("chat.yaml", chatEngine), limit: nil)
        }
        #expect(taskError?.message.contains("needs an engine with task: embed") == true, "\(taskError?.message ?? "")")

        let llm = base.replacingOccurrences(
            of: "method: embedding", with: "method: llm")
        let keyError = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: try ws.write("llm.yaml", llm)) }
        #expect(keyError?.message.contains("'field' applies with method: embedding only") == true)
    }

    /// The pool: three examples per label, plus two whose text is row 3's own (labeled `price`).
    static func writePool(_ ws: TestWorkspace) throws -> [(text: String, label: String)] {
        var pool: [(text: String, label: String)] = []
        for (i, label) in labels.enumerated() {
            for j in 0..<3 { pool.append(("Example \(j) of \(label), number \(i * 3 + j).", label)) }
        }
        pool.append((TestWorkspace.reviewText(3), "price"))
        pool.append((TestWorkspace.reviewText(3), "price"))
        let lines = pool.map {
            CanonicalJSON.string(["text": .string($0.text), "topic": .string($0.label.uppercased())])
        }
        try ws.write("data/pool.jsonl", lines.joined(separator: "\n") + "\n")
        return pool
    }

    static func unit(_ vector: [Float]) -> [Double] {
        let values = vector.map(Double.init)
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    static func cosine(_ x: [Double], _ y: [Double]) -> Double {
        let dot = zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
        return dot / (x.reduce(0) { $0 + $1 * $1 }.squareRoot() * y.reduce(0) { $0 + $1 * $1 }.squareRoot())
    }

    @Test(
        "few-shot by class prototypes: each class's examples averaged, the row's own text left out; every text sent once in a run; a rerun sends nothing and writes the same bytes"
    )
    func prototypes() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        let pool = try Self.writePool(ws)
        let stub = try await StubEngine.start()
        let config = try Self.config(
            ws, baseURL: stub.baseURL,
            extra: "    examples: {path: \(ws.path("data/pool.jsonl")), label_field: topic}")
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let lines = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "topic"))
        var chosen: Set<String> = []
        for (i, line) in lines.enumerated() {
            let text = TestWorkspace.reviewText(i)
            let row = Self.unit(StubEngine.embedding(of: "query: " + text))
            let similarities = Self.labels.map { label in
                let members = pool.filter { $0.label == label && $0.text != text }
                var sum = [Double](repeating: 0, count: row.count)
                for member in members {
                    for (d, x) in Self.unit(StubEngine.embedding(of: "query: " + member.text)).enumerated() {
                        sum[d] += x
                    }
                }
                return Self.cosine(row, sum)
            }
            let best = similarities.indices.max { similarities[$0] < similarities[$1] }!
            #expect(line["label"]?.stringValue == Self.labels[best], "row \(i)")
            chosen.insert(Self.labels[best])
            for (label, similarity) in zip(Self.labels, similarities) {
                #expect(abs((line["scores"]?[label]?.doubleValue ?? 9) - similarity) < 1e-5, "row \(i) \(label)")
            }
        }
        #expect(chosen.count > 1)
        // Row 3 is in the pool: with its own example it would score 1 against it; left out, its
        // `price` prototype is the other three examples'.
        // 12 rows, 4 labels, 13 examples (row 3's text is a row and an example: one request).
        let sent = stub.embeddingRequests.flatMap { $0 }
        #expect(sent.count == 28 && Set(sent).count == 28, "\(sent.count) sent")
        let resolved = try String(contentsOfFile: report.runDirectory.path + "/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains(try ContentHash.hexOfFile(atPath: ws.path("data/pool.jsonl"))))

        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.embeddingRequests.flatMap { $0 }.count == 28)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: second.runDirectory.outputPath(stage: "topic")))
                == Data(contentsOf: URL(fileURLWithPath: report.runDirectory.outputPath(stage: "topic"))))
        // The run's resolved config pins the pool. Read back (diff, report) it still loads, with
        // the stage unable to label as the run did; as a config to run, it is refused, naming the file.
        try ws.write("data/pool.jsonl", "{\"text\": \"other\", \"topic\": \"price\"}\n")
        let resolvedPath = report.runDirectory.path + "/config.resolved.yaml"
        let readBack = try RunConfig.load(file: resolvedPath, resolved: true)
        let stale = (readBack.stages[0].options as? ClassifyOptions)?.examples?.stale
        #expect(stale?.contains("changed since the run") == true, "\(stale ?? "")")
        let changed = #expect(throws: LabelForgeError.self) {
            try RunConfig.load(file: try ws.write("again.yaml", String(contentsOfFile: resolvedPath, encoding: .utf8)))
        }
        #expect(changed?.message.contains("changed since the run") == true, "\(changed?.message ?? "")")
    }

    @Test("few-shot by the nearest examples' vote: shares of exp(similarity / temperature) over the k nearest")
    func nearestNeighbours() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        let pool = try Self.writePool(ws)
        let stub = try await StubEngine.start()
        let config = try Self.config(
            ws, baseURL: stub.baseURL,
            extra: "    examples: {path: \(ws.path("data/pool.jsonl")), label_field: topic, vote: knn, neighbours: 3}")
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        for (i, line) in try StageGraphTests.lines(report.runDirectory.outputPath(stage: "topic")).enumerated() {
            let text = TestWorkspace.reviewText(i)
            let row = Self.unit(StubEngine.embedding(of: "query: " + text))
            let nearest = pool.filter { $0.text != text }
                .map { ($0.label, Self.cosine(row, Self.unit(StubEngine.embedding(of: "query: " + $0.text)))) }
                .sorted { $0.1 > $1.1 }.prefix(3)
            var votes: [String: Double] = [:]
            for (label, similarity) in nearest {
                votes[label, default: 0] += exp((similarity - nearest.first!.1) / 0.05)
            }
            let total = votes.values.reduce(0, +)
            let best = Self.labels.max { (votes[$0] ?? 0) < (votes[$1] ?? 0) }!
            #expect(line["label"]?.stringValue == best, "row \(i)")
            #expect(abs((line["confidence"]?.doubleValue ?? 9) - (votes[best] ?? 0) / total) < 1e-5)
            #expect(abs((line["scores"]?["shipping"]?.doubleValue ?? 9) - (votes["shipping"] ?? 0) / total) < 1e-5)
        }
    }

    @Test("a pool line without text, or with a label the stage lacks, is refused with its file and line")
    func poolErrors() throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 2)
        let config = try Self.config(
            ws, baseURL: "http://127.0.0.1:9", extra: "    examples: {path: data/pool.jsonl, label_field: topic}")
        try ws.write(
            "data/pool.jsonl", "{\"text\": \"a\", \"topic\": \"price\"}\n{\"text\": \"b\", \"topic\": \"color\"}\n")
        let unknown = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: config) }
        #expect(
            unknown?.message.contains("pool.jsonl line 2: label 'color' is not one of the stage's labels") == true,
            "\(unknown?.message ?? "")")
        try ws.write("data/pool.jsonl", "{\"text\": \"a\", \"topic\": \"price\"}\n{\"topic\": \"price\"}\n")
        let empty = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: config) }
        #expect(empty?.message.contains("pool.jsonl line 2: no text in 'text'") == true, "\(empty?.message ?? "")")
    }

    @Test(
        "a cascade: rows the embedding is sure of keep its label, the rest go to the chat model; each records its route; a rerun sends nothing"
    )
    func cascade() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 12)
        try ws.writePromptPack()
        let stub = try await StubEngine.start { _ in .content("service") }
        // The embedding's confidences, as `nearestLabel` computes them; the threshold splits them.
        let labelVectors = Self.labels.map { StubEngine.embedding(of: "a review about " + $0) }
        let confidences = (0..<12).map { i in
            let row = StubEngine.embedding(of: "query: " + TestWorkspace.reviewText(i))
            let similarities = labelVectors.map { VectorSearch.cosine(row, $0) }
            let weights = similarities.map { exp(($0 - similarities.max()!) / 0.05) }
            return weights.max()! / weights.reduce(0, +)
        }
        let below = confidences.sorted()[6]
        let config = try ws.write(
            "cascade.yaml",
            try String(contentsOfFile: Self.config(ws, baseURL: stub.baseURL), encoding: .utf8)
                .replacingOccurrences(
                    of: "cache: {", with: "prompts: {pack: \(ws.path("prompts"))}\ncache: {"
                )
                .replacingOccurrences(
                    of: "max_retries: 0}\n",
                    with:
                        "max_retries: 0}\n  - {name: chat, kind: openai, dialect: vllm, base_url: \"\(stub.baseURL)\", "
                        + "model: {id: stub-model, revision: r1}, max_retries: 0}\n")
                + "    fallback: {below: \(below), engine: chat}\n")
        let report = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(report.status == "completed" && report.rowsFailed == 0)
        let lines = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "topic"))
        for (i, line) in lines.enumerated() {
            let sure = Answers.rounded(confidences[i]) >= below
            #expect(line["route"]?.stringValue == (sure ? "embedding" : "llm"), "row \(i)")
            #expect(line["embedding_confidence"]?.doubleValue.map { abs($0 - confidences[i]) < 1e-5 } == true)
            if sure {
                #expect(line["label"] == line["embedding_label"])
            } else {
                #expect(line["label"] == "service")
            }
        }
        let toChat = lines.filter { $0["route"] == "llm" }.count
        #expect(
            toChat == 6 && stub.chatRequests == 6, "\(toChat) rows to the chat model, \(stub.chatRequests) requests")
        // The report's routes: an LLM row made two requests (its text's vector, then the chat).
        let directory = report.runDirectory.path
        let routes = try #require(
            RouteSummary.compute(
                directory: directory, config: try RunConfig.load(file: config),
                artifacts: try RunArtifacts.load(directory)
            ).first)
        #expect(routes.routes.map(\.name) == ["embedding", "llm"])
        // The 4 label texts are listed once, by the row that asked for them first.
        #expect(routes.routes.map(\.rows) == [6, 6] && routes.routes.reduce(0) { $0 + $1.requests } == 6 + 12 + 4)
        #expect(try HTMLReport.run(directory: directory).contains("topic: routes"))
        // Review where it pays: the least confident first; the rows the two routes disagree on.
        let export = try ReviewExport(run: try RunArtifacts.load(directory), stage: "topic")
        let leastSure = try export.rows(order: .confidence, limit: 4)
        let confidencesOut = lines.compactMap { $0["confidence"]?.doubleValue }
        #expect(
            leastSure.compactMap { $0.output["confidence"]?.doubleValue } == Array(confidencesOut.sorted().prefix(4)))
        let disagreements = try export.rows(acrossRoutes: true, order: .input)
        #expect(
            disagreements.map(\.rowID)
                == lines.filter { $0["route"] == "llm" && $0["embedding_label"] != "service" }.compactMap {
                    $0["row_id"]?.stringValue
                })
        #expect(!disagreements.isEmpty)
        let second = try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        #expect(stub.chatRequests == 6 && second.cacheHitRate == 1)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: second.runDirectory.outputPath(stage: "topic")))
                == Data(contentsOf: URL(fileURLWithPath: report.runDirectory.outputPath(stage: "topic"))))
    }

    @Test(
        "calibrate: a planted overconfidence (labels no better than chance, confidences high) is brought down on held-out rows, by temperature and by isotonic"
    )
    func calibrate() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 400)
        let stub = try await StubEngine.start()
        for method in ["temperature", "isotonic"] {
            let config = try ws.write(
                "calibrate-\(method).yaml",
                """
                run: {name: calibrate, seed: 5}
                dataset: {path: \(ws.path("data/reviews.jsonl")), id_field: id}
                engines:
                  - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
                cache: {path: \(ws.path("cache.sqlite"))}
                stages:
                  - {id: mood, type: classify, method: embedding, field: text, labels: [positive, negative, neutral], gold_field: sentiment, temperature: 0.01}
                  - {id: calibrated, type: calibrate, stage: mood, gold_field: sentiment, method: \(method)}
                """)
            let report = try await Runner(
                options: RunOptions(configPath: config, runsDir: ws.path("runs")), logger: CapturedLogs().logger
            ).run()
            #expect(report.status == "completed" && report.rowsFailed == 0)
            let outputs = report.runDirectory.outputsPath
            let fitted = try JSONValue.parse(
                Data(contentsOf: URL(fileURLWithPath: outputs + "/calibrated.calibration.json")))
            let before = try #require(fitted["ece_before"]?.doubleValue)
            let after = try #require(fitted["ece_after"]?.doubleValue)
            #expect(before > 0.2 && after < before / 2, "\(method): ECE \(before) → \(after)")
            #expect(fitted["method"] == .string(method))
            let mood = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "mood"))
            let calibrated = try StageGraphTests.lines(report.runDirectory.outputPath(stage: "calibrated"))
            #expect(calibrated.count == 400)
            for (upstream, line) in zip(mood, calibrated) {
                #expect(line["label"] == upstream["label"] && line["raw_confidence"] == upstream["confidence"])
            }
            let splits = calibrated.map { $0["split"]?.stringValue ?? "" }
            #expect(Set(splits) == ["fit", "eval"])
            #expect(fitted["fit_rows"] == .int(Int64(splits.filter { $0 == "fit" }.count)))
            #expect(
                try String(contentsOfFile: report.runDirectory.reportPath, encoding: .utf8).contains(
                    "## Calibration: calibrated"))
            if method == "isotonic" {
                // Not a cascade: route disagreements are refused, naming the stage.
                let export = try ReviewExport(run: try RunArtifacts.load(report.runDirectory.path), stage: "mood")
                let notCascade = #expect(throws: LabelForgeError.self) {
                    _ = try export.rows(acrossRoutes: true, order: .input)
                }
                #expect(notCascade?.message.contains("stage 'mood' is not a cascade") == true)
                // Without gold_field there is nothing to fit on: refused.
                let noGold = #expect(throws: LabelForgeError.self) {
                    try RunConfig.load(
                        file: try ws.write(
                            "nogold.yaml",
                            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                                of: "stage: mood, gold_field: sentiment,", with: "stage: mood,")))
                }
                #expect(
                    noGold?.message.contains("a calibrate stage needs 'gold_field'") == true, "\(noGold?.message ?? "")"
                )
            }
        }
    }
}
