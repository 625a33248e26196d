//! `berth attach`: show a running container's output from now on, until
//! it stops, and exit with its code. Its standard input is not attached
//! (nor are detach keys): berth keeps no channel to a running container's
//! input.

use super::GlobalArgs;
use super::container::FAILED;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_containers::lifecycle::{Action, check};
use berth_containers::{self as container, control, logfile};
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Accepted for docker's command lines; standard input is never attached.
    #[arg(long)]
    pub no_stdin: bool,
    /// The container: an id, a unique id prefix or a name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Follows the container's log from its end, then exits with its code.
pub fn run(args: &AttachArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = match control::current(&store, &args.container)
        .and_then(|r| Ok(check(Action::Attach, r.status(), &r.id, &r.name).map(|_| r)?))
    {
        Ok(record) => record,
        Err(e) => {
            printer.error(&e);
            return Ok(ExitCode::from(FAILED));
        }
    };
    let path = container::container_dir(&store, &record.id).join(logfile::LOG_FILE);
    let running = || {
        container::load(&store, &record.id).is_ok_and(|r| {
            matches!(r.state, container::State::Running { .. })
                && (r.is_running() || r.owner_alive())
        })
    };
    logfile::copy(
        &path,
        &mut printer.stdout(),
        &mut printer.stderr_data(),
        logfile::CopyOptions {
            follow: true,
            tail: Some(0),
            timestamps: false,
        },
        &running,
    )
    .with_context(|| format!("reading the log {}", path.display()))?;
    match control::wait(&store, &record.id) {
        Ok(code) => Ok(ExitCode::from(code as u8)),
        Err(e) => {
            printer.error(&e);
            Ok(ExitCode::from(FAILED))
        }
    }
}
