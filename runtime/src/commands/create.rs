//! `create`: set up a container whose process waits for `start`.

use super::ProcessArgs;
use crate::GlobalOptions;
use berth_runtime::CreateOptions;
use std::path::PathBuf;

/// Flags of `create`, as runc's.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    /// The bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Do not use pivot_root (for a rootfs on ramfs).
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// The container id.
    pub id: String,
}

impl Args {
    /// The library's options for these flags.
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.process.pid_file.clone(),
            console_socket: self.process.console_socket.clone(),
            pidfd_socket: self.process.pidfd_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.process.preserve_fds,
        }
    }
}

/// Runs `create`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    super::runtime(global).create(&args.id, &args.options())?;
    Ok(0)
}
