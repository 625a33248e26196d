//! `resume`: thaw a paused container.

use crate::GlobalOptions;

/// Flags of `resume`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

/// Runs `resume`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    super::runtime(global).resume(&args.id)?;
    Ok(0)
}
