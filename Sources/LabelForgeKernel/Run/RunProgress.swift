import LabelForgeCore
import LabelForgeEval

/// Progress while a run is under way, for the CLI's progress bar.
public struct RunProgress: Sendable {
    /// A dataset-wide stage's own work while it runs: texts embedded, queries searched, pairs verified.
    public struct Phase: Sendable {
        public var stage: String
        /// What is counted, e.g. "texts embedded".
        public var name: String
        public var done: Int
        public var total: Int
        /// Since the phase began, for its rate and ETA.
        public var elapsedSeconds: Double
    }

    public var done: Int
    public var total: Int
    public var failedRows: Int
    public var cacheHits: Int
    public var cacheLookups: Int
    public var elapsedSeconds: Double
    /// Set while a dataset-wide stage runs: the rows are all in, and this is what moves.
    public var phase: Phase? = nil
}
