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
            eprintln!("berth: {}", error_chain(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the
/// message already carries (library errors often include their source in their
/// own message, and repeating it only adds noise).
fn error_chain(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::other("permission denied");
        let repeated = anyhow::Error::new(io).context("reading Dockerfile: permission denied");
        assert_eq!(
            error_chain(&repeated),
            "reading Dockerfile: permission denied"
        );

        let io = std::io::Error::other("permission denied");
        let fresh = anyhow::Error::new(io).context("reading Dockerfile");
        assert_eq!(error_chain(&fresh), "reading Dockerfile: permission denied");
    }
}
