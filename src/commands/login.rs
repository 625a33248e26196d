//! `berth login`: log in to a registry and store the credential.

use super::GlobalArgs;
use super::transfer_progress::RegistryArgs;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_builder::registry;
use clap::Args;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

/// Arguments of `berth login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (`host[:port]`; Docker Hub when left out).
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    pub registry: String,
    /// The user name (asked for on a terminal when left out).
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// Runs `berth login`.
pub fn run(args: &LoginArgs, _global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let username = match &args.username {
        Some(username) => username.clone(),
        None if interactive && !args.password_stdin => prompt(printer, "Username: ")?,
        None => anyhow::bail!(
            "logging in to {}: no --username given and no terminal to ask on\n\
             hint: berth login --username USER --password-stdin {}",
            args.registry,
            args.registry
        ),
    };
    if username.is_empty() {
        anyhow::bail!("logging in to {}: the user name is empty", args.registry);
    }
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if interactive {
        prompt_secret(printer, "Password: ")?
    } else {
        anyhow::bail!(
            "logging in to {}: no terminal to ask for the password on\n\
             hint: pass it on standard input with --password-stdin",
            args.registry
        );
    };
    if password.is_empty() {
        anyhow::bail!("logging in to {}: the password is empty", args.registry);
    }
    let stored = registry::login(
        &args.registry,
        &username,
        &password,
        &args.registry_args.options(),
    )?;
    writeln!(printer.stderr(), "credential stored in {stored}")?;
    writeln!(printer.stdout(), "Login Succeeded")?;
    Ok(ExitCode::SUCCESS)
}

/// Asks for a line on the terminal.
fn prompt(printer: Printer, question: &str) -> anyhow::Result<String> {
    printer.prompt(question).context("asking on the terminal")?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks for a line on the terminal with its echo turned off.
fn prompt_secret(printer: Printer, question: &str) -> anyhow::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data, filled in by tcgetattr before use.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is this process's stdin and saved is a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the terminal's settings");
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above; the settings are restored below on every path.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(std::io::Error::last_os_error()).context("turning the terminal's echo off");
    }
    let answer = prompt(printer, question);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    answer
}
