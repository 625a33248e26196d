//! `berth prune`: remove unreferenced blobs, snapshots and build cache.

use super::GlobalArgs;
use super::images::format;
use berth_builder::prune::{PruneOptions, prune};
use berth_containers::ContainerRoots;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also drop the build cache (cache records, RUN cache mounts, context
    /// hash caches), the partial downloads of interrupted pulls, and the
    /// layers only they kept.
    #[arg(short, long)]
    pub all: bool,
}

/// Prunes the store and prints the space reclaimed.
pub fn run(args: &PruneArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let on_wait = || eprintln!("waiting for running builds to finish");
    let reclaimed = prune(
        &store,
        PruneOptions { all: args.all },
        &[&ContainerRoots],
        &on_wait,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "removed {} blobs, {} snapshots, {} cache records, {} other entries",
        reclaimed.blobs, reclaimed.snapshots, reclaimed.records, reclaimed.other
    );
    println!("reclaimed {}", format::size(reclaimed.bytes));
    Ok(ExitCode::SUCCESS)
}
