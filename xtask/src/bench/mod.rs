//! `cargo xtask bench <name>`: benchmarks, which are not tests. Each prints its
//! figures; none asserts a threshold.

mod registry;
mod runtime;

const NAMES: &str = "registry, runtime";

/// Runs the benchmark named by the first argument, passing it the rest.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("registry") => registry::run(&args[1..]),
        Some("runtime") => runtime::run(&args[1..]),
        Some(other) => anyhow::bail!("unknown benchmark '{other}'; known: {NAMES}"),
        None => anyhow::bail!("name a benchmark: cargo xtask bench <{NAMES}>"),
    }
}
