import ArgumentParser

/// `--cache-path`, as every command that reads or writes the cache takes it.
struct CacheOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The SQLite cache file, instead of the config's (default: the config's cache, else "
                + "$LABELFORGE_CACHE_DIR/cache.sqlite or ~/.cache/labelforge/cache.sqlite). For a tiered cache: "
                + "its local file.",
            valueName: "path"))
    var cachePath: String?
}

/// `--verbose`, as every command that runs or merges takes it.
struct LogOptions: ParsableArguments {
    @Flag(name: .long, help: "Log debug detail (requests retried, cache verification) to stderr.")
    var verbose = false
}
