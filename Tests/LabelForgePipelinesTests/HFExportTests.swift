import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `labelforge export --format hf`: a run as a Hugging Face dataset folder, read back by Hugging
/// Face's own `datasets` and by pyarrow (from the `.venv` the test dependencies fill).
@Suite struct HFExportTests {
    @Test(
        "the folder loads with datasets.load_dataset, rows and values as dataset.jsonl has them; the card's YAML has the required keys; pyarrow reads the Parquet back; a second export writes the same bytes"
    )
    func loadsWithDatasets() async throws {
        let ws = try TestWorkspace()
        try ws.writeReviews(count: 9)
        let stub = try await StubEngine.start()
        let config = try EmbeddingTagTests.config(ws, baseURL: stub.baseURL, pool: nil)
        let withGold = try ws.write(
            "gold.yaml",
            String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "    labels: [{name: quality", with: "    gold_field: sentiment\n    labels: [{name: quality"))
        let report = try await Runner(
            options: RunOptions(configPath: withGold, runsDir: ws.path("runs")), logger: CapturedLogs().logger
        ).run()
        await stub.stop()
        #expect(report.status == "completed")
        let run = try RunArtifacts.load(report.runDirectory.path)
        let folder = ws.path("hf")
        let export = try HFExport(run: run).write(to: folder)
        let written = export.files
        #expect(export.warnings.isEmpty, "\(export.warnings)")
        #expect(written == [folder + "/data/train-00000-of-00001.parquet", folder + "/README.md"])
        let parquet = try Data(contentsOf: URL(fileURLWithPath: written[0]))
        _ = try HFExport(run: run).write(to: ws.path("again"))
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: ws.path("again/data/train-00000-of-00001.parquet"))) == parquet)

        // What datasets and pyarrow read, compared with the run's own dataset.jsonl.
        let expected = try StageGraphTests.lines(report.runDirectory.path + "/dataset.jsonl").map(HFExport.record)
        try ws.write("expected.jsonl", expected.map { CanonicalJSON.string(.object($0)) + "\n" }.joined())
        let script = try ws.write(
            "check.py",
            #"""
            import json, sys, yaml, datasets, pyarrow.parquet as pq
            folder, expected = sys.argv[1], [json.loads(l) for l in open(sys.argv[2])]
            ds = datasets.load_dataset(folder)["train"]
            card = open(folder + "/README.md").read().split("---\n")[1]
            meta = yaml.safe_load(card)
            table = pq.read_table(folder + "/data/train-00000-of-00001.parquet").to_pylist()
            print(json.dumps({
                "rows": ds.num_rows, "columns": sorted(ds.column_names), "first": ds[0],
                "same_as_jsonl": table == expected, "keys": sorted(meta.keys()),
                "splits": [f["split"] for f in meta["configs"][0]["data_files"]],
                "features": sorted(f["name"] for f in meta["dataset_info"]["features"]),
                "task_categories": meta["task_categories"], "size_categories": meta["size_categories"],
            }))
            """#)
        let python = try #require(ProjectPaths.venvPython())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, folder, ws.path("expected.jsonl")]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "datasets and pyarrow (scripts/test_deps.sh) read the folder")
        let result = try JSONValue.parse(printed)
        let columns = expected.first.map { $0.keys.sorted() } ?? []
        #expect(result["rows"] == 9)
        #expect(result["columns"] == .array(columns.map(JSONValue.string)))
        #expect(result["features"] == result["columns"])
        #expect(result["first"]?["topic.label"] == expected[0]["topic.label"])
        #expect(result["first"]?["attributes.flag"] == expected[0]["attributes.flag"])
        #expect(result["same_as_jsonl"] == true)
        #expect(
            result["keys"] == ["configs", "dataset_info", "license", "size_categories", "tags", "task_categories"])
        #expect(result["splits"] == ["train"] && result["task_categories"] == ["text-classification"])
        #expect(result["size_categories"] == ["n<1K"])

        // In files of 4 rows: data/train-00000-of-00003.parquet, …, read back in order as one split.
        let sharded = try HFExport(run: run, rowsPerFile: 4).write(to: ws.path("sharded"))
        #expect(
            sharded.files.map { ($0 as NSString).lastPathComponent } == [
                "train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet",
                "README.md",
            ])
        let reread = Process()
        reread.executableURL = URL(fileURLWithPath: python)
        reread.arguments = [
            "-c",
            "import sys, json, datasets; ds = datasets.load_dataset(sys.argv[1])['train']; "
                + "assert [r['row_id'] for r in ds] == [json.loads(l)['row_id'] for l in open(sys.argv[2])]",
            ws.path("sharded"), ws.path("expected.jsonl"),
        ]
        reread.standardError = FileHandle.nullDevice
        try reread.run()
        reread.waitUntilExit()
        #expect(reread.terminationStatus == 0, "the three files load as the split, rows in order")

        // A folder whose data/ holds other Parquet files is refused: the card's data/train-* would read them.
        try ws.write("hf/data/train-extra.parquet", "")
        let stray = #expect(throws: LabelForgeError.self) { _ = try HFExport(run: run).write(to: folder) }
        #expect(stray?.message.contains("train-extra.parquet") == true, "\(stray?.message ?? "")")

        let card = try String(contentsOfFile: folder + "/README.md", encoding: .utf8)
        for text in [
            "| run seed | 5 |", "| determinism | standard |", "| failed rows | 0 of 9 |",
            "labelforge replay --manifest",
            "`topic.label` | `sentiment` | 9 |", "stub-model", "## Config",
        ] {
            #expect(card.contains(text), "the card says \(text)")
        }
    }

    @Test(
        "images stored in a Parquet dataset export as the datasets Image feature (the same bytes and names, decoded by Pillow), an embed stage's vectors as fixed-size float32 lists equal to its .npy"
    )
    func imagesAndVectors() async throws {
        let ws = try TestWorkspace()
        try ParquetTests.fixtures(ws)
        let stub = try await StubEngine.start()
        let config = try ws.write(
            "images.yaml",
            """
            run: {name: hf-images, seed: 3}
            dataset: {path: \(ws.path("data/rows.parquet")), id_field: id, image_fields: [img]}
            engines:
              - {name: vectors, kind: openai, dialect: vllm, task: embed, base_url: "\(stub.baseURL)", model: {id: stub-model, revision: r1}, max_retries: 0}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: kept, type: filter, keep: {field: score, gte: 0.2}}
              - {id: vec, type: embed, field: text}
            """)
        let report = try await ParquetTests.run(config, ws)
        await stub.stop()
        #expect(report.status == "completed")
        let folder = ws.path("export")
        _ = try HFExport(run: try RunArtifacts.load(report.runDirectory.path)).write(to: folder)
        let script = try ws.write(
            "check_images.py",
            #"""
            import struct, sys, datasets, pyarrow.parquet as pq
            import json
            folder, source, npy = sys.argv[1:4]
            place = {line["row_id"]: line["index"] for line in map(json.loads, open(npy[:-4] + ".jsonl"))}
            ds = datasets.load_dataset(folder)["train"]
            assert isinstance(ds.features["img"], datasets.Image), ds.features
            vector = ds.features["vec.vector"]
            assert vector.length == 8 and vector.feature.dtype == "float32", vector
            original = {r["id"]: r["img"] for r in pq.read_table(source).to_pylist()}
            raw = ds.cast_column("img", datasets.Image(decode=False))
            blob = open(npy, "rb").read()
            header = 10 + int.from_bytes(blob[8:10], "little")
            floats = struct.unpack(f"<{(len(blob) - header) // 4}f", blob[header:])
            assert ds.num_rows == 4, ds.num_rows
            for row, stored in zip(ds, raw):
                i = int(row["id"][1:])
                assert row["img"].size == (1, 1) and row["img"].getpixel((0, 0)) == (i * 30, 0, 255 - i * 30), row
                assert stored["img"]["bytes"] == original[row["id"]]["bytes"], row["id"]
                assert stored["img"]["path"] == f"img{i}.png", stored["img"]["path"]
                assert "vec.index" not in row, row.keys()
                index = place[row["row_id"]]
                assert row["vec.vector"] == list(floats[index * 8:(index + 1) * 8]), row["id"]
            print("ok")
            """#)
        let python = try #require(ProjectPaths.venvPython())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            script, folder, ws.path("data/rows.parquet"), report.runDirectory.outputsPath + "/vec.npy",
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "datasets reads the images and vectors (Pillow: scripts/test_deps.sh)")
        let card = try String(contentsOfFile: folder + "/README.md", encoding: .utf8)
        #expect(card.contains("dtype: image"), "the card declares the Image feature")
    }

    @Test(
        "an image the run could not read (a missing file) and a null image export as null, with a warning; datasets loads every row"
    )
    func missingImages() async throws {
        let ws = try TestWorkspace()
        try FileManager.default.createDirectory(atPath: ws.path("data"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: LabelForgeBinary.projectRoot() + "/data/shapes/images/triangle/shape_020.png",
            toPath: ws.path("data/a.png"))
        try ws.write(
            "data/rows.jsonl",
            #"{"id":"a","img":"a.png","n":1}"# + "\n" + #"{"id":"b","img":"gone.png","n":2}"# + "\n"
                + #"{"id":"c","img":null,"n":3}"# + "\n")
        let config = try ws.write(
            "config.yaml",
            """
            run: {name: hf-missing, seed: 3}
            dataset: {path: \(ws.path("data/rows.jsonl")), id_field: id, image_fields: [img]}
            stages:
              - {id: kept, type: filter, keep: {field: n, gte: 1}}
            """)
        let report = try await ParquetTests.run(config, ws)
        #expect(report.status == "completed")
        let folder = ws.path("export")
        let written = try HFExport(run: try RunArtifacts.load(report.runDirectory.path)).write(to: folder)
        #expect(written.warnings.count == 1 && written.warnings[0].hasPrefix("1 images could not be read"))
        let script = try ws.write(
            "check_missing.py",
            #"""
            import sys, datasets
            ds = datasets.load_dataset(sys.argv[1])["train"]
            rows = {row["id"]: row["img"] for row in ds}
            assert rows["a"] is not None and rows["a"].size[0] > 0, rows
            assert rows["b"] is None and rows["c"] is None, rows
            """#)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ProjectPaths.venvPython()))
        process.arguments = [script, folder]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "datasets reads every row, the unreadable images as None")
    }
}
