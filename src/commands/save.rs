//! `berth save`: write images to an OCI layout or docker-archive tar.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth save`.
#[derive(Debug, Args)]
pub struct SaveArgs {}

/// Runs `berth save`.
pub fn run(_args: &SaveArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth save is being written")
}
