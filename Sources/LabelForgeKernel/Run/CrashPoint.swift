import Foundation

/// Named moments of a run at which `LABELFORGE_CRASH_AT=<name>` makes the process SIGKILL
/// itself, so crash-safety tests and `bench/kill_resume.sh` can die exactly where a timer rarely
/// lands: inside a dataset-wide stage, or between the summary and the HTML report. Unset (as in
/// every normal run), each point costs one comparison.
package enum CrashPoint: String, CaseIterable {
    /// A barrier's input is committed; the barrier has not started.
    case barrierInputCommitted = "barrier-input-committed"
    /// A barrier wrote its outputs (as temporary files) but has not committed its result.
    case barrierOutputsWritten = "barrier-outputs-written"
    /// A barrier's result is committed and recorded in the manifest.
    case barrierCommitted = "barrier-committed"
    /// Every output is written; the report and the summary are not.
    case beforeSummary = "before-summary"
    /// The summary is in the manifest; the HTML report is not written yet.
    case afterSummary = "after-summary"

    private static let armed = ProcessInfo.processInfo.environment["LABELFORGE_CRASH_AT"].flatMap(CrashPoint.init)

    /// Dies here when this point is the armed one.
    package func reach() {
        if Self.armed == self { kill(getpid(), SIGKILL) }
    }
}
