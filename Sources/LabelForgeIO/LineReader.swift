import Foundation
import LabelForgeCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a text file one line at a time without loading it whole.
public final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>? = nil
    private var capacity: Int = 0
    /// The 1-based number of the line most recently returned.
    public private(set) var lineNumber = 0
    /// Whether the line most recently returned ended with a newline; only a file's last line can
    /// lack one (for example, one a killed process left half written).
    public private(set) var terminated = true
    public let path: String

    /// - Throws: `LabelForgeError.fileNotFound` when the file cannot be opened.
    public init(path: String) throws {
        guard let file = fopen(path, "r") else {
            throw LabelForgeError(.fileNotFound, "Cannot open \(path): \(String(cString: strerror(errno))).")
        }
        self.file = file
        self.path = path
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    /// The next line without its line terminator (`\n` or `\r\n`), or `nil` at end of file.
    public func next() -> String? {
        let count = getline(&buffer, &capacity, file)
        guard count >= 0, let buffer else { return nil }
        lineNumber += 1
        terminated = count > 0 && buffer[count - 1] == 0x0A
        var length = count
        while length > 0 && (buffer[length - 1] == 0x0A || buffer[length - 1] == 0x0D) { length -= 1 }
        return buffer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
}
