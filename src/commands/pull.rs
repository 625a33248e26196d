//! `berth pull`: pull an image from a registry into the local store.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth pull`.
#[derive(Debug, Args)]
pub struct PullArgs {}

/// Runs `berth pull`.
pub fn run(_args: &PullArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth pull is being written")
}
