//! `spec`: write a default config.json.

use crate::GlobalOptions;
use std::path::PathBuf;

/// Flags of `spec`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bundle directory to write config.json into.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write a spec for a rootless container (the current user mapped to root).
    #[arg(long)]
    pub rootless: bool,
}

/// Runs `spec`.
pub fn run(_global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let rootless = args.rootless.then(|| {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        unsafe { (libc::geteuid(), libc::getegid()) }
    });
    berth_runtime::spec::write_default(&args.bundle, rootless)?;
    Ok(0)
}
