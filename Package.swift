// swift-tools-version:6.1
import Foundation
import PackageDescription

let package = Package(
    name: "LabelForge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "labelforge", targets: ["labelforge"]),
        .library(name: "LabelForgePipelines", targets: ["LabelForgePipelines"]),
        .library(name: "LabelForgeKernel", targets: ["LabelForgeKernel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        // `swift package generate-documentation`: the library modules' API docs (DocC).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "LabelForgeCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "LabelForgeIO",
            dependencies: ["LabelForgeCore"]
        ),
        .target(
            name: "LabelForgeLLM",
            dependencies: [
                "LabelForgeCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "LabelForgeCache",
            dependencies: [
                "LabelForgeCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                // The S3 cache: HTTP with AsyncHTTPClient, SigV4 signatures with swift-crypto.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "LabelForgeEval",
            dependencies: ["LabelForgeCore"]
        ),
        // OpenBLAS from Debian (libopenblas-dev), for the matrix products of vector search.
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "LabelForgeVectors",
            dependencies: ["LabelForgeCore", "COpenBLAS"]
        ),
        // The run kernel: stage protocols and their context, the row loop, the request executor, the
        // manifest and run directory, run setups and sessions, the engine seam and the config types.
        // It names no concrete stage or engine (those live in LabelForgePipelines).
        .target(
            name: "LabelForgeKernel",
            dependencies: [
                "LabelForgeCore", "LabelForgeIO", "LabelForgeLLM", "LabelForgeCache", "LabelForgeEval",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LabelForgePipelines",
            dependencies: [
                "LabelForgeKernel", "LabelForgeCore", "LabelForgeIO", "LabelForgeLLM", "LabelForgeCache",
                "LabelForgeEval", "LabelForgeVectors",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "labelforge",
            dependencies: [
                "LabelForgePipelines", "LabelForgeVectors", "LabelForgeIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LabelForgeTesting",
            dependencies: [
                "LabelForgeCore", "LabelForgeLLM", "LabelForgeCache",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(name: "LabelForgeCoreTests", dependencies: ["LabelForgeCore"]),
        .testTarget(name: "LabelForgeIOTests", dependencies: ["LabelForgeIO", "LabelForgeTesting"]),
        .testTarget(name: "LabelForgeLLMTests", dependencies: ["LabelForgeLLM", "LabelForgeTesting"]),
        .testTarget(
            name: "LabelForgeCacheTests",
            dependencies: ["LabelForgeCache", "LabelForgeTesting", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "LabelForgeEvalTests", dependencies: ["LabelForgeEval"]),
        .testTarget(name: "LabelForgeVectorsTests", dependencies: ["LabelForgeVectors", "LabelForgeCore"]),
        .testTarget(
            name: "LabelForgeKernelTests",
            dependencies: [
                "LabelForgeKernel", "LabelForgeTesting", "LabelForgeCache", "LabelForgeLLM", "LabelForgeCore",
            ]
        ),
        .testTarget(
            name: "LabelForgePipelinesTests",
            dependencies: [
                "LabelForgePipelines", "LabelForgeKernel", "LabelForgeTesting", "LabelForgeCache", "LabelForgeVectors",
            ]
        ),
        .testTarget(
            name: "LabelForgeEndToEndTests",
            dependencies: [
                "LabelForgeTesting", "LabelForgeCore", "LabelForgeLLM", "LabelForgeIO", "LabelForgeCache",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ]
)

// bench/fuzz.sh's libFuzzer target, declared only with LABELFORGE_FUZZ=1: it links only with
// `-sanitize=fuzzer` (libFuzzer supplies `main`).
if ProcessInfo.processInfo.environment["LABELFORGE_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(name: "labelforge-fuzz", dependencies: ["LabelForgePipelines", "LabelForgeIO"], path: "Fuzz"))
}
