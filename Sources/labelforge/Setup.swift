import ArgumentParser
import Foundation
import LabelForgeKernel
import LabelForgeLLM

struct Setup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install the local engine and the default models (what `make setup` does in a checkout).",
        discussion: """
            Run from a checkout, sets up the checkout's .venv. Run anywhere else, sets up the data directory an \
            installed labelforge uses (LABELFORGE_DATA_DIR, else ${XDG_DATA_HOME:-~/.local/share}/labelforge), \
            where `make install` put the setup scripts. `labelforge run` does this by itself on first use.
            """
    )

    func run() async throws {
        guard let script = ProjectPaths.setupScript() else {
            Terminal.printError(
                "No setup script found: neither a LabelForge checkout here nor \(ProjectPaths.dataDirectory())/scripts. "
                    + "Install with `make install` from a checkout.")
            throw ExitCode(69)
        }
        print("labelforge setup: \(script)")
        let status = try RuntimeSetup.run(script)
        if status != 0 { throw ExitCode(status) }
        print("labelforge setup: done (\((script as NSString).deletingLastPathComponent.dropLast("/scripts".count)))")
    }
}
