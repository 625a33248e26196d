//! The `berth` command line: it parses arguments and dispatches to one module per
//! subcommand under `commands/`, each a thin call into the library crates. All
//! output goes through the `printer`.

mod commands;
mod format;
mod printer;

use clap::Parser;
use printer::Printer;
use std::io::Write as _;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    commands::init_logging(cli.global.log_level());
    // Staging trees of killed builds can hold a RUN step's container; the
    // store stops it before removing the tree.
    berth_store::tmp::register_reaper(berth_containers::executor::stop_leftover_container);
    let printer = Printer::detect();
    let result = commands::dispatch(cli, printer).and_then(|code| {
        // Data still buffered must reach stdout before the exit status says
        // it did.
        printer.stdout().flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // The reader of stdout has gone (`berth ps | head -1`): nobody is
        // left to tell, and the output it wanted was written, as ripgrep
        // decides.
        Err(err) if printer::stdout_closed(err.as_ref()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            printer.error(err.as_ref());
            std::process::ExitCode::FAILURE
        }
    }
}
