import LabelForgeCore
import LabelForgeKernel
import LabelForgeLLM

/// `rubric_score` with `mode: pairwise`: which of two candidates is better on each criterion.
///
/// Judges are biased towards one position, so every row is judged twice: with candidate `a` shown
/// first, then with `b` shown first (its own seed, stage id + `#swapped`). Each call answers
/// `{winner: {criterion: first|second|tie}, rationale}` under a JSON schema; the verdicts are mapped
/// back to `a`/`b`, and a criterion whose two verdicts disagree is `inconsistent`.
public struct PairwiseRubricStage: ChatStage {
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
        schema = RubricOptions.schema(criteria: options.criteria, pairwise: true)
        constraint = .jsonSchema(name: config.id, schema: schema)
    }
    public let version = 1
    public let outputFields = ["winner", "inconsistent", "verdicts", "rationale"]
    public let outputTypes: [String: ColumnType] = [
        "winner": .members(.string), "inconsistent": .bool, "rationale": .members(.string),
    ]
    public var goldPairs: [(output: String, gold: String)] { [] }

    /// Call names, in call order: which candidate the judge saw first.
    static let orders = ["a_first", "b_first"]

    public var callVariableNames: Set<String> { ["first", "second", "order"] }

    /// Verdicts are words, not scores: no expectation is computed, so no logprobs are asked for.
    public func usesLogprobs(in dialect: EngineDialect) -> Bool { false }

    public var inputFields: [String] { options.candidates }

    public var optionReferences: [String] { options.candidates }

    /// A candidate that is null or empty is not judged: the row fails with `missing_candidate`.
    public func inputFailure(in row: RowContext) -> StageFailure? {
        if let failure = imageFailure(in: row) { return failure }
        for field in options.candidates {
            let value = row.value(at: field)
            if value == nil || value == .null || value?.textForm.allSatisfy(\.isWhitespace) == true {
                return StageFailure(
                    errorClass: "missing_candidate",
                    message: "candidate field '\(field)' is empty in this row; nothing to compare")
            }
        }
        return nil
    }

    public func calls(for row: RowContext) -> [StageCall] {
        let a = row.value(at: options.candidates[0])?.textForm ?? ""
        let b = row.value(at: options.candidates[1])?.textForm ?? ""
        return [
            StageCall(variables: ["first": .string(a), "second": .string(b), "order": "a_first"]),
            StageCall(
                seedSuffix: "#swapped", variables: ["first": .string(b), "second": .string(a), "order": "b_first"]),
        ]
    }

    public func parse(_ response: ChatResponse, dialect: EngineDialect) -> Result<[String: JSONValue], StageFailure> {
        parse(response, call: 0, dialect: dialect)
    }

    /// One call's verdicts, mapped from positions (`first`/`second`) back to candidates (`a`/`b`).
    public func parse(_ response: ChatResponse, call: Int, dialect: EngineDialect) -> Result<
        [String: JSONValue], StageFailure
    > {
        validatedJSON(response, schema: schema).map { value in
            let swapped = call == 1
            var verdicts: [String: JSONValue] = [:]
            for (criterion, position) in value["winner"]?.objectValue ?? [:] {
                switch position.stringValue {
                case "first": verdicts[criterion] = swapped ? "b" : "a"
                case "second": verdicts[criterion] = swapped ? "a" : "b"
                default: verdicts[criterion] = "tie"
                }
            }
            return ["verdicts": .object(verdicts), "rationale": value["rationale"] ?? ""]
        }
    }

    public func merge(_ calls: [[String: JSONValue]]) -> [String: JSONValue] {
        let first = calls.first?["verdicts"] ?? [:]
        let second = calls.count > 1 ? calls[1]["verdicts"] ?? [:] : first
        var winner: [String: JSONValue] = [:]
        for c in options.criteria {
            winner[c.name] = first[c.name] == second[c.name] ? first[c.name] ?? .null : "inconsistent"
        }
        return [
            "winner": .object(winner),
            "inconsistent": .bool(winner.values.contains("inconsistent")),
            "verdicts": .object(
                Dictionary(uniqueKeysWithValues: zip(Self.orders, calls.map { $0["verdicts"] ?? .null }))),
            "rationale": .object(
                Dictionary(uniqueKeysWithValues: zip(Self.orders, calls.map { $0["rationale"] ?? .null }))),
        ]
    }
}
