import Foundation
import LabelForgeCore
import LabelForgeLLM
import LabelForgeTesting
import Testing

/// Where the Ray transport finds a cluster's token: where Ray's own clients look, in their order.
@Suite struct RayAuthTokenTests {
    @Test("RAY_AUTH_TOKEN, then the file RAY_AUTH_TOKEN_PATH names, then ~/.ray/auth_token; none is nil")
    func order() throws {
        let ws = try TestWorkspace()
        let home = ws.path("home")
        try FileManager.default.createDirectory(atPath: home + "/.ray", withIntermediateDirectories: true)
        #expect(try RayJobOptions.authToken(environment: ["HOME": home]) == nil)
        try "from-home\n".write(toFile: home + "/.ray/auth_token", atomically: true, encoding: .utf8)
        #expect(try RayJobOptions.authToken(environment: ["HOME": home]) == "from-home")
        let path = try ws.write("token", "  from-path\n")
        #expect(try RayJobOptions.authToken(environment: ["HOME": home, "RAY_AUTH_TOKEN_PATH": path]) == "from-path")
        #expect(
            try RayJobOptions.authToken(
                environment: ["HOME": home, "RAY_AUTH_TOKEN_PATH": path, "RAY_AUTH_TOKEN": "from-env"]) == "from-env")
        // An empty variable is not a token.
        #expect(
            try RayJobOptions.authToken(environment: ["HOME": home, "RAY_AUTH_TOKEN_PATH": path, "RAY_AUTH_TOKEN": ""])
                == "from-path")
        let error = #expect(throws: LabelForgeError.self) {
            try RayJobOptions.authToken(environment: ["HOME": home, "RAY_AUTH_TOKEN_PATH": ws.path("missing")])
        }
        #expect(error?.message.contains("RAY_AUTH_TOKEN_PATH names") == true)
    }
}
