import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// Why a response could not become a label; recorded in the manifest, never written as output.
public struct StageFailure: Error, Sendable, Equatable {
    public var errorClass: String
    public var message: String

    public init(errorClass: String, message: String) {
        self.errorClass = errorClass
        self.message = message
    }

    /// `{class, message}`, as output and manifest lines record it.
    public var json: JSONValue { ["class": .string(errorClass), "message": .string(message)] }
}

extension StageFailure {
    /// How a failed engine call is recorded.
    package init(_ error: any Error) {
        if error is CancellationError {
            self.init(errorClass: "cancelled", message: "the run was interrupted")
        } else if let error = error as? LabelForgeError {
            self.init(errorClass: error.code.rawValue, message: error.message)
        } else {
            self.init(errorClass: "engine_failed", message: String(describing: error))
        }
    }
}
