import Foundation
import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `rubric_score`: integer scores per criterion on a fixed scale, plus a short rationale, as one
/// JSON object guided by a schema.
///
/// When the engine returns logprobs, each criterion also gets its expected score (G-Eval style):
/// at the token where the score is written, the probabilities of the alternatives that are valid
/// levels of the scale, renormalized, weight those levels. It sits next to the sampled score and is
/// `null` where no logprobs came back or the score's token is not a whole level (e.g. "1" of "10").
public struct RubricScoreStage: ChatStage {
    public let config: RunConfig.Stage
    public let options: RubricOptions
    public let templateVariables: [String: JSONValue]
    public let schema: JSONValue
    public let constraint: OutputConstraint?

    /// Computes once what every request of the stage shares.
    public init(config: RunConfig.Stage, options: RubricOptions) {
        self.config = config
        self.options = options
        templateVariables = options.templateVariables
        schema = RubricOptions.schema(criteria: options.criteria, pairwise: false)
        constraint = .jsonSchema(name: config.id, schema: schema)
    }
    public let version = 1
    public let outputFields = ["scores", "expected_scores", "score", "expected_score", "rationale"]
    public let outputTypes: [String: ColumnType] = [
        "scores": .members(.int64), "expected_scores": .members(.float64), "score": .float64,
        "expected_score": .float64, "rationale": .string,
    ]
    public var goldPairs: [(output: String, gold: String)] { [] }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        let value: JSONValue
        switch validatedJSON(response, schema: schema) {
        case .success(let valid): value = valid
        case .failure(let failure): return .failure(failure)
        }
        let scores = value["scores"]?.objectValue ?? [:]
        var expected: [String: JSONValue] = [:]
        for c in options.criteria {
            expected[c.name] =
                Self.expectedScore(
                    criterion: c.name, range: c.min...c.max, sampled: scores[c.name]?.intValue,
                    logprobs: response.logprobs
                ).map(JSONValue.double)
                ?? .null
        }
        let sampled = options.criteria.compactMap { scores[$0.name]?.doubleValue }
        let expectations = options.criteria.compactMap { expected[$0.name]?.doubleValue }
        return .success([
            "scores": .object(scores), "expected_scores": .object(expected),
            "score": .double(Answers.rounded(sampled.reduce(0, +) / Double(max(1, sampled.count)))),
            "expected_score": expectations.count == options.criteria.count
                ? .double(Answers.rounded(expectations.reduce(0, +) / Double(expectations.count))) : .null,
            "rationale": value["rationale"] ?? "",
        ])
    }

    /// Whether `text` ends with `"<key>":` and optional white space, i.e. a value comes next.
    static func endsWithKey(_ text: String, _ key: String) -> Bool {
        var rest = Substring(text)
        while rest.last?.isWhitespace == true { rest.removeLast() }
        guard rest.last == ":" else { return false }
        rest.removeLast()
        while rest.last?.isWhitespace == true { rest.removeLast() }
        return rest.hasSuffix("\"" + key + "\"")
    }

    /// The probability-weighted score of one criterion from the tokens that wrote it.
    /// - Parameter sampled: the score the response holds; the token must spell all of it.
    static func expectedScore(
        criterion: String, range: ClosedRange<Int>, sampled: Int?, logprobs: [TokenLogprob]?
    ) -> Double? {
        guard let logprobs else { return nil }
        var text = ""
        for token in logprobs {
            // The first non-blank token after `"<criterion>":` is where the score is written.
            if Self.endsWithKey(text, criterion) && !token.token.allSatisfy(\.isWhitespace) {
                var alternatives = token.top.map { ($0.token, $0.logprob) }
                if !alternatives.contains(where: { $0.0 == token.token }) {
                    alternatives.append((token.token, token.logprob))
                }
                var weights: [Int: Double] = [:]
                for (candidate, logprob) in alternatives {
                    guard let level = Int(candidate.trimmingCharacters(in: .whitespaces)), range.contains(level) else {
                        continue
                    }
                    weights[level, default: 0] += exp(logprob)
                }
                let total = weights.values.reduce(0, +)
                guard total > 0, let emitted = Int(token.token.trimmingCharacters(in: .whitespaces)), emitted == sampled
                else { return nil }
                return Answers.rounded(weights.reduce(0) { $0 + Double($1.key) * $1.value } / total)
            }
            text += token.token
        }
        return nil
    }
}

/// `rubric_score`'s options: the criteria, `pointwise` (score one candidate) or `pairwise` (compare
/// two), and for pairwise the two row fields (or `stage.field` outputs) holding the candidates.
public struct RubricOptions: ParsedStageOptions {
    public var criteria: [RunConfig.Criterion]
    public var mode = "pointwise"
    public var candidates: [String] = []

    package static let keys = ["criteria", "mode", "candidates"]

