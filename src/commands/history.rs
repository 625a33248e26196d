//! `berth history`: show the layers of an image and the steps that made them.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {}

/// Runs `berth history`.
pub fn run(_args: &HistoryArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth history is being written")
}
