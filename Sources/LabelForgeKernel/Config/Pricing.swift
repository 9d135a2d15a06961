import LabelForgeCore

extension RunConfig {
    /// What an engine's tokens cost (`pricing:`), in US dollars per million tokens: what `plan`
    /// prices a run's requests with.
    public struct Pricing: Sendable, Equatable {
        public var input: Double
        public var output: Double
        /// Input tokens a provider's prompt cache served; `input` where not given.
        public var cachedInput: Double?
        /// The share a batch API takes off the price (0.5: half price).
        public var batchDiscount: Double

        public init(input: Double, output: Double, cachedInput: Double? = nil, batchDiscount: Double = 0.5) {
            self.input = input
            self.output = output
            self.cachedInput = cachedInput
            self.batchDiscount = batchDiscount
        }

        /// The price of these tokens, in US dollars.
        public func cost(input inputTokens: Int, output outputTokens: Int) -> Double {
            (Double(inputTokens) * input + Double(outputTokens) * output) / 1_000_000
        }

        /// As the resolved config lists it.
        var json: JSONValue {
            [
                "input": .double(input), "output": .double(output),
                "cached_input": cachedInput.map(JSONValue.double) ?? .null,
                "batch_discount": .double(batchDiscount),
            ]
        }

        /// The `pricing:` of an engine, if it has one.
        /// - Throws: `LabelForgeError.invalidConfig` naming the file and line of a negative price, a
        ///   discount outside 0–1, an unknown key or a missing price.
        static func parse(_ node: ConfigReader?) throws -> Pricing? {
            guard let node else { return nil }
            try node.checkKeys(["input", "output", "cached_input", "batch_discount"])
            func price(_ key: String, required: Bool) throws -> Double? {
                guard let child = try required ? node.require(key) : node.child(key) else { return nil }
                let value = try child.double()
                guard value >= 0 else {
                    throw child.error("pricing.\(key) must be a price in US dollars per million tokens, 0 or more.")
                }
                return value
            }
            let discountNode = try node.child("batch_discount")
            let discount = try discountNode?.double() ?? 0.5
            guard (0...1).contains(discount) else {
                throw discountNode!.error(
                    "pricing.batch_discount is the share a batch API takes off (0.5: half price), from 0 to 1.")
            }
            return Pricing(
                input: try price("input", required: true)!, output: try price("output", required: true)!,
                cachedInput: try price("cached_input", required: false), batchDiscount: discount)
        }
    }
}

extension RunConfig {
    /// The resolved config as the plan hash covers it: without engines' `pricing` and the `budget`,
    /// which say what requests cost and may cost, not what they are, so changing either keeps a run
    /// resumable.
    static func planJSON(_ resolved: JSONValue) -> JSONValue {
        guard var root = resolved.objectValue, let engines = root["engines"]?.arrayValue else { return resolved }
        root.removeValue(forKey: "budget")
        root["engines"] = .array(
            engines.map { engine in
                guard var members = engine.objectValue else { return engine }
                members.removeValue(forKey: "pricing")
                return .object(members)
            })
        return .object(root)
    }
}

extension RunConfig.Engine {
    /// What this engine's tokens cost as it sends them: `pricing`, less the batch discount for a
    /// `batch` engine; `nil` without `pricing`.
    public var tokenPrices: RunConfig.Pricing? {
        guard var prices = pricing else { return nil }
        guard batch != nil else { return prices }
        let share = 1 - prices.batchDiscount
        prices.input *= share
        prices.output *= share
        prices.cachedInput = prices.cachedInput.map { $0 * share }
        return prices
    }
}
