import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// `configs/vlm.yaml` over `data/shapes/`, run by the CLI against the stub VLM, which answers from
/// the images' pixels, so every label is checked against the generator's ground truth.
@Suite struct VisionPipelineTests {
    static let rows = 60
    /// caption + tag + classify + rubric + pairwise (two orders).
    static let callsPerRow = 6

    /// A workspace holding copies of data/shapes, prompts/vlm and configs/vlm.yaml, with the
    /// config's base_url pointed at `stub`.
    static func workspace(stub: StubEngine) throws -> TestWorkspace {
        let ws = try TestWorkspace()
        let root = LabelForgeBinary.projectRoot()
        for directory in ["data/shapes", "prompts/vlm"] {
            try FileManager.default.createDirectory(
                atPath: ws.path((directory as NSString).deletingLastPathComponent), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: root + "/" + directory, toPath: ws.path(directory))
        }
        let config = try String(contentsOfFile: root + "/configs/vlm.yaml", encoding: .utf8)
        #expect(config.contains("base_url: http://127.0.0.1:8000"))
        try ws.write(
            "configs/vlm.yaml",
            config.replacingOccurrences(of: "base_url: http://127.0.0.1:8000", with: "base_url: \(stub.baseURL)"))
        return ws
    }

    static func run(_ ws: TestWorkspace, cache: String = "cache.sqlite") async throws -> String {
        let result = try await CLI.run(
            ["run", "--config", "configs/vlm.yaml", "--runs-dir", "runs", "--cache-path", cache],
            workingDirectory: ws.root)
        #expect(result.exitCode == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
        let directory = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
        return directory.hasPrefix("/") ? directory : ws.path(directory)
    }

    static func lines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    static func start() async throws -> StubEngine {
        try await StubEngine.start(model: "Qwen/Qwen2.5-VL-3B-Instruct", answer: StubEngine.vision())
    }

    @Test("tags, classes, captions and rubric scores match the ground truth; a second run is all cache hits")
    func shapesPipeline() async throws {
        let stub = try await Self.start()
        defer { Task { await stub.stop() } }
        let ws = try Self.workspace(stub: stub)
        let first = try await Self.run(ws)
        #expect(stub.chatRequests == Self.rows * Self.callsPerRow)

        let truth = try Self.lines(ws.path("data/shapes/shapes.jsonl"))
        #expect(truth.count == Self.rows)
        for stage in ["caption", "attributes", "shape", "caption_score", "caption_preference"] {
            let outputs = try Self.lines(first + "/outputs/\(stage).jsonl")
            #expect(outputs.count == Self.rows && outputs.allSatisfy { $0["error"] == nil }, "\(stage)")
        }
        let tags = try Self.lines(first + "/outputs/attributes.jsonl")
        #expect(tags.count == Self.rows)
        for attribute in ["shape", "color", "count", "background"] {
            let right = zip(tags, truth).filter { $0[attribute]?.textForm == $1[attribute]?.textForm }.count
            #expect(Double(right) / Double(Self.rows) >= 0.95, "\(attribute): \(right)/\(Self.rows)")
        }
        let classes = try Self.lines(first + "/outputs/shape.jsonl")
        #expect(zip(classes, truth).filter { $0["label"] == $1["shape"] }.count >= 57)

        for (caption, row) in zip(try Self.lines(first + "/outputs/caption.jsonl"), truth) {
            let scene = ShapeScene(
                shape: row["shape"]!.textForm, color: row["color"]!.textForm, count: row["count"]!.intValue!,
                background: row["background"]!.textForm)
            #expect(scene.factsStated(in: caption["caption"]?.stringValue ?? "") == 4, "\(caption)")
            #expect(caption["too_long"] == false)
        }
        // The rubric judges the caption stage's own caption: its score is 1 + the number of facts that
        // caption gets right (the stub's rule), and the logprob expectation sits next to it.
        let captions = try Self.lines(first + "/outputs/caption.jsonl")
        func facts(ofCaption index: Int) -> Int {
            let row = truth[index]
            return ShapeScene(
                shape: row["shape"]!.textForm, color: row["color"]!.textForm, count: row["count"]!.intValue!,
                background: row["background"]!.textForm
            ).factsStated(in: captions[index]["caption"]?.stringValue ?? "")
        }
        for (index, score) in try Self.lines(first + "/outputs/caption_score.jsonl").enumerated() {
            let facts = facts(ofCaption: index)
            #expect(score["scores"]?["accuracy"]?.intValue == 1 + facts, "\(score)")
            let expected = try #require(score["expected_scores"]?["accuracy"]?.doubleValue, "\(score)")
            #expect(expected >= 1 && expected <= 5 && abs(expected - Double(1 + facts)) < 0.5)
        }
        // A fair judge agrees with itself in both orders and picks the caption with more facts right:
        // the caption stage's (a) against the dataset's reference caption (b).
        for (index, (preference, row)) in zip(try Self.lines(first + "/outputs/caption_preference.jsonl"), truth)
            .enumerated()
        {
            let a = facts(ofCaption: index)
            let b = row["candidate_b_facts"]!.intValue!
            #expect(preference["inconsistent"] == false)
            #expect(
                preference["winner"]?["accuracy"]?.stringValue == (a > b ? "a" : b > a ? "b" : "tie"), "\(preference)")
        }

