//! `berth version`: what was built, from which commit, speaking which specs.

use crate::printer::Printer;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The one-line version `berth --version` prints.
pub fn short() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The multi-line version `berth version` prints.
pub fn long() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        "\ncommit: ",
        env!("BERTH_GIT_COMMIT"),
    )
}

/// Prints the version.
pub fn run(args: &VersionArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let mut out = printer.stdout();
    if args.json {
        writeln!(
            out,
            "{{\"version\":\"{}\",\"commit\":\"{}\"}}",
            env!("CARGO_PKG_VERSION"),
            env!("BERTH_GIT_COMMIT")
        )?;
    } else {
        writeln!(out, "berth version {}", long())?;
    }
    Ok(ExitCode::SUCCESS)
}
