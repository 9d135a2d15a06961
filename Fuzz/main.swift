import Foundation
import LabelForgeIO
import LabelForgePipelines

/// libFuzzer's entry point for bench/fuzz.sh, built only with `LABELFORGE_FUZZ=1` and
/// `-sanitize=fuzzer,address`. `LABELFORGE_FUZZ_TARGET` picks what the input is fed to: `config`
/// (the YAML config reader), `jsonl` or `csv` (the dataset readers). Any error thrown is fine; a
/// crash, a hang or a sanitizer report is a finding.
enum Fuzz {
    static let target = ProcessInfo.processInfo.environment["LABELFORGE_FUZZ_TARGET"] ?? "config"
    static let directory: String = {
        let path = NSTemporaryDirectory() + "labelforge-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func run(_ data: Data) {
        let path = directory + (target == "config" ? "/config.yaml" : "/data.\(target)")
        guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return }
        switch target {
        case "config":
            _ = try? RunConfig.load(file: path)
        default:
            guard let reader = try? DatasetReader(path: path, format: target == "csv" ? .csv : .jsonl) else { return }
            while let record = try? reader.next() { _ = record.fields.count }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func labelforgeFuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    Fuzz.run(Data(bytes: start, count: count))
    return 0
}

/// libFuzzer's driver (`int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*)(const uint8_t *, size_t))`).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's `main` to `<module>_main`; hand control to libFuzzer's driver.
@_cdecl("labelforge_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runDriver(&argc, &argv) { labelforgeFuzz($0, $1) }
}
