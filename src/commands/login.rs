//! `berth login`: log in to a registry and store the credential.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth login`.
#[derive(Debug, Args)]
pub struct LoginArgs {}

/// Runs `berth login`.
pub fn run(_args: &LoginArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth login is being written")
}
