//! `cargo xtask bench <name>`: benchmarks, which are not tests. Each prints its
//! figures; none asserts a threshold.

mod build;
mod containers;
mod inputs;
mod lifecycle;
mod local_registry;
mod network;
mod registry;
mod runtime;

const NAMES: &str = "build, containers, lifecycle, network, registry, runtime";

/// Runs the benchmark named by the first argument, passing it the rest.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("build") => build::run(&args[1..]),
        Some("containers") => containers::run(&args[1..]),
        Some("lifecycle") => lifecycle::run(&args[1..]),
        Some("network") => network::run(&args[1..]),
        Some("registry") => registry::run(&args[1..]),
        Some("runtime") => runtime::run(&args[1..]),
        Some(other) => anyhow::bail!("unknown benchmark '{other}'; known: {NAMES}"),
        None => anyhow::bail!("name a benchmark: cargo xtask bench <{NAMES}>"),
    }
}
