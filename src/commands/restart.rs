//! `berth restart`: stop containers, then start them again.

use super::GlobalArgs;
use super::container::FAILED;
use super::run;
use crate::printer::Printer;
use berth_containers::{control, lifecycle};
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `berth restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Seconds to wait after the stop signal before killing.
    #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECS")]
    pub time: u64,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Restarts each container, printing its name as given.
pub fn run(args: &RestartArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.containers {
        let prepared = control::check_restart(&store, wanted)
            .and_then(|_| control::stop(&store, wanted, Duration::from_secs(args.time)))
            .and_then(|_| control::prepare_start(&store, wanted));
        let (record, lock) = match prepared {
            Ok(Some(prepared)) => prepared,
            Ok(None) => {
                writeln!(printer.stdout(), "{wanted}")?;
                continue;
            }
            Err(e) => {
                printer.error(&e);
                code = ExitCode::from(FAILED);
                continue;
            }
        };
        let tty = lifecycle::has_terminal(&store, &record);
        let started = run::start_monitor(&store, &record, tty, true, global, printer)?;
        drop(lock);
        match started {
            Ok(()) => writeln!(printer.stdout(), "{wanted}")?,
            Err(_) => code = ExitCode::from(FAILED),
        }
    }
    Ok(code)
}
