//! `run`: create and start a container, waiting for it unless detached.

use crate::GlobalOptions;

/// Flags of `run`: those of `create` and a few more, as runc's.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility: the runtime always reaps its own children.
    #[arg(long)]
    pub no_subreaper: bool,
}

/// Runs `run`; the exit code is the container's.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let options = args.create.options();
    Ok(super::runtime(global).run(&args.create.id, &options, args.detach, args.keep)?)
}
