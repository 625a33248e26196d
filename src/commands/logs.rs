//! `berth logs`: show the output of a container.

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_containers::{self as container, logfile};
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following the output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Show only the last N lines of what is logged so far.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Start each line with the time it was logged.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container: id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Copies the container's log to stdout and stderr, by stream.
pub fn run(args: &LogsArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = container::find(&store, &args.container)?;
    let path = container::container_dir(&store, &record.id).join(logfile::LOG_FILE);
    // Followed until the owner (the monitor, or berth in the foreground)
    // records the exit, which it does after the last output is in the log,
    // or until the owner is gone.
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
            follow: args.follow,
            tail: args.tail,
            timestamps: args.timestamps,
        },
        &running,
    )
    .with_context(|| format!("reading the log {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}
