import Foundation
import LabelForgeCore

/// Writes float32 vectors as a NumPy `.npy` file (format 1.0, little-endian `<f4`, C order), one
/// row per vector, streaming: the header's space is reserved up front and filled in by `finish()`,
/// once the row count is known. `numpy.load` reads the result; so does anything that reads `.npy`.
public final class NpyWriter {
    /// Bytes reserved for the magic string, version, header length and header (a multiple of 64).
    static let headerSpace = 128

    private let handle: FileHandle
    private var pending: [UInt8] = []
    public let path: String
    /// Vectors written so far; the next vector's row index.
    public private(set) var count = 0
    /// The vectors' dimension, fixed by the first one.
    public private(set) var dimension: Int?

    /// Creates (or truncates) `path`.
    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(count: Self.headerSpace)),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw LabelForgeError(.io, "Cannot create \(path); check that its directory is writable.")
        }
        handle.seekToEndOfFile()
        self.handle = handle
        self.path = path
    }

    deinit { try? handle.close() }

    /// Appends one row.
    /// - Throws: `LabelForgeError.invalidResponse` when its dimension differs from the first row's.
    public func append(_ vector: [Float]) throws {
        if let dimension, dimension != vector.count {
            throw LabelForgeError(
                .invalidResponse,
                "A vector of dimension \(vector.count) cannot join \(path), whose vectors have \(dimension).")
        }
        dimension = vector.count
        for value in vector {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { pending.append(contentsOf: $0) }
        }
        count += 1
        if pending.count >= 1 << 20 { try flush() }
    }

    private func flush() throws {
        guard !pending.isEmpty else { return }
        try handle.write(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes the remaining rows and the header, and puts the file on disk.
    public func finish() throws {
        try flush()
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Self.header(rows: count, dimension: dimension ?? 0))
        try handle.synchronize()
    }

    /// The header for `rows` × `dimension` float32 values, padded to `headerSpace` bytes.
    static func header(rows: Int, dimension: Int) -> [UInt8] {
        var text = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(dimension)), }"
        let length = headerSpace - 10
        text += String(repeating: " ", count: length - text.utf8.count - 1) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        return bytes + Array(text.utf8)
    }
}

/// Reads rows of a float32 `.npy` file that `NpyWriter` wrote (format 1.0 or 2.0, `<f4`, C order)
/// one at a time, by seeking: a large file is never loaded whole.
public final class NpyReader {
    private let handle: FileHandle
    private let dataOffset: UInt64
    public let path: String
    public let rows: Int
    public let dimension: Int

    /// - Throws: `LabelForgeError.invalidJSON` naming the file when it is not a 2-D float32 `.npy`.
    public init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LabelForgeError(.fileNotFound, "Cannot read \(path).")
        }
        let prefix = [UInt8](handle.readData(ofLength: 12))
        guard prefix.count >= 10, prefix[0] == 0x93, Array(prefix[1..<6]) == Array("NUMPY".utf8) else {
            throw LabelForgeError(.invalidJSON, "\(path) is not a .npy file.")
        }
        let version = prefix[6]
        let lengthBytes = version == 1 ? 2 : 4
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(prefix[8 + $1]) << (8 * $1) }
        let start = 8 + lengthBytes
        try handle.seek(toOffset: UInt64(start))
        let header = String(decoding: handle.readData(ofLength: headerLength), as: UTF8.self)
        guard header.contains("'<f4'"), header.contains("'fortran_order': False"),
            let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")")
        else {
            throw LabelForgeError(.invalidJSON, "\(path): not a C-order little-endian float32 array (\(header)).")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        self.handle = handle
        self.path = path
        dataOffset = UInt64(start + headerLength)
        rows = shape.first ?? 0
        dimension = shape.count > 1 ? shape[1] : 0
    }

    deinit { try? handle.close() }

    /// Every row, row-major, read in one go.
    public func readAll() throws -> [Float] {
        try handle.seek(toOffset: dataOffset)
        let data = handle.readDataToEndOfFile()
        let count = rows * dimension
        guard data.count >= count * 4 else {
            throw LabelForgeError(.invalidJSON, "\(path) is shorter than its shape (\(rows) × \(dimension)) says.")
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { target in
            data.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(count * 4)]))
            }
        }
        // The file is little-endian; so is every platform LabelForge builds for.
        return values
    }

    /// Row `index`, or `nil` when there is no such row.
    public func vector(at index: Int) throws -> [Float]? {
        guard index >= 0, index < rows, dimension > 0 else { return nil }
        try handle.seek(toOffset: dataOffset + UInt64(index * dimension * 4))
        let bytes = [UInt8](handle.readData(ofLength: dimension * 4))
        guard bytes.count == dimension * 4 else { return nil }
        return (0..<dimension).map { i in
            Float(
                bitPattern: UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16
                    | UInt32(bytes[4 * i + 3]) << 24)
        }
    }
}
