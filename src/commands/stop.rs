//! `berth stop`: stop running containers.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth stop`.
#[derive(Debug, Args)]
pub struct StopArgs {}

/// Runs `berth stop`.
pub fn run(_args: &StopArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth stop is being written")
}
