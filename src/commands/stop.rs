//! `berth stop`: stop running containers.

use super::GlobalArgs;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `berth stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before killing.
    #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECS")]
    pub time: u64,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Stops the containers in parallel, one thread each (so five containers
/// that ignore SIGTERM take one timeout, not five), then prints what it was
/// given as Docker does, in the order given; exits non-zero if any failed.
pub fn run(args: &StopArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let timeout = Duration::from_secs(args.time);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = args
            .containers
            .iter()
            .map(|wanted| scope.spawn(|| control::stop(&store, wanted, timeout)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut code = ExitCode::SUCCESS;
    let mut out = printer.stdout();
    for (wanted, result) in args.containers.iter().zip(results) {
        match result {
            Ok(Ok(_)) => writeln!(out, "{wanted}")?,
            Ok(Err(e)) => {
                let e = anyhow::Error::new(e).context(format!("stopping {wanted}"));
                printer.error(e.as_ref());
                code = ExitCode::FAILURE;
            }
            Err(_) => {
                printer.error_message(format!("stopping {wanted}: the stopping thread panicked"));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
