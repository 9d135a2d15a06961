import LabelForgeCache
// The kernel (stage protocols, the row loop, the manifest, sessions, config types) comes with this
// module: its users import LabelForgePipelines alone.
@_exported import LabelForgeKernel
import LabelForgeKernel
import Logging

// The kernel's entry points with this module's parts filled in: the stage registry, and model
// files resolved on disk.

extension RunConfig {
    /// Loads and validates a config file with every stage type of the registry (see
    /// `RunConfig.load(file:resolved:catalog:)`).
    public static func load(file: String, resolved: Bool = false) throws -> RunConfig {
        try load(file: file, resolved: resolved, catalog: StageRegistry.catalog)
    }
}

extension RunCache {
    /// The cache of the config at `configPath` (its `cache` block), or the SQLite file at
    /// `overridePath` / the default path when there is no config.
    public static func open(configPath: String?, overridePath: String?, logger: Logger) async throws
        -> any CacheStore
    {
        try await open(
            configPath: configPath, overridePath: overridePath, logger: logger, catalog: StageRegistry.catalog)
    }
}
