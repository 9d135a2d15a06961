import Foundation
import LabelForgeCore
import Synchronization

/// The engine requests a dataset-wide stage made, each distinct cache key once with how it was
/// answered, so the stage's requests are counted like row requests and recorded in the manifest:
/// on the lines of the rows they concern, and on the stage's `barrier` line for the rest (a
/// corpus file's passages).
package final class BarrierLedger: Sendable {
    package struct Request: Sendable {
        package var cacheHit: Bool
        package var attempts: Int
        /// Prompt tokens as the engine counted them; for a request without an answer under
        /// `labelforge plan`, an estimate (4 characters a token).
        package var tokensIn: Int
        package var failed: Bool
        /// The text was longer than the model's window and was cut to it.
        package var truncated = false
    }

    private struct State {
        package var requests: [String: Request] = [:]
        package var order: [String] = []
        package var attributed: Set<String> = []
    }

    private let state = Mutex(State())

    /// Records a request the first time its key is seen.
    package func record(_ key: String, _ request: Request) {
        state.withLock { state in
            guard state.requests[key] == nil else { return }
            state.requests[key] = request
            state.order.append(key)
        }
    }

    /// What `keys` cost one row, and marks them as recorded on a row line.
    package func attribute(_ keys: [String]) -> (cacheHits: Int, attempts: Int, tokensIn: Int) {
        state.withLock { state in
            var totals = (cacheHits: 0, attempts: 0, tokensIn: 0)
            for key in keys {
                state.attributed.insert(key)
                guard let request = state.requests[key] else { continue }
                if request.cacheHit { totals.cacheHits += 1 }
                totals.attempts += request.attempts
                totals.tokensIn += request.tokensIn
            }
            return totals
        }
    }

    /// Keys no row line lists, in the order first requested.
    package var unattributedKeys: [String] {
        state.withLock { state in state.order.filter { !state.attributed.contains($0) } }
    }

    /// Every distinct request: lookups, cache hits, prompt tokens, failures and truncated texts.
    package var totals: BarrierRecord.Requests {
        state.withLock { state in
            var totals = BarrierRecord.Requests()
            for request in state.requests.values {
                totals.lookups += 1
                if request.cacheHit { totals.cacheHits += 1 }
                if request.truncated { totals.truncated += 1 }
                if request.failed {
                    totals.failed += 1
                    totals.estimatedTokensIn += request.tokensIn
                } else {
                    totals.tokensIn += request.tokensIn
                }
            }
            return totals
        }
    }
}
