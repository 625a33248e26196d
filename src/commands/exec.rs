//! `berth exec`: run another command in a running container.

use super::GlobalArgs;
use crate::printer::Printer;
use berth_containers::exec::{self, ExecOptions};
use clap::Args;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

/// Arguments of `berth exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Start the command and return at once.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command the terminal berth runs on.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=value, or KEY to copy berth's own).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of KEY=value lines (before -e).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Run as this user: a name or uid, with an optional :group.
    #[arg(short, long)]
    pub user: Option<String>,
    /// The working directory, absolute.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The container: an id, a unique id prefix or a name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments.
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// Runs `berth exec`: becomes the container runtime's `exec`, so that the
/// terminal, signals and the command's exit code pass straight through.
pub fn run(args: &ExecArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let env = match super::run::env_values(&args.env_file, &args.env) {
        Ok(env) => env,
        Err(e) => return Ok(super::run::fail(printer, &e)),
    };
    let options = ExecOptions {
        command: args.command.clone(),
        env,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
    };
    let mut command = match exec::command(&store, &args.container, &options) {
        Ok(command) => command,
        Err(e) => return Ok(super::run::fail(printer, &e)),
    };
    // exec returns only when it failed.
    let program = command.get_program().to_string_lossy().into_owned();
    let err = anyhow::Error::new(command.exec()).context(format!("running {program}"));
    printer.error(err.as_ref());
    Ok(ExitCode::from(super::run::BERTH_FAILED))
}
