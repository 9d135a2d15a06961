import Foundation
import LabelForgeCore
import LabelForgeTesting
import Testing

/// Image fields in datasets: paths, inline base64 and data URLs, image folders, and bad images
/// that fail only their own rows.
@Suite struct ImageDatasetTests {
    static let shapes = LabelForgeBinary.projectRoot() + "/data/shapes/images"

    static func image(_ name: String) throws -> Data {
        let shape = ["circle", "square", "triangle"][Int(name.suffix(3))! % 3]
        return try Data(contentsOf: URL(fileURLWithPath: "\(shapes)/\(shape)/shape_\(name.suffix(3)).png"))
    }

    /// A PNG header claiming 20000×20000 pixels, complete up to IEND.
    static let hugePNG: Data = {
        var b: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        b += [0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20, 8, 2, 0, 0, 0, 0, 0, 0, 0]
        b += [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
        return Data(b)
    }()

    static func run(_ ws: TestWorkspace, _ config: String) async throws -> (CLIResult, String) {
        let result = try await CLI.run([
            "run", "--config", ws.write("config.yaml", config), "--runs-dir", ws.path("runs"),
        ])
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("run:") }
        return (result, line.map { $0.dropFirst(4).trimmingCharacters(in: .whitespaces) } ?? "")
    }

