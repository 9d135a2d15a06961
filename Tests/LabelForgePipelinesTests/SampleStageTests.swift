import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

/// `sample`: a seeded random subset, the worked example of a stage that sends no request
/// (docs/adding_a_stage.md).
@Suite struct SampleStageTests {
    /// Runs `stages` over the Debian slice's 181 real package descriptions.
    static func run(_ ws: TestWorkspace, seed: Int, limit: Int? = nil, name: String) async throws -> RunReport {
        let data = LabelForgeBinary.projectRoot() + "/data/debian/docs.jsonl"
        let path = try ws.write(
            "\(name).yaml",
            """
            run: {seed: \(seed)}
            dataset: {path: \(data), id_field: id}
            cache: {path: cache.sqlite}
            stages:
              - {id: pick, type: sample, fraction: 0.3}
            """)
        return try await Runner(
            options: RunOptions(configPath: path, runsDir: ws.path("runs-\(name)"), limit: limit),
            logger: CapturedLogs().logger
        ).run()
    }

    static func ids(_ path: String) throws -> [String] {
        try StageGraphTests.lines(path).map { $0["row_id"]?.stringValue ?? "" }
    }

    @Test("sample keeps about its fraction, the same rows on every run with one seed, another subset with another")
    func seededSubset() async throws {
        let ws = try TestWorkspace()
        let first = try await Self.run(ws, seed: 1, name: "a")
        let dir = first.runDirectory
        let kept = try Self.ids(dir.outputPath(stage: "pick"))
        let dropped = try Self.ids(dir.outputsPath + "/pick.rejected.jsonl")
        #expect(first.status == "completed" && first.rows == 181)
        #expect(kept.count + dropped.count == 181 && Set(kept).isDisjoint(with: dropped))
        // 181 × 0.3 = 54.3, σ = 6.2: four σ either way.
        #expect((30...79).contains(kept.count), "kept \(kept.count) of 181")
        for line in try StageGraphTests.lines(dir.outputPath(stage: "pick"))
            + StageGraphTests.lines(
                dir.outputsPath + "/pick.rejected.jsonl")
        {
            let draw = try #require(line["draw"]?.doubleValue)
            #expect((draw < 0.3) == (line["kept"]?.boolValue == true), "\(line)")
        }
        // Only the kept rows go on.
        #expect(try StageGraphTests.lines(dir.path + "/dataset.jsonl").count == kept.count)

        let again = try await Self.run(ws, seed: 1, name: "b")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: again.runDirectory.outputPath(stage: "pick")))
                == Data(contentsOf: URL(fileURLWithPath: dir.outputPath(stage: "pick"))))
        // A row's draw depends on the row, not on what else the run reads.
        let head = try await Self.run(ws, seed: 1, limit: 50, name: "c")
        let headKept = try Self.ids(head.runDirectory.outputPath(stage: "pick"))
        let headRows = Set(headKept + (try Self.ids(head.runDirectory.outputsPath + "/pick.rejected.jsonl")))
        #expect(headRows.count == 50 && Set(headKept) == Set(kept).intersection(headRows))
        let other = try await Self.run(ws, seed: 2, name: "d")
        #expect(try Self.ids(other.runDirectory.outputPath(stage: "pick")) != kept)
    }

    @Test("a fraction outside (0, 1] names its line")
    func badFraction() throws {
        let ws = try TestWorkspace()
        let path = try ws.write(
            "c.yaml", "dataset: {path: d.jsonl}\nstages:\n  - {id: pick, type: sample, fraction: 1.5}\n")
        let error = #expect(throws: LabelForgeError.self) { try RunConfig.load(file: path) }
        #expect(
            error?.message.contains("\(path):3:") == true
                && error?.message.contains("fraction must be above 0") == true,
            "\(error?.message ?? "")")
    }
}
