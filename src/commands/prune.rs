//! `berth prune`: remove unreferenced blobs, snapshots and build cache.

use super::GlobalArgs;
use super::images::format;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_builder::prune::{PruneOptions, prune};
use berth_containers::ContainerRoots;
use clap::Args;
use std::io::Write as _;
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
pub fn run(args: &PruneArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let on_wait = || {
        let _ = writeln!(printer.stderr(), "waiting for running builds to finish");
    };
    let reclaimed = prune(
        &store,
        PruneOptions { all: args.all },
        &[&ContainerRoots],
        &on_wait,
    )
    .with_context(|| format!("pruning the local store {}", store.root().display()))?;
    writeln!(
        printer.stderr(),
        "removed {} blobs, {} snapshots, {} cache records, {} other entries",
        reclaimed.blobs,
        reclaimed.snapshots,
        reclaimed.records,
        reclaimed.other
    )?;
    writeln!(
        printer.stdout(),
        "reclaimed {}",
        format::size(reclaimed.bytes)
    )?;
    Ok(ExitCode::SUCCESS)
}
