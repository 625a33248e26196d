//! `berth start`: start created or stopped containers. A monitor owns each
//! (as with `run -d`); with `-a` berth owns the one container itself, in
//! the foreground, as `run` does.

use super::GlobalArgs;
use super::container::FAILED;
use super::run;
use crate::printer::Printer;
use berth_containers::{control, lifecycle};
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output (and exit with its code).
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's standard input.
    #[arg(short, long)]
    pub interactive: bool,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Starts each container, printing its name as given.
pub fn run(args: &StartArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let attached = args.attach || args.interactive;
    if attached && args.containers.len() > 1 {
        printer.error_message("you cannot start and attach multiple containers at once");
        return Ok(ExitCode::from(FAILED));
    }
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.containers {
        let (record, lock) = match control::prepare_start(&store, wanted) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => {
                // Running already: docker's start succeeds without a word.
                if !attached {
                    writeln!(printer.stdout(), "{wanted}")?;
                }
                continue;
            }
            Err(e) => {
                printer.error(&e);
                code = ExitCode::from(FAILED);
                continue;
            }
        };
        let tty = lifecycle::has_terminal(&store, &record);
        if attached {
            // The container's end, in this process, takes the lock.
            drop(lock);
            return run::run_attached(&store, record, args.interactive, tty, true, printer);
        }
        let started = run::start_monitor(&store, &record, tty, true, global, printer)?;
        drop(lock);
        match started {
            Ok(()) => writeln!(printer.stdout(), "{wanted}")?,
            Err(_) => code = ExitCode::from(FAILED),
        }
    }
    Ok(code)
}
