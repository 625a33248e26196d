//! `cargo xtask bench lifecycle`: the image lifecycle against its peers, side
//! by side in one run.
//!
//! - `transfer`: push and pull of the build benchmark's image, berth against
//!   `skopeo copy`, through a local docker-registry.
//! - `cache`: a CI-style rebuild from a registry cache in an empty store,
//!   berth `--cache-from` against `buildah bud --layers --cache-from`.
//!
//! `cargo xtask bench lifecycle [transfer|cache] [options]` runs one part;
//! without a part it runs both.

mod cache;
mod transfer;

/// Runs the parts the arguments name.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("transfer") => transfer::run(&args[1..]),
        Some("cache") => cache::run(&args[1..]),
        _ => {
            transfer::run(args)?;
            cache::run(args)
        }
    }
}
