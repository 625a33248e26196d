//! `cargo xtask ci`: the one test command, the same on a laptop and in CI.

use crate::util::{run, workspace_root};
use crate::{deps, fixtures};
// The same search the end-to-end tests use for their own containers.
#[allow(dead_code)]
#[path = "../../tests/src/cgroups.rs"]
mod cgroups;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// Installs prerequisites, builds fixtures, then runs fmt, clippy, every
/// test and the demo, and fails if they left container cgroups behind.
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
    let cgroups_before = container_cgroups();
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
    // The demo on the binaries just built, so it cannot break unnoticed.
    crate::demo::run_with(&crate::util::target_dir().join("debug"), &fixtures)?;
    // Each test checks its own containers; this catches what a test does not
    // look for (a parent cgroup, a killed helper's container).
    let leaked: Vec<_> = container_cgroups()
        .difference(&cgroups_before)
        .cloned()
        .collect();
    if !leaked.is_empty() {
        anyhow::bail!(
            "the tests passed but left {} container cgroup(s) behind: {leaked:#?}",
            leaked.len()
        );
    }
    Ok(())
}

/// The cgroup directories berth's tests make: names with `berth` in them
/// (test container ids and namespaces) or youki's default `:youki:` prefix.
fn container_cgroups() -> BTreeSet<PathBuf> {
    cgroups::dirs_where(|name| name.contains("berth") || name.starts_with(":youki:"))
        .into_iter()
        .collect()
}
