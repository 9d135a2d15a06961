import Foundation
import LabelForgeCore
import LabelForgeLLM

/// A `batch` line of the manifest: a batch engine's batch, recorded with its items before it is
/// submitted, then again with its id once the provider gave one (docs/batch.md). A resumed run
/// polls the batches its manifest lists instead of submitting their items again.
public struct BatchRecord: Sendable, Equatable {
    public var entry: BatchEntry

    public init(_ entry: BatchEntry) { self.entry = entry }

    public var json: JSONValue {
        var json: [String: JSONValue] = [
            "type": "batch", "engine": .string(entry.engine), "submission": .string(entry.submission),
        ]
        if let id = entry.batchID { json["batch_id"] = .string(id) }
        if !entry.items.isEmpty { json["items"] = .array(entry.items.map(JSONValue.string)) }
        return .object(json)
    }

    package init(_ f: ManifestFields) throws {
        entry = BatchEntry(
            engine: try f.string("engine"), submission: try f.string("submission"),
            batchID: try f.optionalString("batch_id"), items: try f.optionalStrings("items") ?? [])
    }
}

/// The run's manifest as a batch engine's ledger: batches are appended (and synced) as they are
/// created; those of every earlier attempt of the run are read back from its records (the transport
/// counts an item in its last batch only).
package final class ManifestBatchLedger: BatchLedger {
    private let manifest: ManifestWriter
    private let previous: [BatchEntry]

    package init(manifest: ManifestWriter, previous: [BatchRecord]) {
        self.manifest = manifest
        self.previous = previous.map(\.entry)
    }

    package func recorded(engine: String) -> [BatchEntry] {
        var joined: [String: BatchEntry] = [:]
        var order: [String] = []
        for entry in previous where entry.engine == engine {
            if joined[entry.submission] == nil {
                order.append(entry.submission)
                joined[entry.submission] = BatchEntry(engine: engine, submission: entry.submission)
            }
            if let id = entry.batchID { joined[entry.submission]!.batchID = id }
            if !entry.items.isEmpty { joined[entry.submission]!.items = entry.items }
        }
        return order.compactMap { joined[$0] }.filter { !$0.items.isEmpty }
    }

    package func record(_ entry: BatchEntry) throws {
        try manifest.append(.batch(BatchRecord(entry)))
        try manifest.sync()
    }
}
