//! `berth container-monitor` (internal): the process that owns a detached
//! container, started by `berth run -d`.

use super::GlobalArgs;
use crate::printer::{Printer, report};
use berth_containers::monitor::{self, Outcome, Reporter};
use berth_containers::restart::{self, AfterBackoff};
use berth_containers::supervise::{self, Io, Supervision};
use berth_containers::{self as container, ContainerError, ContainerRecord, State, resources};
use clap::Args;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `berth container-monitor`.
#[derive(Debug, Args)]
pub struct ContainerMonitorArgs {
    /// The container id.
    pub id: String,
    /// The container has a terminal.
    #[arg(long)]
    pub tty: bool,
}

/// Runs the monitor: reports on descriptor 3 whether the container started,
/// then waits for it and records its exit, restarting it as its restart
/// policy says, after docker's backoff.
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
            // One run, then more while the restart policy keeps the
            // container (`restart::keep_for_restart` in the start path).
            let mut delay = None;
            loop {
                let record = container::load(&store, &args.id)?;
                let restarting = matches!(record.state, State::Restarting { .. });
                let began = Instant::now();
                let code = match supervise::run(
                    Supervision {
                        store: &store,
                        record: record.clone(),
                        io: Io::Logged,
                        tty: args.tty,
                        forward_signals: false,
                    },
                    &mut |_| reporter.report(&Outcome::Started),
                ) {
                    Ok(code) => code,
                    Err(e) if restarting => {
                        // A restart that cannot start ends the container,
                        // as docker leaves it: exited, with the error logged.
                        tracing::error!(error = %report(&e), "restarting the container");
                        let code = match &e {
                            ContainerError::Start { code, .. } => *code,
                            _ => 125,
                        };
                        if let State::Restarting { started, .. } = record.state {
                            supervise::finish(&store, &record, started, code)?;
                        }
                        return Ok(code);
                    }
                    Err(e) => return Err(e),
                };
                match container::load(&store, &args.id) {
                    Ok(ContainerRecord {
                        state: State::Restarting { .. },
                        ..
                    }) => {}
                    _ => return Ok(code),
                }
                let wait = resources::next_backoff(delay, began.elapsed());
                delay = Some(wait);
                if restart::wait_backoff(&store, &args.id, wait)? == AfterBackoff::Stopped {
                    return Ok(code);
                }
            }
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