        let second = try await Self.run(ws)
        #expect(stub.chatRequests == Self.rows * Self.callsPerRow)
        let rowLines = try Self.lines(second + "/manifest.jsonl").filter { $0["type"] == "row" }
        #expect(rowLines.count == Self.rows * 5)
        #expect(rowLines.allSatisfy { $0["cache"] == "hit" })
        for stage in ["caption", "attributes", "shape", "caption_score", "caption_preference"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: first + "/outputs/\(stage).jsonl"))
            let b = try Data(contentsOf: URL(fileURLWithPath: second + "/outputs/\(stage).jsonl"))
            #expect(a == b, "\(stage) outputs differ between the runs")
        }

        // Replay from the cache alone, with the engine gone.
        await stub.stop()
        let replay = try await CLI.run(
            ["replay", "--manifest", first + "/manifest.jsonl", "--runs-dir", "runs", "--cache-path", "cache.sqlite"],
            workingDirectory: ws.root)
        #expect(replay.exitCode == 0, "\(replay.stderr)")
        for stage in ["caption", "attributes", "shape", "caption_score", "caption_preference"] {
            #expect(replay.stdout.contains("\(stage): reproduced 60/60 rows byte-identical"), "\(replay.stdout)")
        }
    }

    @Test(
        "a judge biased towards the first position is caught: every pairwise verdict is inconsistent, and diff shows it"
    )
    func positionBias() async throws {
        let fair = try await Self.start()
        let biased = try await StubEngine.start(
            model: "Qwen/Qwen2.5-VL-3B-Instruct", answer: StubEngine.vision(positionBias: true))
        defer {
            Task {
                await fair.stop()
                await biased.stop()
            }
        }
        let ws = try Self.workspace(stub: fair)
        let fairRun = try await Self.run(ws)
        let config = try ws.read("configs/vlm.yaml").replacingOccurrences(of: fair.baseURL, with: biased.baseURL)
        try ws.write("configs/vlm.yaml", config)
        let run = try await Self.run(ws, cache: "biased.sqlite")
        let preferences = try Self.lines(run + "/outputs/caption_preference.jsonl")
        #expect(preferences.count == Self.rows)
        for preference in preferences {
            #expect(preference["inconsistent"] == true)
            #expect(preference["winner"] == ["accuracy": "inconsistent"])
            #expect(preference["verdicts"] == ["a_first": ["accuracy": "a"], "b_first": ["accuracy": "b"]])
        }

        // diff compares object outputs per member, and free text by exact agreement only.
        let diff = try await CLI.run(["diff", fairRun, run, "--format", "json"])
        #expect(diff.exitCode == 1, "\(diff.stderr)")
        let stages = try JSONValue.parse(diff.stdout)["stages"]?.arrayValue ?? []
        func field(_ stage: String, _ name: String) -> JSONValue? {
            stages.first { $0["id"]?.stringValue == stage }?["fields"]?.arrayValue?.first {
                $0["name"]?.stringValue == name
            }
        }
        #expect(field("caption_preference", "winner.accuracy")?["agreement"]?.doubleValue == 0)
        #expect(field("caption_preference", "winner.accuracy")?["confusion"]?["a"]?["inconsistent"]?.intValue ?? 0 > 0)
        #expect(field("caption_preference", "verdicts.b_first.accuracy")?["kind"] == "categorical")
        #expect(field("caption_score", "scores.accuracy")?["kind"] == "numeric")
        #expect(field("caption", "caption")?["kind"] == "text")
        #expect(field("caption", "caption")?["agreement"]?.doubleValue == 1)
    }

    @Test("changing one image's bytes changes only that row's ID and request keys")
    func oneImageChanged() async throws {
        let stub = try await Self.start()
        defer { Task { await stub.stop() } }
        let ws = try Self.workspace(stub: stub)
        let before = try Self.lines(try await Self.run(ws) + "/manifest.jsonl").filter { $0["type"] == "row" }

        // Same pixels, different bytes: a text chunk inserted before IEND.
        let path = ws.path("data/shapes/images/square/shape_004.png")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.insert(contentsOf: PNGChunk.text("Comment", "edited"), at: bytes.count - 12)
        try bytes.write(to: URL(fileURLWithPath: path))
        let sent = stub.chatRequests
        let after = try Self.lines(try await Self.run(ws) + "/manifest.jsonl").filter { $0["type"] == "row" }

        #expect(stub.chatRequests - sent == Self.callsPerRow)
        #expect(before.count == after.count)
        func keys(_ lines: [JSONValue]) -> [String: JSONValue] {
            Dictionary(
                uniqueKeysWithValues: lines.map {
                    ($0["row_id"]!.textForm + "/" + $0["stage"]!.textForm, $0["request_keys"]!)
                })
        }
        let (old, new) = (keys(before), keys(after))
        let gone = Set(old.keys.filter { new[$0] != old[$0] }.map { String($0.split(separator: "/")[0]) })
        let added = Set(new.keys.filter { old[$0] != new[$0] }.map { String($0.split(separator: "/")[0]) })
        #expect(gone.count == 1 && added.count == 1, "changed rows: \(gone) → \(added)")
        // It is the fifth row (index 4) whose ID changed; every other row kept its ID and keys.
        let order = before.map { $0["row_id"]!.textForm }.enumerated().filter { $0.offset % 5 == 0 }.map(\.element)
        #expect(order.firstIndex(of: gone.first ?? "") == 4)
        #expect(after.filter { added.contains($0["row_id"]!.textForm) }.allSatisfy { $0["cache"] == "miss" })
        #expect(after.filter { !added.contains($0["row_id"]!.textForm) }.allSatisfy { $0["cache"] == "hit" })
    }
}

