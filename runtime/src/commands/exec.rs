//! `exec`: run a new process inside a running container.

use crate::GlobalOptions;
use berth_runtime::ExecOptions;
use std::path::PathBuf;

/// Flags of `exec`, as runc's.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A process.json (runtime-spec process object) describing the process.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    #[command(flatten)]
    pub io: super::ProcessArgs,
    /// The working directory (absolute).
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Run as UID[:GID].
    #[arg(short, long, value_parser = parse_user)]
    pub user: Option<(u32, Option<u32>)>,
    /// Add a supplementary group id; repeatable.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Add a capability; repeatable.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Allow exec into a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs `exec`; attached, the exit code is the process's.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let options = ExecOptions {
        process: args.process,
        args: args.command,
        detach: args.detach,
        tty: args.tty,
        console_socket: args.io.console_socket,
        pidfd_socket: args.io.pidfd_socket,
        pid_file: args.io.pid_file,
        cwd: args.cwd,
        env: args.env,
        user: args.user,
        additional_gids: args.additional_gids,
        caps: args.cap,
        no_new_privs: args.no_new_privs,
        preserve_fds: args.io.preserve_fds,
        ignore_paused: args.ignore_paused,
    };
    Ok(super::runtime(global).exec(&args.id, &options)?)
}

fn parse_user(text: &str) -> Result<(u32, Option<u32>), String> {
    let invalid = || format!("invalid user {text:?}; hint: use a numeric UID or UID:GID");
    match text.split_once(':') {
        Some((uid, gid)) => Ok((
            uid.parse().map_err(|_| invalid())?,
            Some(gid.parse().map_err(|_| invalid())?),
        )),
        None => Ok((text.parse().map_err(|_| invalid())?, None)),
    }
}
