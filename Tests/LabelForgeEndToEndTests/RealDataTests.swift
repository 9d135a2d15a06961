import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

/// Real public text on the real engines (in `LocalEngineTests`, whose tests run one at a time: each
/// starts llama.cpp): the Debian slice in data/debian and the long real texts of
/// Tests/Fixtures/minilm-long-texts.json, whose vectors sentence-transformers computed
/// (`bench/st_long_text_fixture.py`).
extension LocalEngineTests {
    /// The Debian slice's distinct texts over sentence-transformers' 256 word pieces, counted with
    /// all-MiniLM-L6-v2's own tokenizer (data/debian/README.md): 7 documents (8 rows: two are the
    /// same text), and 9 among the mining run's queries, positives and corpus documents.
    static let debianOverWindow = (docs: 7, mining: 9)

    /// The float32 rows of an `.npy` file LabelForge wrote (shape `(n, d)`).
    static func npyRows(_ path: String) throws -> [[Float]] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        let shape = header.split(separator: "(")[1].split(separator: ")")[0].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let floats = EmbeddingsResponse.decodeFloats(Data(data[(10 + headerLength)...]))
        return (0..<shape[0]).map { Array(floats[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
    }

    static func cosine(_ a: [Float], _ b: [Double]) -> Double {
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        let norms =
            a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() * b.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        return dot / norms
    }

    /// The long real texts as a dataset (`id`, `text`) in `ws`.
    static func longTexts(in ws: TestWorkspace) throws -> [JSONValue] {
        let fixture = try JSONValue.parse(
            Data(contentsOf: URL(fileURLWithPath: Self.root + "/Tests/Fixtures/minilm-long-texts.json")))
        let texts = try #require(fixture["texts"]?.arrayValue)
        #expect(texts.count == 12)
        try ws.write(
            "long.jsonl",
            texts.map { CanonicalJSON.string(["id": $0["id"] ?? .null, "text": $0["text"] ?? .null]) }.joined(
                separator: "\n") + "\n")
        return texts
    }

    @Test(
        "long real texts (300 to 4,941 word pieces) on the real MiniLM engines (the embedding server, and llama.cpp with the GGUF): cut as sentence-transformers cuts them, vectors within cosine 0.999 of its own; with truncate: false each text over the window fails alone",
        arguments: ["{id: all-minilm-l6-v2}", "{id: minilm, path: GGUF}"]
    )
    func longTextsMatchSentenceTransformers(model: String) async throws {
        let gguf = try #require(ProjectPaths.defaultModel(named: "all-MiniLM-L6-v2.f16.gguf"))
        let model = model.replacingOccurrences(of: "GGUF", with: gguf)
        let ws = try TestWorkspace()
        let texts = try Self.longTexts(in: ws)
        func config(_ truncate: String) throws -> String {
            try ws.write(
                "long\(truncate.isEmpty ? "" : "-off").yaml",
                """
                run: {max_failure_ratio: 1}
                dataset: {path: long.jsonl, id_field: id}
                engines:
                  - {name: embedder, kind: local, task: embed, model: \(model), slots: 1}
                stages:
                  - {id: vec, type: embed, field: text\(truncate)}
                """)
        }
        let result = try await CLI.run(
            ["run", "--config", try config(""), "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite")],
            workingDirectory: ws.root)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("texts cut to the model's window: 12 in vec"), "\(result.stdout)")
        let rows = try Self.npyRows(try runDir(from: result.stdout) + "/outputs/vec.npy")
        #expect(rows.count == 12)
        for (vector, text) in zip(rows, texts) {
            let reference = text["embedding"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            let cosine = Self.cosine(vector, reference)
            #expect(
                cosine >= 0.999, "\(text["id"]?.textForm ?? "") (\(text["tokens"]?.textForm ?? "?") tokens): \(cosine)")
        }

        // Sent whole, a text over the engine's window is refused (vLLM, like the embedding server,
        // refuses a sentence-transformers model's input over its max_model_len, 256, with a 400;
        // llama.cpp's window is the model's 512 positions, and it answers 500): each fails alone,
        // its batch resent text by text, and the run completes.
        let overWindow = texts.filter { ($0["tokens"]?.intValue ?? 0) > (model.contains("path:") ? 512 : 256) }.count
        let whole = try await CLI.run(
            [
                "run", "--config", try config(", truncate: false"), "--runs-dir", ws.path("runs"), "--cache-path",
                ws.path("c.sqlite"),
            ], workingDirectory: ws.root)
        #expect(whole.exitCode == 0, "\(whole.stderr)")
        #expect(
            whole.stdout.contains("rows labeled:   \(12 - overWindow)/12 (\(overWindow) failed"), "\(whole.stdout)")
    }

    @Test(
        "rerank on llama.cpp (rank mode) with long real documents: each pair over the window has its document cut by the server's own tokens and sent as text, counted; nothing fails; a rerun is all hits"
    )
    func rerankLongDocumentsOnLlamaCpp() async throws {
        let gguf = try #require(ProjectPaths.defaultModel(named: "all-MiniLM-L6-v2.f16.gguf"))
        let ws = try TestWorkspace()
        let texts = try Self.longTexts(in: ws)
        let config = try ws.write(
            "rerank.yaml",
            """
            dataset: {path: long.jsonl, id_field: id}
            engines:
              - {name: ranker, kind: local, task: rerank, model: {id: minilm, path: \(gguf)}, slots: 1}
            stages:
              - {id: ranked, type: rerank, query: id, documents: text}
            """)
        let arguments = ["run", "--config", config, "--runs-dir", ws.path("runs"), "--cache-path", ws.path("c.sqlite")]
        let result = try await CLI.run(arguments, workingDirectory: ws.root)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("rows labeled:   12/12"), "\(result.stdout)")
        #expect(result.stdout.contains("texts cut to the model's window: 12 in ranked"), "\(result.stdout)")
        let scores = try String(
            contentsOfFile: try runDir(from: result.stdout) + "/outputs/ranked.jsonl", encoding: .utf8
        )
        .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(scores.count == texts.count && scores.allSatisfy { $0["error"] == nil }, "\(scores.prefix(2))")
        let again = try await CLI.run(arguments, workingDirectory: ws.root)
        #expect(again.stdout.contains("cache hit rate: 100.0%") && again.stdout.contains("engine requests sent: 0"))
    }

    @Test(
        "real Debian text on the real MiniLM engine: every document embedded (license texts of 2,050 and 6,842 word pieces cut), exact and near duplicates removed, hard negatives mined for 120 real pairs; nothing fails; a rerun is all hits"
    )
    func debianSlice() async throws {
        let ws = try TestWorkspace()
        let docs = try await run(config: "debian.yaml", limit: 1000, in: ws)
        #expect(docs.exitCode == 0, "\(docs.stderr)")
        #expect(docs.stdout.contains("rows labeled:   181/181"), "\(docs.stdout)")
        // The 7 distinct long documents that survive the exact dedup, cut once each; the near-duplicate
        // check reuses the embed stage's vectors (the same requests, from the cache).
        let cut = Self.debianOverWindow.docs
        #expect(
            docs.stdout.contains("texts cut to the model's window: \(cut) in vectors, \(cut) in near"), "\(docs.stdout)"
        )
        let dir = try runDir(from: docs.stdout)
        let removed = try String(contentsOfFile: dir + "/outputs/unique.rejected.jsonl", encoding: .utf8)
            .split(separator: "\n").count
        #expect(removed == 10, "the slice holds 10 exact duplicate texts")
        #expect(try Self.npyRows(dir + "/outputs/vectors.npy").count == 171)

        let mined = try await run(config: "debian-mining.yaml", limit: 1000, in: ws)
        #expect(mined.exitCode == 0, "\(mined.stderr)")
        #expect(mined.stdout.contains("rows labeled:   120/120"), "\(mined.stdout)")
        #expect(
            mined.stdout.contains("texts cut to the model's window: \(Self.debianOverWindow.mining) in negatives"),
            "\(mined.stdout)")
        let minedDir = try runDir(from: mined.stdout)
        let negatives = try String(contentsOfFile: minedDir + "/outputs/negatives.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        let stats = try JSONValue.parse(
            Data(contentsOf: URL(fileURLWithPath: minedDir + "/outputs/negatives.stats.json")))
        let short = negatives.filter { ($0["negatives"]?.arrayValue?.count ?? 0) < 3 }.count
        #expect(negatives.count == 120 && negatives.allSatisfy { $0["error"] == nil })
        #expect(stats["rows_short_of_negatives"]?.intValue == short && short < 120, "\(stats.textForm)")

        let again = try await run(config: "debian-mining.yaml", limit: 1000, in: ws)
        #expect(again.stdout.contains("cache hit rate: 100.0%") && again.stdout.contains("engine requests sent: 0"))
    }

    @Test(
        "real labels: Debian package descriptions classified into their Sections, scored against the maintainers' with chance beside it"
    )
    func debianSections() async throws {
        let ws = try TestWorkspace()
        let result = try await run(config: "debian-sections.yaml", limit: 128, in: ws)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("rows labeled:   128/128"), "\(result.stdout)")
        #expect(
            result.stdout.contains("accuracy section.label vs label:")
                && result.stdout.contains("(n=128") && result.stdout.contains("chance 12.5%"), "\(result.stdout)")
    }
}
