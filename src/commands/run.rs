//! `berth run`: run a command in a new container from an image.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth run`.
#[derive(Debug, Args)]
pub struct RunArgs {}

/// Runs `berth run`.
pub fn run(_args: &RunArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth run is being written")
}
