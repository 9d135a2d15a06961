import Foundation
import LabelForgeCore

/// A request vLLM's OpenAI server would refuse, with the status and message it would send.
struct StubRejection: Error {
    var status = 400
    var message: String
}

extension StubEngine {
    /// A stub VLM: reads the request's images (PNG) and answers from their pixels.
    ///
    /// - `structured_outputs.choice`: the choice naming the shape, else the color, else the background.
    /// - a JSON schema (`structured_outputs.json` or `response_format`): properties `shape`, `color`, `count`, `background` get what
    ///   the image shows (as the schema's type); `scores` (a rubric) get, per criterion, the share of
    ///   the four facts the line `Caption: …` of the prompt states correctly, on the criterion's scale;
    ///   `winner` (a pairwise judge) prefers the candidate (`First: …` / `Second: …`) stating more facts,
    ///   or always `first` with `positionBias`.
    /// - no constraint: a caption such as "two red circles on a white background"; in a
    ///   conversation (`synthesize_conversation`), a user turn (a prompt with the line
    ///   `Conversation so far:`) asks about the next of shape, color, count and background not asked
    ///   yet (nothing once all four are), and an assistant turn (more than one message) answers the
    ///   last user message from the pixels.
    public static func vision(positionBias: Bool = false) -> @Sendable (JSONValue) -> StubAnswer {
        { body in
            let (images, text) = Self.parts(of: body)
            guard let first = images.first else { return followConstraint(body) }
            let scene: ShapeScene
            do {
                scene = ShapeScene.read(try PNGDecoder.decode(first))
            } catch {
                return .error(status: 400, message: "cannot identify image file: \(error)")
            }
            if let choices = body["structured_outputs"]?["choice"]?.arrayValue?.compactMap(\.stringValue),
                !choices.isEmpty
            {
                for wanted in [scene.shape, scene.color, scene.background, String(scene.count)] {
                    if let match = choices.first(where: { $0.lowercased() == wanted }) { return .content(match) }
                }
                return .content(choices[0])
            }
            guard let schema = StubEngine.schema(in: body) else {
                let messages = body["messages"]?.arrayValue ?? []
                if messages.count > 1 {
                    // An assistant turn of a conversation: answer the last user message.
                    let content = messages.last?["content"]
                    let question =
                        content?.stringValue
                        ?? (content?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
                    return .content(scene.answer(to: question))
                }
                if text.contains("Conversation so far:") {
                    // A user turn: ask about the next fact not asked yet.
                    let asked = text.split(separator: "\n").filter { $0.hasPrefix("user:") }.count
                    return .content(asked >= 4 ? "" : ShapeScene.questions[asked])
                }
                return .content(scene.caption)
            }
            var answer = example(of: schema).objectValue ?? [:]
            let properties = schema["properties"]?.objectValue ?? [:]
            let facts: [String: (String, Int?)] = [
                "shape": (scene.shape, nil), "color": (scene.color, nil), "background": (scene.background, nil),
                "count": (String(scene.count), scene.count),
            ]
            for (name, property) in properties {
                if let (word, number) = facts[name] {
                    answer[name] = property["type"]?.stringValue == "integer" ? .int(Int64(number ?? 0)) : .string(word)
                }
            }
            if let scores = properties["scores"]?["properties"]?.objectValue {
                let caption = Self.line(after: "Caption:", in: text) ?? ""
                let stated = scene.factsStated(in: caption)
                var values: [String: JSONValue] = [:]
                for (criterion, range) in scores {
                    let low = range["minimum"]?.intValue ?? 1
                    let high = range["maximum"]?.intValue ?? 5
                    values[criterion] = .int(Int64(low + Int((Double((high - low) * stated) / 4).rounded())))
                }
                answer["scores"] = .object(values)
                answer["rationale"] = .string("\(stated) of 4 facts right")
            }
            if let winners = properties["winner"]?["properties"]?.objectValue {
                let a = scene.factsStated(in: Self.line(after: "First:", in: text) ?? "")
                let b = scene.factsStated(in: Self.line(after: "Second:", in: text) ?? "")
                let verdict = positionBias ? "first" : a > b ? "first" : b > a ? "second" : "tie"
                answer["winner"] = .object(winners.mapValues { _ in .string(verdict) })
                answer["rationale"] = .string("first states \(a) facts, second \(b)")
            }
            return .content(CanonicalJSON.string(.object(answer)))
        }
    }

    /// The decoded images and the joined text of a request's messages.
    static func parts(of body: JSONValue) -> (images: [Data], text: String) {
        var images: [Data] = []
        var text = ""
        for message in body["messages"]?.arrayValue ?? [] {
            if let string = message["content"]?.stringValue { text += string + "\n" }
            for part in message["content"]?.arrayValue ?? [] {
                if let t = part["text"]?.stringValue { text += t + "\n" }
                if let url = part["image_url"]?["url"]?.stringValue, let comma = url.firstIndex(of: ","),
                    let data = Data(base64Encoded: String(url[url.index(after: comma)...]))
                {
                    images.append(data)
                }
            }
        }
        return (images, text)
    }

    static func line(after marker: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(marker) }.map { String($0.dropFirst(marker.count)) }
    }

