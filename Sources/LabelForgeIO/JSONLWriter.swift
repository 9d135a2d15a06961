import Foundation
import LabelForgeCore

/// Writes canonical JSON lines to a file, flushing in small batches.
///
/// Used for manifests and outputs: every line is canonical JSON (docs/architecture.md), so files
/// compare byte for byte.
public final class JSONLWriter {
    private let handle: FileHandle
    private var pending: [UInt8] = []
    private var pendingLines = 0
    private let flushEvery: Int
    public let path: String

    /// Opens `path` for appending, creating it when missing.
    /// - Parameters:
    ///   - path: the JSONL file.
    ///   - flushEvery: how many lines to buffer before writing them out.
    public init(path: String, flushEvery: Int = 32) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw LabelForgeError(.io, "Cannot create \(path); check that its directory is writable.")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw LabelForgeError(.io, "Cannot open \(path) for writing.")
        }
        handle.seekToEndOfFile()
        self.handle = handle
        self.path = path
        self.flushEvery = flushEvery
    }

    deinit {
        try? flush()
        try? handle.close()
    }

    /// Appends one value as a canonical JSON line.
    public func append(_ value: JSONValue) throws {
        CanonicalJSON.write(value, into: &pending)
        pending.append(0x0A)
        pendingLines += 1
        if pendingLines >= flushEvery { try flush() }
    }

    /// Appends one line already serialized as canonical JSON (without its newline).
    public func append(canonical bytes: [UInt8]) throws {
        pending.append(contentsOf: bytes)
        pending.append(0x0A)
        pendingLines += 1
        if pendingLines >= flushEvery { try flush() }
    }

    /// Writes buffered lines to the file.
    /// - Throws: `LabelForgeError.io` naming the file and the OS's reason (a full disk, say).
    public func flush() throws {
        guard !pending.isEmpty else { return }
        do {
            try handle.write(contentsOf: pending)
        } catch {
            throw LabelForgeError(.io, "Cannot write \(path): \(Self.reason(error)).")
        }
        pending.removeAll(keepingCapacity: true)
        pendingLines = 0
    }

    /// Flushes and asks the OS to put the bytes on disk.
    public func sync() throws {
        try flush()
        do {
            try handle.synchronize()
        } catch {
            throw LabelForgeError(.io, "Cannot write \(path) to disk: \(Self.reason(error)).")
        }
    }

    /// The OS's words for a failed write (`No space left on device`), not Foundation's wrapper.
    static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        let posix =
            (nsError.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap {
                $0.domain == NSPOSIXErrorDomain ? $0.code : nil
            } ?? (nsError.domain == NSPOSIXErrorDomain ? nsError.code : nil)
        if let posix { return String(cString: strerror(Int32(posix))) }
        return nsError.localizedDescription
    }
}
