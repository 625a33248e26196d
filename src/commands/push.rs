//! `berth push`: push an image from the local store to a registry.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth push`.
#[derive(Debug, Args)]
pub struct PushArgs {}

/// Runs `berth push`.
pub fn run(_args: &PushArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth push is being written")
}
