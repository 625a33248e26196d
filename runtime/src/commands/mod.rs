//! One module per runc subcommand: each parses its flags and calls the library.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::GlobalOptions;
use berth_runtime::Runtime;
use std::path::PathBuf;

/// The flags `create`, `run` and `exec` share about the new process's
/// terminal, pid and inherited file descriptors.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct ProcessArgs {
    /// A unix socket that receives the pty master when the process has a terminal.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// A unix socket that receives a pidfd of the process once it exists.
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Write the process id to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Pass N more file descriptors (after stdio) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
}

/// The runtime for the global `--root` and `--systemd-cgroup`.
pub fn runtime(global: &GlobalOptions) -> Runtime {
    Runtime::new(&global.root, global.systemd_cgroup)
}

/// Prints a value as indented JSON followed by a newline.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}
