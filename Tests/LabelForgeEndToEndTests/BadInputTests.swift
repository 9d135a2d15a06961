import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

/// One test per row of the table in docs/errors.md: each bad input is set up here, run through
/// the CLI, and must give exactly the documented message and exit code: a refused run (stderr,
/// and no run directory left behind) or a per-row failure (the row's error in the manifest, the
/// other rows done).
@Suite(.serialized) struct BadInputTests {
    /// A row of docs/errors.md's table.
    struct Row: Sendable, CustomTestStringConvertible {
        var input: String
        var outcome: String
        var message: String
        var exitCode: Int32
        var testDescription: String { input }
    }

    /// The table's rows, read from the doc, so that doc and behaviour cannot drift apart.
    static let table: [Row] = {
        let doc =
            (try? String(contentsOfFile: LabelForgeBinary.projectRoot() + "/docs/errors.md", encoding: .utf8)) ?? ""
        return doc.split(separator: "\n").compactMap { line -> Row? in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count == 6, cells[0].isEmpty, cells[5].isEmpty, let code = Int32(cells[4]),
                cells[3].hasPrefix("`"), cells[3].hasSuffix("`")
            else { return nil }
            return Row(
                input: cells[1], outcome: cells[2], message: String(cells[3].dropFirst().dropLast()), exitCode: code)
        }
    }()

    static let inputs = [
        "malformed YAML", "unknown key", "wrong type", "cycle in the stage graph", "missing dataset", "empty dataset",
        "dataset that is a directory", "non-UTF-8 text", "10 MB row", "broken CSV quoting", "duplicate ids",
        "JSONL line that is not an object", "image that lies about its type", "prompt pack without a template",
        "engine URL that is not HTTP(S)", "model file that is not GGUF", "Ray engine with nowhere for its answers",
        "text longer than the embedding model's window, with truncate: false", "stage that needs an engine, no engines",
        "stage that renders a template, no prompt pack", "truncated Parquet file",
        "Parquet file without a column that columns names", "Parquet shards that type a column differently",
        "damaged Parquet page", "batch engine without a provider", "batch setting on an engine of another kind",
        "budget of zero dollars",
    ]

