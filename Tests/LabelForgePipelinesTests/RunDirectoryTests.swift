import Foundation
import LabelForgeTesting
import Testing

@testable import LabelForgeKernel
@testable import LabelForgePipelines

@Suite struct RunDirectoryTests {
    @Test("creating a run removes staging directories abandoned by killed runs, and keeps fresh ones")
    func abandonedStaging() throws {
        let ws = try TestWorkspace()
        let old = ws.path("runs/.20260101-000000-abcdef12-OLD.partial")
        let fresh = ws.path("runs/.20260101-000000-abcdef12-NEW.partial")
        for path in [old, fresh] {
            try FileManager.default.createDirectory(atPath: path + "/outputs", withIntermediateDirectories: true)
        }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: old)

        let run = try RunDirectory.create(
            runsDir: ws.path("runs"), planHash: "sha256:0123456789", resolvedConfig: "run: {}\n")
        #expect(FileManager.default.fileExists(atPath: run.manifestPath))
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: fresh))
    }
}
