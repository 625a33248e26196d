//! `berth rm`: remove containers.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth rm`.
#[derive(Debug, Args)]
pub struct RmArgs {}

/// Runs `berth rm`.
pub fn run(_args: &RmArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth rm is being written")
}
