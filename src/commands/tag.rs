//! `berth tag`: give an image in the local store another name.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth tag`.
#[derive(Debug, Args)]
pub struct TagArgs {}

/// Runs `berth tag`.
pub fn run(_args: &TagArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth tag is being written")
}
