//! `berth rmi`: remove images from the local store.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {}

/// Runs `berth rmi`.
pub fn run(_args: &RmiArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth rmi is being written")
}
