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
    /// The first line that was not valid UTF-8: its number, the 0-based offset of its first bad
    /// byte, and that byte. Such a line is returned with U+FFFD in place of the bad bytes.
    public private(set) var invalidUTF8: (line: Int, offset: Int, byte: UInt8)?
    public let path: String

    /// - Throws: `LabelForgeError.fileNotFound` when the file cannot be opened.
    public init(path: String) throws {
        guard let file = fopen(path, "r") else {
            throw LabelForgeError(.fileNotFound, "Cannot open \(path): \(String(cString: strerror(errno))).")
        }
        self.file = file
        self.path = path
    }

    /// Reads the stream at `fileDescriptor` (a pipe from a child process), which the reader then
    /// owns and closes; `name` stands for it in messages.
    /// - Throws: `LabelForgeError.fileNotFound` when the descriptor cannot be read.
    public init(fileDescriptor: Int32, name: String) throws {
        guard let file = fdopen(fileDescriptor, "r") else {
            throw LabelForgeError(.fileNotFound, "Cannot read \(name): \(String(cString: strerror(errno))).")
        }
        self.file = file
        self.path = name
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
            let bytes = UnsafeBufferPointer(start: $0, count: length)
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            if invalidUTF8 == nil {
                let offset = Self.firstInvalidByte(in: bytes)
                invalidUTF8 = (lineNumber, offset, bytes[offset])
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func firstInvalidByte(in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var offset = 0
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while case .scalarValue(let scalar) = decoder.decode(&iterator) {
            offset += UTF8.width(scalar)
        }
        return min(offset, bytes.count - 1)
    }
}
