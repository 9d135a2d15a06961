/// An error a user can act on: an opaque code plus a sentence that says what went wrong and
/// what to do, naming the file, line and field where there is one.
public struct LabelForgeError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is; stable across releases, used for exit codes and manifests.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidJSON = Code("invalid_json")
        public static let invalidConfig = Code("invalid_config")
        public static let invalidDataset = Code("invalid_dataset")
        public static let invalidPromptPack = Code("invalid_prompt_pack")
        public static let fileNotFound = Code("file_not_found")
        public static let engineUnavailable = Code("engine_unavailable")
        public static let engineFailed = Code("engine_failed")
        public static let engineHTTP = Code("engine_http_error")
        public static let timeout = Code("timeout")
        public static let invalidResponse = Code("invalid_response")
        public static let schemaViolation = Code("schema_violation")
        public static let cache = Code("cache_error")
        public static let runAborted = Code("run_aborted")
        public static let io = Code("io_error")
        public static let interrupted = Code("interrupted")
        public static let cacheMiss = Code("cache_miss")
        /// A run stopped before its `budget` could be crossed (resumable).
        public static let budgetReached = Code("budget_reached")
    }

    public let code: Code
    public let message: String
    /// The HTTP status an engine answered with, for `engineHTTP` errors.
    public var httpStatus: Int? = nil
    /// The prompt tokens the request would have cost, for a `cacheMiss` from a transport that counts
    /// what it is not asked to send (`labelforge plan`'s); the run records them as the row's.
    public var promptTokens: Int? = nil

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// An engine's HTTP error, with its status.
    public init(_ code: Code, _ message: String, httpStatus: Int) {
        self.init(code, message)
        self.httpStatus = httpStatus
    }

    public var description: String { message }

    /// Whether this error is about the user's input (config, dataset, prompt pack) rather than
    /// about the run; the CLI maps these to exit code 64.
    public var isUsageError: Bool {
        [.invalidConfig, .invalidDataset, .invalidPromptPack, .fileNotFound].contains(code)
    }
}
