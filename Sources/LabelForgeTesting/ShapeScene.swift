/// What the stub VLM sees in an image of flat shapes on a plain background: read from the pixels,
/// never from a file name, so its answers are checkable against `data/shapes/` ground truth.
public struct ShapeScene: Sendable, Equatable {
    public var shape: String
    public var color: String
    public var count: Int
    public var background: String

    public init(shape: String, color: String, count: Int, background: String) {
        self.shape = shape
        self.color = color
        self.count = count
        self.background = background
    }

    /// Named colors the stub can tell apart (nearest in RGB).
    static let colorNames: [(name: String, rgb: (Int, Int, Int))] = [
        ("red", (220, 40, 40)), ("green", (40, 170, 60)), ("blue", (40, 80, 220)), ("yellow", (235, 200, 30)),
        ("orange", (240, 140, 20)), ("purple", (130, 50, 170)), ("white", (255, 255, 255)), ("black", (20, 20, 20)),
        ("gray", (128, 128, 128)),
    ]

    static let numberWords = [1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"]

    /// The questions a stub user asks about a scene, one fact each, in this order.
    public static let questions = [
        "What shape are the figures in the image?", "What color are they?", "How many of them are there?",
        "What color is the background?",
    ]

    /// A one-sentence answer stating the fact a question asks about (the caption otherwise).
    public func answer(to question: String) -> String {
        let q = question.lowercased()
        if q.contains("background") { return "The background is \(background)." }
        if q.contains("how many") { return "There \(count == 1 ? "is" : "are") \(count) of them." }
        if q.contains("color") { return "They are \(color)." }
        if q.contains("shape") { return "They are \(shape)s." }
        return caption.prefix(1).uppercased() + caption.dropFirst() + "."
    }

    /// The caption a perfect VLM would write, e.g. "three red circles on a white background".
    public var caption: String {
        "\(Self.numberWords[count] ?? String(count)) \(color) \(count == 1 ? shape : shape + "s") on a \(background) background"
    }

    static func nearestColor(_ r: Int, _ g: Int, _ b: Int) -> String {
        colorNames.min { lhs, rhs in
            distance((r, g, b), lhs.rgb) < distance((r, g, b), rhs.rgb)
        }!.name
    }

    static func distance(_ a: (Int, Int, Int), _ b: (Int, Int, Int)) -> Int {
        (a.0 - b.0) * (a.0 - b.0) + (a.1 - b.1) * (a.1 - b.1) + (a.2 - b.2) * (a.2 - b.2)
    }

    /// Finds the background (the border's most common color), the shapes (connected regions of
    /// other pixels, ignoring specks), their color, and their kind from how much of the bounding box
    /// each fills: a square about all of it, a circle π/4, a triangle half.
    public static func read(_ image: RGBImage) -> ShapeScene {
        let w = image.width
        let h = image.height
        var border: [Int: Int] = [:]
        func key(_ p: (r: Int, g: Int, b: Int)) -> Int { p.r << 16 | p.g << 8 | p.b }
        for x in 0..<w {
            border[key(image.pixel(x: x, y: 0)), default: 0] += 1
            border[key(image.pixel(x: x, y: h - 1)), default: 0] += 1
        }
        for y in 0..<h {
            border[key(image.pixel(x: 0, y: y)), default: 0] += 1
            border[key(image.pixel(x: w - 1, y: y)), default: 0] += 1
        }
        let bg = border.max { $0.value < $1.value }!.key
        let bgRGB = (bg >> 16 & 0xFF, bg >> 8 & 0xFF, bg & 0xFF)

        var foreground = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let p = image.pixel(x: x, y: y)
                foreground[y * w + x] = distance((p.r, p.g, p.b), bgRGB) > 60 * 60
            }
        }
        var seen = [Bool](repeating: false, count: w * h)
        var shapes: [String] = []
        var sum = (0, 0, 0)
        var total = 0
        for start in 0..<(w * h) where foreground[start] && !seen[start] {
            var stack = [start]
            seen[start] = true
            var area = 0
            var (minX, minY, maxX, maxY) = (w, h, 0, 0)
            var local = (0, 0, 0)
            while let i = stack.popLast() {
                let x = i % w
                let y = i / w
                area += 1
                (minX, minY, maxX, maxY) = (min(minX, x), min(minY, y), max(maxX, x), max(maxY, y))
                let p = image.pixel(x: x, y: y)
                local = (local.0 + p.r, local.1 + p.g, local.2 + p.b)
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= 0 && ny >= 0 && nx < w && ny < h && foreground[ny * w + nx] && !seen[ny * w + nx] {
                    seen[ny * w + nx] = true
                    stack.append(ny * w + nx)
                }
            }
            guard area >= 20 else { continue }
            let fill = Double(area) / Double((maxX - minX + 1) * (maxY - minY + 1))
            shapes.append(fill > 0.9 ? "square" : fill > 0.64 ? "circle" : "triangle")
            sum = (sum.0 + local.0, sum.1 + local.1, sum.2 + local.2)
            total += area
        }
        let kinds = Dictionary(grouping: shapes, by: { $0 }).mapValues(\.count)
        return ShapeScene(
            shape: kinds.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key ?? "none",
            color: total > 0 ? nearestColor(sum.0 / total, sum.1 / total, sum.2 / total) : "none",
            count: shapes.count,
            background: nearestColor(bgRGB.0, bgRGB.1, bgRGB.2))
    }

    static let shapeNames: Set<String> = ["circle", "square", "triangle", "star", "rectangle", "oval"]

    /// How many of the scene's four facts a caption states correctly: the shape, the color (the
    /// word before the shape), the count (a number or number word), and the background (the word
    /// before "background").
    public func factsStated(in caption: String) -> Int {
        let words = caption.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
        let singular = words.map {
            $0.hasSuffix("s") && Self.shapeNames.contains(String($0.dropLast())) ? String($0.dropLast()) : $0
        }
        var facts = 0
        if let i = singular.firstIndex(where: Self.shapeNames.contains) {
            if singular[i] == shape { facts += 1 }
            if i > 0 && words[i - 1] == color { facts += 1 }
        }
        if let i = words.firstIndex(of: "background"), i > 0, words[i - 1] == background { facts += 1 }
        let numbers = Dictionary(uniqueKeysWithValues: Self.numberWords.map { ($0.value, $0.key) })
        if let stated = words.lazy.compactMap({ numbers[$0] ?? Int($0) }).first, stated == count { facts += 1 }
        return facts
    }
}
