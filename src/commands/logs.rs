//! `berth logs`: show the output of a detached container.

use super::GlobalArgs;
use berth_builder::container::{self, logfile};
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following the output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// The container: id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Copies the container's log to stdout and stderr, by stream.
pub fn run(args: &LogsArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = container::find(&store, &args.container)?;
    let path = container::container_dir(&store, &record.id).join(logfile::LOG_FILE);
    if !record.detached {
        anyhow::bail!(
            "container {} ran in the foreground; only detached containers (berth run -d) keep a log",
            args.container
        );
    }
    // Followed until the monitor records the exit, which it does after the
    // last output is in the log; a monitor that died gets a few seconds.
    let gone_polls = std::cell::Cell::new(0);
    let running = || match container::load(&store, &record.id) {
        Ok(r) if matches!(r.state, container::State::Running { .. }) => {
            if !r.is_running() {
                gone_polls.set(gone_polls.get() + 1);
            }
            gone_polls.get() < 30
        }
        _ => false,
    };
    logfile::copy(
        &path,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        args.follow,
        &running,
    )
    .map_err(|e| anyhow::anyhow!("reading the log {}: {e}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}
