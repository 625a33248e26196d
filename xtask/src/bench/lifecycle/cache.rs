//! The `cache` part of `cargo xtask bench lifecycle`.

/// Runs the benchmark.
pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("the cache part of the lifecycle benchmark is being written")
}
