//! `berth prune`: remove unreferenced blobs, snapshots and build cache records.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {}

/// Runs `berth prune`.
pub fn run(_args: &PruneArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth prune is being written")
}