    static func lines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    @Test("corrupt, missing, oversized, unsupported and undecodable images fail only their rows, named in inspect")
    func badImages() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.vision())
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        try FileManager.default.createDirectory(atPath: ws.path("data/img"), withIntermediateDirectories: true)
        for name in ["000", "001", "002"] {
            try Self.image(name).write(to: URL(fileURLWithPath: ws.path("data/img/\(name).png")))
        }
        try Self.image("003").prefix(200).write(to: URL(fileURLWithPath: ws.path("data/img/cut.png")))
        try Data("not an image at all".utf8).write(to: URL(fileURLWithPath: ws.path("data/img/text.png")))
        try Self.hugePNG.write(to: URL(fileURLWithPath: ws.path("data/img/huge.png")))
        let inline = try Self.image("000").base64EncodedString()
        let dataURL = "data:image/png;base64," + (try Self.image("001").base64EncodedString())
        let rows = [
            #"{"image":"img/000.png","note":"n"}"#, #"{"image":"img/001.png","note":"n1"}"#,
            #"{"image":"img/002.png","note":"n2"}"#, #"{"image":"img/cut.png","note":"cut"}"#,
            #"{"image":"img/text.png","note":"text"}"#, #"{"image":"img/huge.png","note":"huge"}"#,
            #"{"image":"img/gone.png","note":"gone"}"#, #"{"image":{"base64":"%%%not base64"},"note":"b64"}"#,
            #"{"image":{"base64":"\#(inline)"},"note":"n"}"#, #"{"image":"\#(dataURL)","note":"url"}"#,
        ]
        try ws.write("data/rows.jsonl", rows.joined(separator: "\n") + "\n")
        try ws.write("prompts/pack.yaml", "name: t\nversion: \"1\"\n")
        try ws.write("prompts/tag.mustache", "Tag the image ({{image.width}}x{{image.height}}).\n")
        try ws.write("prompts/note.mustache", "Classify the note: {{note}}\n")
        let (result, run) = try await Self.run(
            ws,
            """
            run: {seed: 3, max_failure_ratio: 1}
            dataset: {path: \(ws.path("data/rows.jsonl")), image_fields: [image]}
            engines:
              - {name: vlm, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: m, revision: r}}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - id: tags
                type: tag
                template: tag
                attributes: [{name: shape, type: enum, values: [circle, square, triangle]}]
              - {id: note, type: classify, template: note, labels: [x, y], images: []}
            """)
        #expect(result.exitCode == 0, "\(result.stderr)")

        let tags = try Self.lines(run + "/outputs/tags.jsonl")
        #expect(tags.count == 10)
        #expect(
            tags.map { $0["shape"]?.stringValue } == [
                "circle", "square", "triangle", nil, nil, nil, nil, nil, "circle", "square",
            ])
        let classes = tags.map { $0["error"]?["class"]?.stringValue }
        #expect(
            classes == [
                nil, nil, nil, "image_truncated", "image_unsupported", "image_too_large", "image_missing",
                "image_invalid_reference", nil, nil,
            ])
        let missing = try #require(tags[6]["error"]?["message"]?.stringValue)
        #expect(
            missing.contains("rows.jsonl:7, field 'image'") && missing.contains("data/img/gone.png does not exist"),
            "\(missing)")
        // The text-only stage ran for every row; the stub saw only the five good images.
        #expect(try Self.lines(run + "/outputs/note.jsonl").allSatisfy { $0["label"] != nil })
        #expect(stub.chatRequests == 5 + 10)
        // Row IDs come from the image's bytes: the inline copy of 000.png with the same note is a repeat.
        #expect(tags[8]["row_id"]?.stringValue == (tags[0]["row_id"]?.stringValue).map { $0 + "#2" })
        // Inline images are recorded by hash, never as base64 (report.html alone embeds thumbnails
        // of the first rows' image files, on purpose: it is a self-contained page for people).
        for file in ws.files(under: "runs") where !file.hasSuffix("report.html") {
            #expect(try !ws.read("runs/" + file).contains(String(inline.prefix(60))), "base64 image data in \(file)")
        }

        let inspect = try await CLI.run(["inspect", run])
        #expect(inspect.exitCode == 0)
        for errorClass in [
            "image_truncated", "image_unsupported", "image_too_large", "image_missing", "image_invalid_reference",
        ] {
            #expect(inspect.stdout.contains(errorClass), "\(errorClass) missing from inspect:\n\(inspect.stdout)")
        }
        #expect(inspect.stdout.contains("gone.png"))
        // Rows that made no request do not count as cache lookups.
        #expect(inspect.stdout.contains("stage tags: 5 ok, 5 failed, cache 0.0%"), "\(inspect.stdout)")
        // One row's lineage shows its image by hash, then the rendered prompt.
        let lineage = try await CLI.run(["inspect", run, "--row", try #require(tags[0]["row_id"]?.stringValue)])
        #expect(lineage.exitCode == 0, "\(lineage.stderr)")
        #expect(lineage.stdout.contains("user: [image sha256:"), "\(lineage.stdout)")
        #expect(lineage.stdout.contains("Tag the image (96x96)."))
    }

    @Test("an image folder becomes rows of image, label (the folder) and path; moving a file keeps its row ID")
    func imageFolder() async throws {
        let stub = try await StubEngine.start(answer: StubEngine.vision())
        defer { Task { await stub.stop() } }
        let ws = try TestWorkspace()
        try FileManager.default.copyItem(atPath: Self.shapes, toPath: ws.path("images"))
        try ws.write("prompts/pack.yaml", "name: t\nversion: \"1\"\n")
        try ws.write("prompts/shape.mustache", "Which shape? {{label_names}}\n")
        let config = """
            run: {seed: 3}
            dataset: {path: \(ws.path("images"))}
            engines:
              - {name: vlm, kind: openai, dialect: vllm, base_url: "\(stub.baseURL)", model: {id: m, revision: r}}
            prompts: {pack: \(ws.path("prompts"))}
            cache: {path: \(ws.path("cache.sqlite"))}
            stages:
              - {id: shape, type: classify, template: shape, labels: [circle, square, triangle], gold_field: label}
            """
        let (first, run) = try await Self.run(ws, config)
        #expect(first.exitCode == 0, "\(first.stderr)")
        let resolved = try String(contentsOfFile: run + "/config.resolved.yaml", encoding: .utf8)
        #expect(resolved.contains("format: imagefolder"))
        let joined = try Self.lines(run + "/dataset.jsonl")
        #expect(joined.count == 60)
        #expect(
            joined[0]["input"] == ["image": "circle/shape_000.png", "label": "circle", "path": "circle/shape_000.png"])
        let manifest = try Self.lines(run + "/manifest.jsonl")
        let accuracy = try #require(manifest.last?["gold"]?.arrayValue?.first?["accuracy"]?.doubleValue)
        #expect(accuracy == 1)

        try FileManager.default.moveItem(
            atPath: ws.path("images/circle/shape_000.png"), toPath: ws.path("images/circle/zz_moved.png"))
        let sent = stub.chatRequests
        let (second, moved) = try await Self.run(ws, config)
        #expect(second.exitCode == 0, "\(second.stderr)")
        #expect(stub.chatRequests == sent)
        let ids = { (path: String) in Set(try Self.lines(path + "/outputs/shape.jsonl").map { $0["row_id"]!.textForm })
        }
        #expect(try ids(run) == ids(moved))
    }
}
