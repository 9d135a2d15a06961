import LabelForgeCore

extension RunConfig {
    /// A hard cap on what one `run` (or `--resume`) spends (`budget:`): US dollars at the engines'
    /// `pricing`, tokens (input and output, every engine). Before a request is sent it reserves its
    /// worst case; a request that could cross the cap is not sent, and the run stops, resumable.
    public struct Budget: Sendable, Equatable {
        public var usd: Double?
        public var tokens: Int?

        public init(usd: Double? = nil, tokens: Int? = nil) {
            self.usd = usd
            self.tokens = tokens
        }

        var json: JSONValue {
            ["usd": usd.map(JSONValue.double) ?? .null, "tokens": tokens.map { .int(Int64($0)) } ?? .null]
        }

        /// The `budget:` section, if the config has one.
        /// - Throws: `LabelForgeError.invalidConfig` naming the file and line of a value that is not
        ///   positive, or a budget with neither key.
        static func parse(_ node: ConfigReader?) throws -> Budget? {
            guard let node else { return nil }
            try node.checkKeys(["usd", "tokens"])
            let usdNode = try node.child("usd")
            let tokensNode = try node.child("tokens")
            let budget = Budget(usd: try usdNode?.double(), tokens: try tokensNode?.int())
            if let usd = budget.usd, usd <= 0 { throw usdNode!.error("a budget in US dollars must be more than 0.") }
            if let tokens = budget.tokens, tokens <= 0 {
                throw tokensNode!.error("a budget in tokens must be more than 0.")
            }
            if budget.usd == nil && budget.tokens == nil {
                throw node.error("budget needs 'usd' (US dollars at the engines' pricing) or 'tokens', or both.")
            }
            return budget
        }
    }
}