/// PNG chunks built by hand, for editing test images without changing their pixels.
enum PNGChunk {
    static func text(_ key: String, _ value: String) -> Data {
        let body = Array("tEXt".utf8) + Array(key.utf8) + [0] + Array(value.utf8)
        var out = Data()
        let length = UInt32(body.count - 4)
        out.append(contentsOf: [
            UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
        ])
        out.append(contentsOf: body)
        let crc = crc32(body)
        out.append(contentsOf: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        return out
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

extension VisionPipelineTests {
    @Test("configs/vlm-conversations.yaml: three turns per image, every assistant turn states what the image shows")
    func conversations() async throws {
        let stub = try await Self.start()
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        let root = LabelForgeBinary.projectRoot()
        for directory in ["data/shapes", "prompts/conversations"] {
            try FileManager.default.createDirectory(
                atPath: ws.path((directory as NSString).deletingLastPathComponent), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: root + "/" + directory, toPath: ws.path(directory))
        }
        let config = try String(contentsOfFile: root + "/configs/vlm-conversations.yaml", encoding: .utf8)
        try ws.write(
            "configs/vlm-conversations.yaml",
            config.replacingOccurrences(of: "base_url: http://127.0.0.1:8000", with: "base_url: \(stub.baseURL)"))
        func run() async throws -> String {
            let result = try await CLI.run(
                [
                    "run", "--config", "configs/vlm-conversations.yaml", "--runs-dir", "runs", "--cache-path",
                    "c.sqlite",
                ],
                workingDirectory: ws.root)
            #expect(result.exitCode == 0, "\(result.stderr)")
            let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") })
            let directory = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
            return directory.hasPrefix("/") ? directory : ws.path(directory)
        }
        let first = try await run()
        // Three exchanges per image: six requests each.
        #expect(stub.chatRequests == Self.rows * 6)
        let truth = try Self.lines(ws.path("data/shapes/shapes.jsonl"))
        let conversations = try Self.lines(first + "/outputs/conversation.jsonl")
        #expect(conversations.count == Self.rows)
        for (conversation, row) in zip(conversations, truth) {
            let scene = ShapeScene(
                shape: row["shape"]!.textForm, color: row["color"]!.textForm, count: row["count"]!.intValue!,
                background: row["background"]!.textForm)
            let messages = try #require(conversation["messages"]?.arrayValue, "\(conversation)")
            #expect(messages.count == 6 && conversation["turns"] == 3 && conversation["stop_reason"] == "turns")
            #expect(
                messages.map { $0["role"]?.stringValue ?? "" }
                    == Array(repeating: ["user", "assistant"], count: 3).flatMap { $0 })
            // The image goes with the first user message, as an image_url part, then the question.
            let parts = try #require(messages[0]["content"]?.arrayValue)
            #expect(parts.count == 2 && parts[0]["type"] == "image_url" && parts[1]["type"] == "text")
            #expect(parts[0]["image_url"]?["url"]?.stringValue?.hasPrefix("data:image/png;base64,") == true)
            let questions =
                [parts[1]["text"]?.stringValue ?? ""] + [2, 4].map { messages[$0]["content"]?.stringValue ?? "" }
            #expect(questions == Array(ShapeScene.questions.prefix(3)))
            // Each answer states the fact its question asks about, as the generator drew it.
            for (question, answer) in zip(questions, [1, 3, 5].map { messages[$0]["content"]?.stringValue ?? "" }) {
                #expect(
                    answer == scene.answer(to: question), "\(row["image"]?.textForm ?? ""): \(question) → \(answer)")
            }
        }
        // A rerun: every turn from the cache, byte-identical conversations.
        let requests = stub.chatRequests
        let second = try await run()
        #expect(stub.chatRequests == requests)
        #expect(
            try String(contentsOfFile: first + "/outputs/conversation.jsonl", encoding: .utf8)
                == String(contentsOfFile: second + "/outputs/conversation.jsonl", encoding: .utf8))
    }
}
