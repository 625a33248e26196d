//! `cargo xtask ci`: the one test command, the same on a laptop and in CI.

use crate::util::{run, workspace_root};
use crate::{deps, fixtures};
use std::process::Command;

/// Installs prerequisites, builds fixtures, then runs fmt, clippy and every test.
pub fn run_all() -> anyhow::Result<()> {
    deps::ensure_installed()?;
    let fixtures = fixtures::build()?;
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(&cargo).current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The end-to-end tests drive the built binaries, so build them first.
    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--workspace",
        "--bins",
        "--locked",
    ]))?;
    run(Command::new(&cargo)
        .current_dir(&root)
        .args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            "--profile",
            "ci",
        ])
        .env("BERTH_FIXTURES", &fixtures))?;
    Ok(())
}
