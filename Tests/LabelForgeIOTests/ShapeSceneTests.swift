import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// The stub VLM's eyes: every image of data/shapes/ read back to its ground truth.
@Suite struct ShapeSceneTests {
    @Test("the stub reads shape, color, count and background of every data/shapes image correctly")
    func readsGroundTruth() throws {
        let root = LabelForgeBinary.projectRoot() + "/data/shapes/"
        let rows = try String(contentsOfFile: root + "shapes.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 60)
        for line in rows {
            let row = try JSONValue.parse(String(line))
            let image = try PNGDecoder.decode(try Data(contentsOf: URL(fileURLWithPath: root + row["image"]!.textForm)))
            #expect(image.width == 96 && image.height == 96)
            let scene = ShapeScene.read(image)
            let truth = ShapeScene(
                shape: row["shape"]!.textForm, color: row["color"]!.textForm, count: row["count"]!.intValue!,
                background: row["background"]!.textForm)
            #expect(scene == truth, "\(row["image"]!.textForm)")
            #expect(truth.factsStated(in: row["candidate_a"]!.textForm) == row["candidate_a_facts"]!.intValue)
            #expect(truth.factsStated(in: row["candidate_b"]!.textForm) == row["candidate_b_facts"]!.intValue)
        }
    }

    @Test("a PNG cut short is refused, not misread")
    func truncated() throws {
        let data = try Data(
            contentsOf: URL(
                fileURLWithPath: LabelForgeBinary.projectRoot() + "/data/shapes/images/circle/shape_000.png"))
        #expect(throws: PNGDecodingError.self) { try PNGDecoder.decode(data.prefix(data.count / 2)) }
    }
}
