//! `berth logs`: show the output of a detached container.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {}

/// Runs `berth logs`.
pub fn run(_args: &LogsArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth logs is being written")
}
