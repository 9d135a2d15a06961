import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct ManifestTests {
    static let run = RunRecord(
        runID: "20261126-000000-abcdef12", planHash: "sha256:plan", configHash: "sha256:config",
        labelforgeVersion: "0.1.0", gitRevision: nil,
        dataset: .init(path: "data/x.jsonl", format: "jsonl", fingerprint: "sha256:data", rows: 3),
        promptPack: .init(name: "mvp", version: "1", hash: "sha256:pack"),
        models: [.init(engine: "local", id: "smollm2", revision: "sha256:model", file: "m.gguf")],
        determinism: "standard", runSeed: 7, environment: ["os": "linux"],
        stages: [.init(id: "sentiment", type: "classify", version: 2, engine: "local")],
        createdAt: "2026-11-26T00:00:00.000Z", noCache: false, limit: nil,
        engines: [
            .init(
                name: "local", kind: "local", dialect: "llamacpp", slots: 2, maxInFlight: 4, replicas: 0,
                info: ["build_info": "b1"])
        ], replayOf: nil)

    static let records: [ManifestRecord] = [
        .run(run),
        .row(
            RowRecord(
                rowID: "r1", stage: "sentiment", requestKeys: ["sha256:k1"], cache: "miss", attempts: 1, cacheHits: 0,
                latencyMs: 12, tokensIn: 30, tokensOut: 2, outputHash: "sha256:o1")),
        .row(
            RowRecord(
                rowID: "r2", stage: "sentiment", requestKeys: [], cache: "none", attempts: 0, cacheHits: 0,
                latencyMs: 0, tokensIn: 0, tokensOut: 0, parentRowID: "r0", sampleIndex: 1,
                error: StageFailure(errorClass: "upstream_failed", message: "caption failed"), dropped: true,
                outputHash: "sha256:o2")),
        .barrier(BarrierRecord(stage: "dedup", rowsIn: 3, rowsOut: 2, resultDigest: "sha256:d", latencyMs: 4)),
        .summary(
            SummaryRecord(
                status: "completed",
                counts: .init(rows: 3, rowsFailed: 1, stages: ["sentiment": StageStats(ok: 2, failed: 1)]),
                outputDigests: ["sentiment": "sha256:s"], engineRequests: 2, finishedAt: "2026-11-26T00:00:01.000Z",
                gold: [.init(stage: "sentiment", field: "label", goldField: "gold", n: 3, accuracy: 0.5, macroF1: 0.25)]
            )),
    ]

    func write(_ records: [ManifestRecord], to path: String) throws {
        let writer = try ManifestWriter(path: path)
        for record in records { try writer.append(record) }
        try writer.sync()
    }

    @Test("every record type reads back equal to what was written, through the writer and the reader")
    func roundTrip() throws {
        let ws = try TestWorkspace()
        let path = ws.path("manifest.jsonl")
        try write(Self.records, to: path)
        #expect(Array(try ManifestReader(path: path)) == Self.records)
        // Lines keep the keys tests and users read: canonical JSON with a `type`.
        let first = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")[1]
        #expect(first.hasPrefix(#"{"attempts":1,"cache":"miss","cache_hits":0,"#))
    }

    @Test("row lines written directly are the canonical form of the record's JSON")
    func rowBytes() throws {
        var rows = Self.records.compactMap { record -> RowRecord? in
            if case .row(let row) = record { return row }
            return nil
        }
        var odd = rows[0]
        odd.rowID = "quote\"back\\slash\nnewline é"
        odd.requestKeys = []
        odd.parentRowID = "p"
        odd.sampleIndex = nil
        odd.tokensIn = -1
        rows.append(odd)
        for row in rows {
            var bytes: [UInt8] = []
            row.write(into: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == CanonicalJSON.string(row.json))
        }
    }

    @Test("records are Codable through their JSON form")
    func codable() throws {
        let data = try JSONEncoder().encode(Self.records)
        #expect(try JSONDecoder().decode([ManifestRecord].self, from: data) == Self.records)
    }

    @Test("a torn last line is skipped; resume truncates it; a bad line elsewhere is an error naming the line")
    func tornAndCorrupt() throws {
        let ws = try TestWorkspace()
        let path = ws.path("manifest.jsonl")
        try write(Array(Self.records.prefix(2)), to: path)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"type":"row","row_id":"r"#.utf8))
        try handle.close()
        #expect(Array(try ManifestReader(path: path)).count == 2)

        let state = try ManifestRecovery.repairAndRead(path)
        #expect(state.run == Self.run)
        #expect(state.rows.count == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("}\n"))

        try
            (String(contentsOfFile: path, encoding: .utf8) + "not json\n" + CanonicalJSON.string(Self.records[1].json)
            + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: LabelForgeError.self) { try ManifestRecovery.repairAndRead(path) }
        #expect(error?.message.contains("manifest.jsonl:3: not a manifest record") == true)
    }

    @Test("a record missing a field, or of an unknown type, is an error naming the field")
    func strictFields() throws {
        var row = Self.records[1].json.objectValue!
        row["stage"] = nil
        let missing = #expect(throws: LabelForgeError.self) { try ManifestRecord(json: .object(row)) }
        #expect(missing?.message == "'stage' is missing.")
        row["stage"] = 3
        let wrong = #expect(throws: LabelForgeError.self) { try ManifestRecord(json: .object(row)) }
        #expect(wrong?.message == "'stage' is not a string.")
        let unknown = #expect(throws: LabelForgeError.self) { try ManifestRecord(json: ["type": "nope"]) }
        #expect(unknown?.message == "unknown record type 'nope'.")
    }

    @Test("row lines written before cache_hits existed count a hit line's keys as hits")
    func legacyCacheHits() throws {
        var row = Self.records[1].json.objectValue!
        row["cache_hits"] = nil
        row["cache"] = "hit"
        row["request_keys"] = ["sha256:a", "sha256:b"]
        guard case .row(let record) = try ManifestRecord(json: .object(row)) else {
            Issue.record("not a row")
            return
        }
        #expect(record.cacheHits == 2)
    }
}
