//! The `berth` command line: it parses arguments and dispatches to one module per
//! subcommand under `commands/`, each a thin call into the library crates.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    commands::init_logging(cli.global.log_level());
    // Staging trees of killed builds can hold a RUN step's container; the
    // store stops it before removing the tree.
    berth_store::tmp::register_reaper(berth_containers::executor::stop_leftover_container);
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {}", error_chain(err.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the
/// message already carries (library errors often include their source in their
/// own message, and repeating it only adds noise).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let causes = std::iter::successors(err.source(), |cause| cause.source());
    for cause in causes {
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
            error_chain(repeated.as_ref()),
            "reading Dockerfile: permission denied"
        );

        let io = std::io::Error::other("permission denied");
        let fresh = anyhow::Error::new(io).context("reading Dockerfile");
        assert_eq!(
            error_chain(fresh.as_ref()),
            "reading Dockerfile: permission denied"
        );
    }
}
