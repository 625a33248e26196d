//! The `berth` command line: it parses arguments and dispatches to one module per
//! subcommand under `commands/`, each a thin call into the library crates.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    commands::init_logging(cli.global.log_level());
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
