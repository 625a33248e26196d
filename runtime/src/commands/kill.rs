//! `kill`: send a signal to a container.

use crate::GlobalOptions;

/// Flags of `kill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal every process of the container, not only its init.
    #[arg(short, long)]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// The signal, by name (TERM, SIGKILL) or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Runs `kill`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    super::runtime(global).kill(&args.id, &args.signal, args.all)?;
    Ok(0)
}
