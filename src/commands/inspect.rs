//! `berth inspect`: show an image's manifest and configuration as JSON.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {}

/// Runs `berth inspect`.
pub fn run(_args: &InspectArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth inspect is being written")
}
