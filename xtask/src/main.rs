//! `cargo xtask <task>`: the developer tasks of the berth workspace.
//!
//! - `ci`: install what the tests need, build the fixtures, then run fmt, clippy,
//!   every test and the demo. This is the one test command; `.ci/run` calls it.
//! - `deps`: install the Debian packages the tests need, if any are missing.
//! - `fixtures`: build the test fixtures under `target/fixtures`.
//! - `bench <name>`: run a benchmark and print its figures.
//! - `demo`: berth's main job on a fresh machine: build the example project,
//!   run it with `berth run`, rebuild from the cache.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod demo;
mod deps;
mod fixtures;
mod util;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci         install test prerequisites, build fixtures, run fmt, clippy and every test
  deps       install the Debian packages the tests need (needs root)
  fixtures   build the test fixtures under target/fixtures
  demo       build examples/demo with berth, run it with berth run, rebuild from cache (root)
  bench NAME run a benchmark (build, containers, lifecycle, registry, runtime) and print its figures";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run_all(),
        Some("deps") => deps::ensure_installed(),
        Some("fixtures") => fixtures::build().map(|_| ()),
        Some("bench") => bench::run(&args[1..]),
        Some("demo") => demo::run_demo(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown task '{other}'\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no task given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
