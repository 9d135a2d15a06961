import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeLLM

/// A manifest read back for resuming: repairs a torn last line, and returns the (row, stage)
/// records already written.
package enum ManifestRecovery {
    package struct State {
        package var run: RunRecord?
        package var rows: [String: RowRecord]
        package var completed: Bool
        /// Barriers whose result the run committed.
        package var barriers: Set<String> = []
        /// Batches a batch engine created, in the order recorded.
        package var batches: [BatchRecord] = []

        package init(run: RunRecord? = nil, rows: [String: RowRecord], completed: Bool, barriers: Set<String> = []) {
            self.run = run
            self.rows = rows
            self.completed = completed
            self.barriers = barriers
        }
    }

    package static func key(row: String, stage: String) -> String { row + "\u{0}" + stage }

    /// Truncates a partly written last line (a process killed mid-write), then reads the manifest.
    /// - Throws: `LabelForgeError.invalidJSON` naming the line when another line is not a record.
    package static func repairAndRead(_ path: String) throws -> State {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { return State(rows: [:], completed: false) }
        let size = try handle.seekToEnd()
        if size > 0 {
            // Find the last newline from the end; whatever follows it is a torn line.
            var end = size
            var keep: UInt64 = 0
            while end > 0 {
                let start = end > 65536 ? end - 65536 : 0
                try handle.seek(toOffset: start)
                let chunk = try handle.read(upToCount: Int(end - start)) ?? Data()
                if let index = chunk.lastIndex(of: 0x0A) {
                    keep = start + UInt64(index - chunk.startIndex) + 1
                    break
                }
                end = start
            }
            if keep < size { try handle.truncate(atOffset: keep) }
        }
        try handle.close()
        var state = State(rows: [:], completed: false)
        let reader = try ManifestReader(path: path)
        while let record = try reader.read() {
            switch record {
            case .run(let run): state.run = run
            case .row(let row): state.rows[key(row: row.rowID, stage: row.stage)] = row
            case .barrier(let barrier): state.barriers.insert(barrier.stage)
            case .summary(let summary): state.completed = summary.isFinal
            case .batch(let batch): state.batches.append(batch)
            }
        }
        return state
    }

    /// Rewrites a manifest without its failed row results and its summaries, so that resuming runs
    /// those rows again. Dataset-wide stages see every row at once, so when anything failed, the
    /// results of the barriers and of every stage after the first one are forgotten too (they come
    /// back from the cache). The new manifest replaces the old one atomically.
    /// - Returns: how many failed (row, stage) results were forgotten.
    package static func forgetFailures(_ path: String, graph: StageGraph) throws -> Int {
        var failed = 0
        let reader = try ManifestReader(path: path)
        while let record = try reader.read() {
            if case .row(let row) = record, row.error != nil { failed += 1 }
        }
        let afterBarrier = Set(
            graph.segments.dropFirst().flatMap(\.stages).map(\.config.id)
                + graph.segments.compactMap(\.barrier?.config.id))
        let temporary = path + ".retry"
        try? FileManager.default.removeItem(atPath: temporary)
        let writer = try ManifestWriter(path: temporary)
        let again = try ManifestReader(path: path)
        while let record = try again.read() {
            switch record {
            case .summary: continue
            case .barrier where failed > 0: continue
            case .row(let row) where row.error != nil || (failed > 0 && afterBarrier.contains(row.stage)): continue
            default: try writer.append(record)
            }
        }
        try writer.sync()
        guard rename(temporary, path) == 0 else {
            throw LabelForgeError(.io, "Cannot replace \(path) with \(temporary): \(String(cString: strerror(errno))).")
        }
        return failed
    }

    /// Run directories under `runsDir` of the same plan whose manifest never reached a final summary.
    /// Another shard's run is not this one's to resume: only runs of the same shard (or none) count.
    package static func unfinishedRuns(runsDir: String, planHash: String, shard: ShardSpec? = nil) -> [String] {
        let prefix = String(ContentHash.unprefixed(planHash).prefix(8))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []
        return names.sorted().filter { name in
            let parts = name.split(separator: "-")
            guard parts.count >= 3, parts[2] == prefix,
                let (first, last) = ManifestReader.ends(of: runsDir + "/" + name + "/manifest.jsonl"),
                case .run(let run) = first, run.planHash == planHash, run.shard == shard
            else { return false }
            if case .summary(let summary) = last, summary.isFinal { return false }
            return true
        }.map { runsDir + "/" + $0 }
    }
}
