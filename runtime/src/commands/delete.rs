//! `delete`: remove a container.

use crate::GlobalOptions;

/// Flags of `delete`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill a running container first; succeed if it does not exist.
    #[arg(short, long)]
    pub force: bool,
    /// The container id.
    pub id: String,
}

/// Runs `delete`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    super::runtime(global).delete(&args.id, args.force)?;
    Ok(0)
}
