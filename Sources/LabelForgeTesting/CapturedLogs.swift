import Logging
import NIOConcurrencyHelpers

/// Collects every log message a `Logger` emits, at every level, so tests can check what
/// reached the logs (for example, that no secret did).
public final class CapturedLogs: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    public init() {}

    /// A logger at `.trace` that records into this collection.
    public var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    public var all: [String] { lines.withLockedValue { $0 } }

    fileprivate func append(_ line: String) { lines.withLockedValue { $0.append(line) } }

    private struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            sink.append("\(event.level) \(event.message) \(event.metadata ?? [:])")
        }
    }
}
