//! `berth ps`: list the containers berth started.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {}

/// Runs `berth ps`.
pub fn run(_args: &PsArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth ps is being written")
}
