//! `berth logout`: remove a stored registry credential.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {}

/// Runs `berth logout`.
pub fn run(_args: &LogoutArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth logout is being written")
}