    /// Checks the messages the way vLLM's OpenAI server does before anything reaches the model:
    /// content is a string or a list of typed parts; an `image_url` part holds `{url}`; the URL is a
    /// data, HTTP or file URL; a data URL is base64 of a decodable image; at most `imageLimit` images.
    static func validateMessages(_ messages: [JSONValue], imageLimit: Int) throws(StubRejection) {
        var images = 0
        for (m, message) in messages.enumerated() {
            guard let role = message["role"]?.stringValue else {
                throw StubRejection(message: "messages.\(m).role: Field required")
            }
            guard ["system", "user", "assistant", "tool", "developer"].contains(role) else {
                throw StubRejection(
                    message: "messages.\(m).role: Input should be 'system', 'user', 'assistant', 'tool' or 'developer'")
            }
            switch message["content"] {
            case .string?, .null?, nil: continue
            case .array(let parts)?:
                for (p, part) in parts.enumerated() {
                    let location = "messages.\(m).content.\(p)"
                    switch part["type"]?.stringValue {
                    case "text":
                        guard part["text"]?.stringValue != nil else {
                            throw StubRejection(message: "\(location).text: Field required")
                        }
                    case "image_url":
                        guard let url = part["image_url"]?["url"]?.stringValue else {
                            throw StubRejection(
                                message: part["image_url"]?.objectValue == nil
                                    ? "\(location).image_url: Input should be a valid dictionary"
                                    : "\(location).image_url.url: Field required")
                        }
                        images += 1
                        try validateImageURL(url)
                    case let other?:
                        throw StubRejection(message: "Unknown part type: \(other)")
                    case nil:
                        throw StubRejection(message: "\(location).type: Field required")
                    }
                }
            default:
                throw StubRejection(message: "messages.\(m).content: Input should be a valid string or list")
            }
        }
        if images > imageLimit {
            throw StubRejection(message: "At most \(imageLimit) image(s) may be provided in one prompt.")
        }
    }

    private static func validateImageURL(_ url: String) throws(StubRejection) {
        guard url.hasPrefix("data:") else {
            if url.hasPrefix("http://") || url.hasPrefix("https://") || url.hasPrefix("file:") {
                throw StubRejection(message: "The stub cannot fetch \(url); send images inline as data URLs.")
            }
            throw StubRejection(message: "The URL must be either a HTTP, data or file URL.")
        }
        guard let comma = url.firstIndex(of: ",") else {
            throw StubRejection(message: "not enough values to unpack (expected 2, got 1)")
        }
        let spec = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        guard let semicolon = spec.firstIndex(of: ";") else {
            throw StubRejection(message: "not enough values to unpack (expected 2, got 1)")
        }
        guard spec[spec.index(after: semicolon)...] == "base64" else {
            throw StubRejection(message: "Only base64 data URLs are supported for now.")
        }
        guard let bytes = Data(base64Encoded: String(url[url.index(after: comma)...])) else {
            throw StubRejection(message: "Incorrect padding")
        }
        let magic: [[UInt8]] = [[0x89, 0x50, 0x4E, 0x47], [0xFF, 0xD8, 0xFF], Array("GIF8".utf8), Array("RIFF".utf8)]
        guard magic.contains(where: { bytes.starts(with: $0) }) else {
            throw StubRejection(message: "cannot identify image file <_io.BytesIO object>")
        }
        if bytes.starts(with: magic[0]) {
            do { _ = try PNGDecoder.decode(bytes) } catch {
                throw StubRejection(message: "\(error)")
            }
        }
    }

    /// Tokens the way a BPE tokenizer roughly splits text: words, single digits, spaces, punctuation.
    public static func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        func kind(_ c: Character) -> Int { c.isLetter || c == "_" ? 0 : c.isNumber ? 1 : c.isWhitespace ? 2 : 3 }
        for c in text {
            if let last = current.last, kind(last) == kind(c), kind(c) == 0 || kind(c) == 2 {
                current.append(c)
            } else {
                if !current.isEmpty { tokens.append(current) }
                current = String(c)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    /// `top_logprobs` for one token: a digit is most likely itself, then its neighbours (so a
    /// G-Eval expectation differs from the sampled score); other tokens get placeholder alternatives.
    static func alternatives(for token: String, count: Int) -> [(String, Double)] {
        if let digit = Int(token), token.count == 1 {
            let all = [(token, log(0.8)), (String((digit + 1) % 10), log(0.12)), (String((digit + 9) % 10), log(0.08))]
            return Array(all.prefix(count))
        }
        return Array(
            ([token] + ["alt1", "alt2", "alt3"]).prefix(count).enumerated().map { ($1, -0.25 - Double($0) * 1.5) })
    }
}
