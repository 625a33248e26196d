//! The `berth-runtime` binary: runc's command line over the berth-runtime library.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;

/// A runc-compatible OCI runtime.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", disable_version_flag = true)]
struct Cli {
    /// Print the version, the commit and the OCI runtime-spec version, as runc does.
    #[arg(short = 'v', long = "version")]
    version: bool,
}

fn version_text() -> String {
    format!(
        "berth-runtime version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_GIT_COMMIT"),
        berth_runtime::OCI_SPEC_VERSION,
    )
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print!("{}", version_text());
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!("berth-runtime: no command given; see 'berth-runtime --help'");
    std::process::ExitCode::FAILURE
}