    package static func parse(_ node: ConfigReader, _ context: StageParseContext) throws -> RubricOptions {
        let mode = try node.child("mode")?.oneOf(["pointwise", "pairwise"]) ?? "pointwise"
        let candidatesNode = try node.child("candidates")
        let candidates = try candidatesNode?.stringList() ?? []
        if mode == "pairwise" && candidates.count != 2 {
            throw (candidatesNode ?? node).error(
                "a pairwise rubric_score stage needs 'candidates': the two row fields to compare, e.g. [response_a, response_b]."
            )
        }
        if mode == "pointwise", let candidatesNode, !candidates.isEmpty {
            throw candidatesNode.error("'candidates' applies to mode: pairwise only.")
        }
        var criteria: [RunConfig.Criterion] = []
        for item in try node.require("criteria").items() {
            try item.checkKeys(["name", "description", "scale", "anchors"])
            let scale = try item.child("scale")
            try scale?.checkKeys(["min", "max"])
            let low = try scale?.child("min")?.int() ?? 1
            let high = try scale?.child("max")?.int() ?? 5
            guard low < high else { throw (scale ?? item).error("scale.min must be below scale.max.") }
            var anchors: [Int: String] = [:]
            for entry in try item.child("anchors")?.mapping() ?? [] {
                guard let level = Int(entry.key), (low...high).contains(level) else {
                    throw entry.value.error("anchor '\(entry.key)' is not a level of the scale \(low)..\(high).")
                }
                anchors[level] = try entry.value.string()
            }
            criteria.append(
                RunConfig.Criterion(
                    name: try item.require("name").string(), description: try item.child("description")?.string(),
                    min: low, max: high, anchors: anchors))
        }
        guard !criteria.isEmpty else { throw node.error("a rubric_score stage needs at least one criterion.") }
        return RubricOptions(criteria: criteria, mode: mode, candidates: candidates)
    }

    /// Room for the longest answer the judge schema allows.
    public var defaultMaxTokens: Int? {
        Self.defaultMaxTokens(criteria: criteria, pairwise: mode == "pairwise")
    }

    public var resolvedJSON: [String: JSONValue] {
        let criteria: [JSONValue] = self.criteria.map { c in
            [
                "name": .string(c.name), "description": .optional(c.description),
                "scale": ["min": .int(Int64(c.min)), "max": .int(Int64(c.max))],
                "anchors": .object(
                    Dictionary(uniqueKeysWithValues: c.anchors.map { (String($0.key), .string($0.value)) })),
            ]
        }
        return [
            "criteria": .array(criteria), "mode": .string(mode), "candidates": .array(candidates.map(JSONValue.string)),
        ]
    }
}

/// What both judge modes (`RubricScoreStage`, `PairwiseRubricStage`) derive from the options.
extension RubricOptions {
    /// The criteria as templates read them (`{{#criteria}}`), for both modes.
    var templateVariables: [String: JSONValue] {
        [
            "criteria": .array(
                criteria.map { c in
                    var criterion: [String: JSONValue] = [
                        "name": .string(c.name), "description": .string(c.description ?? ""),
                        "min": .int(Int64(c.min)), "max": .int(Int64(c.max)),
                    ]
                    if !c.anchors.isEmpty {
                        criterion["anchors"] = .string(
                            c.anchors.keys.sorted().map { "\($0) = \(c.anchors[$0]!)" }.joined(separator: "; "))
                    }
                    return .object(criterion)
                })
        ]
    }

    /// The judge schema: integer scores per criterion, or (pairwise) a winner per criterion.
    static func schema(criteria: [RunConfig.Criterion], pairwise: Bool) -> JSONValue {
        pairwise
            ? judgeSchema(field: "winner", criteria: criteria) { _ in
                ["type": "string", "enum": ["first", "second", "tie"]]
            }
            : judgeSchema(field: "scores", criteria: criteria) { c in
                ["type": "integer", "minimum": .int(Int64(c.min)), "maximum": .int(Int64(c.max))]
            }
    }

    /// `{rationale: string ≤ 300 chars, <field>: {criterion: <verdict>}}`, everything required: the
    /// answer shape of every judge (scores, or pairwise winners).
    static func judgeSchema(
        field: String, criteria: [RunConfig.Criterion], verdict: (RunConfig.Criterion) -> JSONValue
    ) -> JSONValue {
        [
            "type": "object", "additionalProperties": false, "required": ["rationale", .string(field)],
            "properties": [
                "rationale": ["type": "string", "maxLength": 300],
                field: [
                    "type": "object", "additionalProperties": false,
                    "properties": .object(Dictionary(criteria.map { ($0.name, verdict($0)) }) { _, last in last }),
                    "required": .array(criteria.map { .string($0.name) }),
                ],
            ],
        ]
    }

    /// `max_tokens` when the config gives none: one token per character of the longest answer the
    /// judge schema allows (a 300-character rationale and every criterion's verdict), plus 16.
    static func defaultMaxTokens(criteria: [RunConfig.Criterion], pairwise: Bool) -> Int {
        (JSONSchemaBound.maxCompactLength(of: schema(criteria: criteria, pairwise: pairwise)) ?? 368) + 16
    }
}
