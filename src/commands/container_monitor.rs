//! `berth container-monitor` (internal): the process that owns a detached
//! container, started by `berth run -d`.

use super::GlobalArgs;
use crate::printer::{Printer, report};
use berth_containers::monitor::{self, Outcome, Reporter};
use berth_containers::supervise::{self, Io, Supervision};
use berth_containers::{self as container, ContainerError};
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth container-monitor`.
#[derive(Debug, Args)]
pub struct ContainerMonitorArgs {
    /// The container id.
    pub id: String,
    /// The container has a terminal.
    #[arg(long)]
    pub tty: bool,
    /// Keep the container when it cannot start (`berth start`).
    #[arg(long)]
    pub keep_on_failure: bool,
}

/// Runs the monitor: reports on descriptor 3 whether the container started,
/// then waits for it and records its exit.
pub fn run(
    args: &ContainerMonitorArgs,
    global: &GlobalArgs,
    _printer: Printer,
) -> anyhow::Result<ExitCode> {
    monitor::daemonize()?;
    // SAFETY: `berth run -d` starts the monitor with the report pipe as
    // descriptor 3, and nothing else here owns it.
    let mut reporter = unsafe { Reporter::from_ready_fd() };
    let result = global
        .open_store()
        .map_err(|e| ContainerError::Start {
            message: report(e.as_ref()),
            code: 125,
        })
        .and_then(|store| {
            let record = container::load(&store, &args.id)?;
            supervise::run(
                Supervision {
                    store: &store,
                    record,
                    io: Io::Logged,
                    tty: args.tty,
                    forward_signals: false,
                    keep_on_failure: args.keep_on_failure,
                },
                &mut |_| reporter.report(&Outcome::Started),
            )
        });
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let code = match &e {
                ContainerError::Start { code, .. } => *code,
                _ => 125,
            };
            reporter.report(&Outcome::Failed {
                message: report(&e),
                code,
            });
            Ok(ExitCode::FAILURE)
        }
    }
}
