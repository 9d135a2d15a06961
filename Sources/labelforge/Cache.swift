import ArgumentParser
import Foundation
import LabelForgeCache
import LabelForgeCore
import LabelForgeKernel
import LabelForgePipelines
import Logging

struct Cache: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the content-addressed response cache.",
        subcommands: [Stats.self, Verify.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every entry's integrity hash; exit 1 when any fails.",
            discussion:
                "A failing entry is never served: runs treat it as a miss, ask the engine again and store a good copy."
        )

        @OptionGroup var cacheOptions: CacheOptions

        var cachePath: String? { cacheOptions.cachePath }

        @Option(name: .long, help: "Use the cache this pipeline config names (SQLite, S3 or tiered).")
        var config: String?

        func run() async throws {
            let result: (checked: Int, failed: [CacheKey])
            do {
                let cache = try await RunCache.open(
                    configPath: config, overridePath: cachePath, logger: Terminal.logger(verbose: false))
                result = try await cache.verifyAll()
            } catch {
                throw Terminal.exit(for: error)
            }
            print("entries checked: \(result.checked), failed verification: \(result.failed.count)")
            for key in result.failed.prefix(10) { print("  failed: sha256:\(key.hex)") }
            if result.failed.count > 10 { print("  … and \(result.failed.count - 10) more") }
            if !result.failed.isEmpty { throw ExitCode(1) }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the cache's entries, size and hit counts.")

        @OptionGroup var cacheOptions: CacheOptions

        var cachePath: String? { cacheOptions.cachePath }

        @Option(name: .long, help: "Use the cache this pipeline config names (SQLite, S3 or tiered).")
        var config: String?

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            let stats: CacheStats
            do {
                let cache = try await RunCache.open(
                    configPath: config, overridePath: cachePath, logger: Terminal.logger(verbose: false))
                stats = try await cache.stats()
            } catch {
                throw Terminal.exit(for: error)
            }
            if json {
                let kinds = stats.byKind.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(
                    separator: ",")
                print(
                    "{\"bytes\":\(stats.bytes),\"entries\":\(stats.entries),\"kinds\":{\(kinds)},"
                        + "\"path\":\"\(stats.path)\"}")
            } else {
                print("cache:   \(stats.path)")
                print(
                    "entries: \(stats.entries)"
                        + (stats.byKind.isEmpty
                            ? ""
                            : " ("
                                + stats.byKind.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(
                                    separator: ", ") + ")"))
                print("size:    \(ByteCountFormatter.string(fromByteCount: stats.bytes, countStyle: .file))")
            }
        }
    }
}