    /// Writes Parquet files with pyarrow (from the `.venv` that `make setup` fills): the reviews of
    /// `data/reviews.jsonl` as `data/reviews.parquet` (row groups of one row), a copy cut in half, a folder of
    /// two shards whose `score` is a float in one and a string in the other, and a copy whose second
    /// row group's `text` page header is damaged.
    static func writeParquet(_ ws: TestWorkspace) throws {
        let script = try ws.write(
            "parquet.py",
            #"""
            import json, os, sys, pyarrow as pa, pyarrow.parquet as pq
            root = sys.argv[1]
            rows = [json.loads(line) for line in open(root + "/data/reviews.jsonl")]
            table = pa.Table.from_pylist(rows)
            pq.write_table(table, root + "/data/reviews.parquet", row_group_size=1)
            whole = open(root + "/data/reviews.parquet", "rb").read()
            open(root + "/data/cut.parquet", "wb").write(whole[: len(whole) // 2])
            os.makedirs(root + "/data/shards/data")
            scored = table.append_column("score", pa.array([0.5] * len(rows)))
            pq.write_table(scored.slice(0, 1), root + "/data/shards/data/train-00000-of-00002.parquet")
            odd = table.slice(1).append_column("score", pa.array(["high"] * (len(rows) - 1)))
            pq.write_table(odd, root + "/data/shards/data/train-00001-of-00002.parquet")
            column = pq.ParquetFile(root + "/data/reviews.parquet").metadata.row_group(1).column(1)
            start = column.dictionary_page_offset or column.data_page_offset
            damaged = bytearray(whole)
            damaged[start:start + 6] = bytes(b ^ 0xFF for b in damaged[start:start + 6])
            open(root + "/data/damaged.parquet", "wb").write(damaged)
            """#)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ProjectPaths.venvPython(), "run make setup"))
        process.arguments = [script, ws.root]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "pyarrow writes the Parquet inputs")
    }

    @Test("docs/errors.md has a row for every bad input this suite sets up, and no other")
    func tableIsComplete() {
        #expect(Self.table.map(\.input).sorted() == Self.inputs.sorted())
    }

    /// Writes a config (`stages` under a stub engine at `baseURL`) with `dataset` as its dataset.
    func config(
        _ ws: TestWorkspace, baseURL: String, dataset: String = "data/reviews.jsonl", extra: String = "",
        engine: String? = nil, stages: String? = nil
    ) throws {
        try ws.write(
            "config.yaml",
            """
            run: {seed: 1}
            dataset: {path: \(dataset), id_field: id\(extra)}
            engines:
              - \(engine ?? "{name: e, kind: openai, dialect: vllm, base_url: \"\(baseURL)\", model: {id: m, revision: r}, max_retries: 0}")
            prompts: {pack: prompts}
            stages:
            \(stages ?? "  - {id: sentiment, type: classify, template: classify, labels: [positive, negative, neutral]}")
            """)
    }

    /// Sets up the bad input named `input` in `ws`; returns the row whose failure is documented
    /// (for per-row failures).
    func setUp(_ input: String, in ws: TestWorkspace, baseURL: String) throws -> String? {
        try ws.writeReviews(count: 3)
        try ws.writePromptPack()
        switch input {
        case "malformed YAML":
            try ws.write("config.yaml", "run: {seed: 1\ndataset: [data/reviews.jsonl\n")
        case "unknown key":
            try config(ws, baseURL: baseURL, extra: ", id_feild: id")
        case "wrong type":
            try config(ws, baseURL: baseURL, extra: ", max_image_bytes: lots")
        case "cycle in the stage graph":
            try ws.write("prompts/ask.mustache", "About {{text}}, given {{answer.label}}\n")
            try ws.write("prompts/answer.mustache", "Answer {{ask.label}}\n")
            try config(
                ws, baseURL: baseURL,
                stages: """
                      - {id: ask, type: classify, template: ask, labels: [a, b]}
                      - {id: answer, type: classify, template: answer, labels: [a, b]}
                    """)
        case "missing dataset":
            try config(ws, baseURL: baseURL, dataset: "data/nothing.jsonl")
        case "empty dataset":
            try ws.write("data/empty.jsonl", "")
            try config(ws, baseURL: baseURL, dataset: "data/empty.jsonl")
        case "dataset that is a directory":
            try FileManager.default.createDirectory(atPath: ws.path("data/folder"), withIntermediateDirectories: true)
            try ws.write("data/folder/notes.txt", "not an image\n")
            try config(ws, baseURL: baseURL, dataset: "data/folder")
        case "non-UTF-8 text":
            var bytes = Data(#"{"id":"r0","text":"fine"}"#.utf8 + [0x0A])
            bytes += Data(#"{"id":"r1","text":"caf"#.utf8) + Data([0xE9]) + Data(#""}"#.utf8 + [0x0A])
            try bytes.write(to: URL(fileURLWithPath: ws.path("data/latin1.jsonl")))
            try config(ws, baseURL: baseURL, dataset: "data/latin1.jsonl")
        case "10 MB row":
            let big = String(repeating: "word ", count: 2_000_000)
            try ws.write(
                "data/big.jsonl",
                #"{"id":"r0","text":"fine"}"# + "\n" + #"{"id":"r1","text":"\#(big)"}"# + "\n"
                    + #"{"id":"r2","text":"also fine"}"# + "\n")
            try config(ws, baseURL: baseURL, dataset: "data/big.jsonl")
            return "r1"
        case "broken CSV quoting":
            try ws.write("data/reviews.csv", "id,text\nr0,\"fine\nr1,bad\n")
            try config(ws, baseURL: baseURL, dataset: "data/reviews.csv")
        case "duplicate ids":
            try ws.write("data/dup.jsonl", #"{"id":"r0","text":"one"}"# + "\n" + #"{"id":"r0","text":"two"}"# + "\n")
            try config(ws, baseURL: baseURL, dataset: "data/dup.jsonl")
            return "r0#2"
        case "JSONL line that is not an object":
            try ws.write("data/list.jsonl", #"{"id":"r0","text":"fine"}"# + "\n[1, 2]\n")
            try config(ws, baseURL: baseURL, dataset: "data/list.jsonl")
        case "image that lies about its type":
            try ws.write("data/photo.png", "this is text, not a PNG\n")
            try FileManager.default.copyItem(
                atPath: LabelForgeBinary.projectRoot() + "/data/shapes/images/triangle/shape_020.png",
                toPath: ws.path("data/real.png"))
            try ws.write(
                "data/images.jsonl",
                #"{"id":"r0","image":"photo.png"}"# + "\n" + #"{"id":"r1","image":"real.png"}"# + "\n")
            try ws.write("prompts/caption.mustache", "Describe the image.\n")
            try config(
                ws, baseURL: baseURL, dataset: "data/images.jsonl", extra: ", image_fields: [image]",
                stages: "  - {id: caption, type: caption, template: caption}")
            return "r0"
        case "prompt pack without a template":
            try config(
                ws, baseURL: baseURL,
                stages: "  - {id: sentiment, type: classify, template: sentiment, labels: [positive, negative]}")
        case "engine URL that is not HTTP(S)":
            try config(ws, baseURL: "ftp://models.example.com/v1")
        case "batch engine without a provider":
            try config(ws, baseURL: baseURL, engine: "{name: e, kind: batch, model: {id: gpt-4o-mini, revision: r}}")
        case "batch setting on an engine of another kind":
            try config(
                ws, baseURL: baseURL,
                engine: "{name: e, kind: openai, base_url: \"\(baseURL)\", poll_s: 5, model: {id: m, revision: r}}")
        case "budget of zero dollars":
            try config(ws, baseURL: baseURL)
            let text = try String(contentsOfFile: ws.path("config.yaml"), encoding: .utf8)
            try ws.write("config.yaml", text + "\nbudget: {usd: 0}\n")
        case "Ray engine with nowhere for its answers":
            try config(
                ws, baseURL: baseURL,
                engine:
                    "{name: e, kind: ray, address: \"http://127.0.0.1:8265\", base_url: \"\(baseURL)\", model: {id: m, revision: r}}"
            )
        case "model file that is not GGUF":
            try ws.write("models/model.gguf", "<html>404 Not Found</html>\n")
            try config(
                ws, baseURL: baseURL,
                engine: "{name: local, kind: local, model: {id: smollm2, path: models/model.gguf}}")
        case "text longer than the embedding model's window, with truncate: false":
            // 4,202 of the stub's tokens (2 special ones included), over its max_model_len of 4,096.
            let long = String(repeating: "word ", count: 2100)
            try ws.write(
                "data/long.jsonl",
                #"{"id":"r0","text":"fine"}"# + "\n" + #"{"id":"r1","text":"\#(long)"}"# + "\n"
                    + #"{"id":"r2","text":"also fine"}"# + "\n")
            try config(
                ws, baseURL: baseURL, dataset: "data/long.jsonl",
                engine:
                    "{name: e, kind: openai, dialect: vllm, task: embed, base_url: \"\(baseURL)\", model: {id: stub-model, revision: r}, max_retries: 0}",
                stages: "  - {id: vec, type: embed, field: text, truncate: false}")
            return "r1"
        case "stage that needs an engine, no engines":
            try ws.write(
                "config.yaml",
                "dataset: {path: data/reviews.jsonl, id_field: id}\nstages:\n  - {id: vec, type: embed, field: text}\n")
        case "stage that renders a template, no prompt pack":
            try ws.write(
                "config.yaml",
                """
                dataset: {path: data/reviews.jsonl, id_field: id}
                engines:
                  - {name: e, kind: openai, dialect: vllm, base_url: "\(baseURL)", model: {id: m, revision: r}}
                stages:
                  - {id: sentiment, type: classify, labels: [positive, negative]}
                """)
        case "truncated Parquet file":
            try Self.writeParquet(ws)
            try config(ws, baseURL: baseURL, dataset: "data/cut.parquet")
        case "Parquet file without a column that columns names":
            try Self.writeParquet(ws)
            try config(ws, baseURL: baseURL, dataset: "data/reviews.parquet", extra: ", columns: [id, text, colour]")
        case "Parquet shards that type a column differently":
            try Self.writeParquet(ws)
            try config(ws, baseURL: baseURL, dataset: "data/shards", extra: ", split: train")
        case "damaged Parquet page":
            try Self.writeParquet(ws)
            try config(ws, baseURL: baseURL, dataset: "data/damaged.parquet")
        default:
            Issue.record("no setup for '\(input)'")
        }
        return nil
    }

    @Test("a bad input gives the documented message and exit code", arguments: table)
    func badInput(_ row: Row) async throws {
        let stub = try await StubEngine.start()
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        let failingRow = try setUp(row.input, in: ws, baseURL: stub.baseURL)
        let result = try await CLI.run(
            ["run", "--config", "config.yaml", "--runs-dir", "runs", "--cache-path", ws.path("c.sqlite")],
            workingDirectory: ws.root)
        let expected = row.message.replacingOccurrences(of: "<dir>", with: ws.root)
            .replacingOccurrences(of: "<engine>", with: stub.baseURL)
        #expect(result.exitCode == row.exitCode, "\(row.input): \(result.stderr)")
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: ws.path("runs"))) ?? []
        if row.exitCode == 0 {
            let dir = ws.path("runs/") + (try #require(runs.first))
            var messages: [String: String] = [:]
            var rows: Set<String> = []
            for line in try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n") {
                let record = try JSONValue.parse(String(line))
                guard record["type"] == "row", let id = record["row_id"]?.stringValue else { continue }
                rows.insert(id)
                if let error = record["error"], !error.isNull {
                    messages[id] = "\(error["class"]?.textForm ?? ""): \(error["message"]?.textForm ?? "")"
                }
            }
            let id = try #require(failingRow)
            if row.outcome == "row failed" {
                #expect(messages[id] == expected, "\(row.input)")
                #expect(messages.count == 1, "only the bad row fails: \(messages)")
            } else {
                #expect(rows.contains(id) && messages.isEmpty, "\(rows) \(messages)")
                #expect(result.stderr.contains(expected), "\(row.input): \(result.stderr)")
            }
        } else {
            #expect(result.stderr == "error: \(expected)\n", "\(row.input)")
            #expect(runs.isEmpty, "a refused run leaves no run directory: \(runs)")
        }
    }
}
