import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// Parquet datasets, read by `scripts/parquet_io.py` (polars) from fixtures that pyarrow writes:
/// nested, list, null and image columns over several row groups, a Hugging Face dataset folder,
/// each against its JSONL twin.
@Suite struct ParquetTests {
    /// Writes the fixtures with pyarrow (from the `.venv` that `make setup` and the test
    /// dependencies fill): `data/rows.parquet` (7 rows, row groups of 3) and its JSONL twin
    /// `data/rows.jsonl`, a dataset folder `hf/` with two `train` shards and a `test` one, a
    /// truncated file and a shard whose `score` is a string.
    static func fixtures(_ ws: TestWorkspace) throws {
        let python = try #require(ProjectPaths.venvPython(), "run `make setup`")
        let script = try ws.write(
            "fixtures.py",
            #"""
            import base64, json, struct, sys, zlib, pyarrow as pa, pyarrow.parquet as pq
            def png(r, g, b):
                def chunk(kind, data):
                    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
                raw = b"\x00" + bytes([r, g, b])
                return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
            rows = []
            for i in range(7):
                rows.append({
                    "id": f"r{i}", "text": f"Review {i}: \"fine\" & café ✓",
                    "tags": None if i == 3 else [f"t{j}" for j in range(i % 3)],
                    "meta": None if i == 4 else {"k": i, "v": None if i % 2 else f"v{i}"},
                    "score": None if i == 5 else i / 10,
                    "img": {"bytes": png(i * 30, 0, 255 - i * 30), "path": f"img{i}.png"},
                })
            table = pa.table({
                "id": [r["id"] for r in rows], "text": [r["text"] for r in rows],
                "tags": pa.array([r["tags"] for r in rows], pa.list_(pa.string())),
                "meta": pa.array([r["meta"] for r in rows], pa.struct([("k", pa.int64()), ("v", pa.string())])),
                "score": pa.array([r["score"] for r in rows], pa.float64()),
                "img": pa.array([r["img"] for r in rows], pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            })
            out = sys.argv[1]
            pq.write_table(table, out + "/data/rows.parquet", row_group_size=3)
            with open(out + "/data/rows.jsonl", "w", encoding="utf-8") as f:
                for r in rows:
                    r = dict(r, img={"base64": base64.b64encode(r["img"]["bytes"]).decode(), "path": r["img"]["path"]})
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            import os
            os.makedirs(out + "/hf/data", exist_ok=True)
            pq.write_table(table.slice(0, 4), out + "/hf/data/train-00000-of-00002.parquet", row_group_size=2)
            pq.write_table(table.slice(4), out + "/hf/data/train-00001-of-00002.parquet")
            pq.write_table(table.slice(0, 1), out + "/hf/data/test-00000-of-00001.parquet")
            whole = open(out + "/data/rows.parquet", "rb").read()
            open(out + "/data/truncated.parquet", "wb").write(whole[: len(whole) // 2])
            os.makedirs(out + "/mixed/data", exist_ok=True)
            pq.write_table(table.slice(0, 2), out + "/mixed/data/train-00000-of-00002.parquet")
            odd = table.slice(2).set_column(4, "score", pa.array(["high"] * 5))
            pq.write_table(odd, out + "/mixed/data/train-00001-of-00002.parquet")
            os.makedirs(out + "/lacking/data", exist_ok=True)
            pq.write_table(table.slice(0, 2), out + "/lacking/data/train-00000-of-00002.parquet")
            pq.write_table(table.slice(2).drop_columns(["score"]), out + "/lacking/data/train-00001-of-00002.parquet")
            """#)
        try ws.write("data/.keep", "")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, ws.path(".")]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "the fixtures script failed (pyarrow: scripts/test_deps.sh)")
    }

    static func config(_ ws: TestWorkspace, dataset: String, name: String = "config.yaml") throws -> String {
        try ws.write(
            name,
            """
            run: {name: parquet, seed: 3}
            dataset: {\(dataset), image_fields: [img]}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: kept, type: filter, keep: {field: score, gte: 0.2}}
            """)
    }

    static func run(_ config: String, _ ws: TestWorkspace, limit: Int? = nil) async throws -> RunReport {
        try await Runner(
            options: RunOptions(configPath: config, runsDir: ws.path("runs"), limit: limit),
            logger: CapturedLogs().logger
        ).run()
    }

    static func bytes(_ report: RunReport, _ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: report.runDirectory.path + "/" + name))
    }

    @Test(
        "a Parquet file with nested, list, null and image columns over 3 row groups runs as its JSONL twin does, byte for byte; images are hashed as their bytes"
    )
    func twin() async throws {
        let ws = try TestWorkspace()
        try Self.fixtures(ws)
        let parquet = try await Self.run(
            try Self.config(ws, dataset: "path: \(ws.path("data/rows.parquet"))", name: "p.yaml"), ws)
        let jsonl = try await Self.run(
            try Self.config(ws, dataset: "path: \(ws.path("data/rows.jsonl"))", name: "j.yaml"), ws)
        #expect(parquet.status == "completed" && jsonl.status == "completed")
        #expect(parquet.rowsFailed == 0, "every image loads")
        for name in ["outputs/kept.jsonl", "dataset.jsonl"] {
            #expect(try Self.bytes(parquet, name) == Self.bytes(jsonl, name), "\(name)")
        }
        // Kept: the rows whose score is at least 0.2 (rows 2, 3, 4 and 6; row 5's is null).
        let kept = try StageGraphTests.lines(parquet.runDirectory.path + "/dataset.jsonl")
        #expect(kept.compactMap { $0["input"]?["id"]?.stringValue } == ["r2", "r3", "r4", "r6"])
        #expect(kept.first?["input"]?["tags"] == ["t0", "t1"] && kept[1]["input"]?["tags"] == .null)
        #expect(kept[2]["input"]?["meta"] == .null && kept[0]["input"]?["meta"] == ["k": 2, "v": "v2"])
        let resolved = try String(
            contentsOfFile: parquet.runDirectory.path + "/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains("format: parquet"))
        // --limit stops the reader early, without an error.
        let limited = try await Self.run(
            try Self.config(ws, dataset: "path: \(ws.path("data/rows.parquet"))", name: "p.yaml"), ws, limit: 2)
        #expect(limited.status == "completed" && limited.rows == 2, "\(limited.status)")
    }

    @Test("a Hugging Face dataset folder: the split's shards in order, as one dataset; columns reads only those named")
    func datasetFolder() async throws {
        let ws = try TestWorkspace()
        try Self.fixtures(ws)
        let folder = try await Self.run(
            try Self.config(ws, dataset: "path: \(ws.path("hf")), split: train", name: "hf.yaml"), ws)
        let file = try await Self.run(
            try Self.config(ws, dataset: "path: \(ws.path("data/rows.parquet"))", name: "p.yaml"), ws)
        #expect(try Self.bytes(folder, "dataset.jsonl") == Self.bytes(file, "dataset.jsonl"))
        let test = try await Self.run(
            try Self.config(ws, dataset: "path: \(ws.path("hf")), split: test", name: "test.yaml"), ws)
        #expect(test.rows == 1)

        let narrow = try await Self.run(
            try Self.config(
                ws, dataset: "path: \(ws.path("data/rows.parquet")), columns: [id, score, img]", name: "n.yaml"), ws)
        let rows = try StageGraphTests.lines(narrow.runDirectory.path + "/dataset.jsonl")
        #expect(
            rows.count == 4
                && rows.allSatisfy {
                    Set($0["input"]?.objectValue.map { Array($0.keys) } ?? []) == ["id", "score", "img"]
                })
    }

    @Test(
        "bad Parquet: a truncated file, a missing column, a column typed differently in two shards, a split the folder lacks: each named"
    )
    func badInput() async throws {
        let ws = try TestWorkspace()
        try Self.fixtures(ws)
        let cases: [(String, [String])] = [
            (
                "path: \(ws.path("data/truncated.parquet"))",
                [ws.path("data/truncated.parquet"), "not a readable Parquet file"]
            ),
            ("path: \(ws.path("data/rows.parquet")), columns: [id, colour]", ["no column 'colour'", "rows.parquet"]),
            (
                "path: \(ws.path("mixed"))",
                ["column 'score'", "train-00001-of-00002.parquet", "train-00000-of-00002.parquet"]
            ),
            (
                "path: \(ws.path("lacking"))",
                ["train-00001-of-00002.parquet: no column 'score'", "train-00000-of-00002.parquet has"]
            ),
            (
                "path: \(ws.path("hf")), split: validation",
                ["no Parquet files of split 'validation'", "Its splits: test, train"]
            ),
        ]
        for (i, (dataset, expected)) in cases.enumerated() {
            let error = await #expect(throws: LabelForgeError.self) {
                _ = try await Self.run(try Self.config(ws, dataset: dataset, name: "bad\(i).yaml"), ws)
            }
            for text in expected {
                #expect(error?.message.contains(text) == true, "case \(i): \(error?.message ?? "")")
            }
        }
    }

    @Test(
        "outputs: {format: both} writes outputs/<stage>.parquet and dataset.parquet, which pyarrow reads as the JSONL (absent keys as nulls); their digests are in the summary; a rerun writes the same bytes"
    )
    func parquetOutputs() async throws {
        let ws = try TestWorkspace()
        try Self.fixtures(ws)
        let config = try ws.write(
            "both.yaml",
            String(
                contentsOfFile: try Self.config(ws, dataset: "path: \(ws.path("data/rows.jsonl"))"), encoding: .utf8)
                + "\noutputs: {format: both}\n")
        let first = try await Self.run(config, ws)
        let second = try await Self.run(config, ws)
        let directory = first.runDirectory.path
        for name in ["outputs/kept.parquet", "dataset.parquet"] {
            #expect(try Self.bytes(first, name) == Self.bytes(second, name), "\(name)")
        }
        let summary = try #require(try RunArtifacts.load(directory).summary)
        #expect(
            summary.outputDigests?["dataset.parquet"]
                == ContentHash.prefixed(try ContentHash.hexOfFile(atPath: directory + "/dataset.parquet")))
        #expect(summary.outputDigests?["outputs/kept.parquet"] != nil)
        #expect(
            try String(contentsOfFile: directory + "/config.resolved.yaml", encoding: .utf8).contains("format: both"))
        let python = try #require(ProjectPaths.venvPython())
        let script = try ws.write(
            "same.py",
            #"""
            import json, sys, pyarrow.parquet as pq
            def strip(v):
                if isinstance(v, dict): return {k: strip(x) for k, x in v.items() if x is not None}
                if isinstance(v, list): return [strip(x) for x in v]
                return v
            for jsonl in sys.argv[1:]:
                rows = [strip(json.loads(l)) for l in open(jsonl)]
                table = [strip(r) for r in pq.read_table(jsonl[:-6] + ".parquet").to_pylist()]
                assert rows == table, jsonl
                assert rows, jsonl
            """#)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, directory + "/outputs/kept.jsonl", directory + "/dataset.jsonl"]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "pyarrow reads each Parquet view as its JSONL")
        // Without outputs:, no Parquet and no digest for one.
        let plain = try await Self.run(try Self.config(ws, dataset: "path: \(ws.path("data/rows.jsonl"))"), ws)
        #expect(!FileManager.default.fileExists(atPath: plain.runDirectory.path + "/dataset.parquet"))
    }

    @Test(
        "the Parquet views take the types the stages declare (labels as strings, confidences as float64, an error struct) and an embed stage's vectors as fixed-size lists of float32, equal to its .npy by index"
    )
    func declaredTypes() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 6)
        try ws.writePromptPack()
        let stub = try await StubEngine.start()
        let config = try EmbedStageTests.config(
            ws, baseURL: stub.baseURL, batchSize: 4, extra: "outputs: {format: parquet}")
        let report = try await Self.run(config, ws)
        #expect(report.status == "completed")
        let directory = report.runDirectory.path
        let python = try #require(ProjectPaths.venvPython())
        let script = try ws.write(
            "declared_types.py",
            #"""
            import json, struct, sys, pyarrow as pa, pyarrow.parquet as pq
            out = sys.argv[1] + "/outputs/"
            labels = pq.read_schema(out + "sentiment.parquet")
            assert labels.field("label").type in (pa.string(), pa.large_string()), labels
            assert labels.field("confidence").type == pa.float64(), labels
            assert labels.field("error").type.num_fields == 2, labels
            vec = pq.read_table(out + "vec.parquet")
            assert vec.schema.field("vector").type == pa.list_(pa.float32(), 8), vec.schema
            assert vec.schema.field("index").type == pa.int64() and vec.schema.field("norm").type == pa.float64()
            raw = open(out + "vec.npy", "rb").read()
            header = 10 + int.from_bytes(raw[8:10], "little")
            floats = struct.unpack(f"<{(len(raw) - header) // 4}f", raw[header:])
            rows = vec.to_pylist()
            assert len(rows) == 6
            for row in rows:
                assert row["vector"] == list(floats[row["index"] * 8:(row["index"] + 1) * 8]), row
            joined = pq.read_schema(sys.argv[1] + "/dataset.parquet")
            sentiment = joined.field("outputs").type.field("sentiment").type
            assert sentiment.field("confidence").type == pa.float64(), joined
            """#)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, directory]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "the views have the declared types and the vectors")
        let again = try await Self.run(config, ws)
        for name in ["outputs/vec.parquet", "outputs/sentiment.parquet", "dataset.parquet"] {
            #expect(try Self.bytes(report, name) == Self.bytes(again, name), "\(name)")
        }
    }

    @Test(
        "a field of mixed JSON types deep inside a view's column is written as JSON text there alone: the declared fields beside it keep their types"
    )
    func mixedFieldAlone() throws {
        let ws = try TestWorkspace()
        let rows = try ws.write(
            "rows.jsonl",
            #"{"row_id":"a","outputs":{"cls":{"label":"pos","confidence":1},"syn":{"x":1,"l":[1,"a"]}}}"# + "\n"
                + #"{"row_id":"b","outputs":{"cls":{"label":"neg","confidence":0.5},"syn":{"x":"two","l":[2]}}}"#
                + "\n")
        let schema = ColumnType.object([
            "row_id": .string,
            "outputs": .object(["cls": .object(["label": .string, "confidence": .float64]), "syn": .object([:])]),
        ])
        _ = try ParquetWriter.write(rows: rows, to: ws.path("rows.parquet"), schema: schema)
        let script = try ws.write(
            "mixed.py",
            #"""
            import sys, pyarrow as pa, pyarrow.parquet as pq
            table = pq.read_table(sys.argv[1])
            outputs = table.schema.field("outputs").type
            assert outputs.field("cls").type.field("confidence").type == pa.float64(), outputs
            syn = [row["outputs"]["syn"] for row in table.to_pylist()]
            assert syn == [{"x": "1", "l": ["1", '"a"']}, {"x": '"two"', "l": ["2"]}], syn
            """#)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ProjectPaths.venvPython()))
        process.arguments = [script, ws.path("rows.parquet")]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "only outputs.syn's mixed fields are JSON text")
    }
}
