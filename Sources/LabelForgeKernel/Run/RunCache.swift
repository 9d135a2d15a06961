import Foundation
import LabelForgeCache
import LabelForgeCore
import Logging

/// The cache a run reads and writes: the config's `cache` block, with `--cache-path` naming the
/// SQLite file (of a `sqlite` cache, or the local tier of a `tiered` one).
public enum RunCache {
    /// The cache of the config at `configPath` (its `cache` block), or the SQLite file at
    /// `overridePath` / the default path when there is no config.
    public static func open(configPath: String?, overridePath: String?, logger: Logger, catalog: StageCatalog)
        async throws
        -> any CacheStore
    {
        guard let configPath else {
            return try SQLiteCache(path: overridePath ?? SQLiteCache.defaultPath(), logger: logger)
        }
        return try await open(
            config: try RunConfig.load(file: configPath, catalog: catalog), overridePath: overridePath, logger: logger)
    }

    package static func open(
        config: RunConfig, overridePath: String?, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> any CacheStore {
        let localPath = overridePath ?? config.cachePath ?? SQLiteCache.defaultPath()
        guard let location = config.cacheS3 else { return try SQLiteCache(path: localPath, logger: logger) }
        if config.cacheKind == "s3", overridePath != nil {
            throw LabelForgeError(
                .invalidConfig,
                "\(config.cacheLocation): the config's cache is S3 (kind: s3) and --cache-path names a SQLite file. "
                    + "Drop --cache-path, or use kind: tiered to keep a local SQLite file in front of the bucket.")
        }
        let shared = try await S3Cache.open(
            location: location, environment: environment, logger: logger)
        guard config.cacheKind == "tiered" else { return shared }
        return TieredCache(local: try SQLiteCache(path: localPath, logger: logger), shared: shared, logger: logger)
    }
}
