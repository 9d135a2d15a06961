import Foundation
import Subprocess
import SystemPackage

/// Renders an HTML file in headless Chromium (Debian's `chromium` package): a screenshot, the DOM
/// after load, and Chromium's log with the page's console messages.
public enum Chromium {
    public struct Rendering: Sendable {
        public var screenshot: RGBImage
        public var dom: String
        /// Console messages the page logged (`CONSOLE` lines of Chromium's log).
        public var consoleMessages: [String]

        /// The share of pixels that are not the page's white background.
        public var inkedShare: Double {
            var inked = 0
            let count = screenshot.width * screenshot.height
            for i in 0..<count
            where screenshot.pixels[i * 3] < 240 || screenshot.pixels[i * 3 + 1] < 240
                || screenshot.pixels[i * 3 + 2] < 240
            {
                inked += 1
            }
            return Double(inked) / Double(max(count, 1))
        }
    }

    /// The `chromium` executable on `PATH`, if installed.
    public static var executable: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            for name in ["chromium", "chromium-browser"]
            where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "headless Chromium is not installed: apt-get install chromium (.ci/run and make test install it)"
        }
    }

    public static func render(_ htmlPath: String, width: Int = 1200, height: Int = 2400) async throws -> Rendering {
        guard let chromium = executable else { throw Missing() }
        let work = NSTemporaryDirectory() + "labelforge-chromium-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let common = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(work)/profile",
            "--enable-logging=stderr", "--v=0", "--window-size=\(width),\(height)",
        ]
        let url = URL(fileURLWithPath: htmlPath).absoluteString
        _ = try await Subprocess.run(
            .path(FilePath(chromium)), arguments: Arguments(common + ["--screenshot=\(work)/page.png", url]),
            output: .discarded, error: .discarded)
        let dump = try await Subprocess.run(
            .path(FilePath(chromium)), arguments: Arguments(common + ["--dump-dom", url]),
            output: .string(limit: 1 << 24), error: .string(limit: 1 << 22))
        let png = try Data(contentsOf: URL(fileURLWithPath: work + "/page.png"))
        let console = dump.standardError.split(separator: "\n").filter { $0.contains("CONSOLE") }.map(
            String.init)
        return Rendering(
            screenshot: try PNGDecoder.decode(png), dom: dump.standardOutput, consoleMessages: console)
    }
}
