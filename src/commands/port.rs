//! `berth port`: show the host ports a container publishes, as `docker port`.

use super::GlobalArgs;
use crate::printer::Printer;
use berth_containers::network::ports::{self, PortMapping};
use berth_containers::{self as container};
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container: id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Show only where this container port is published (80, 80/tcp, 53/udp).
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private_port: Option<String>,
}

/// Prints `80/tcp -> 0.0.0.0:8080` lines, or with a private port the host
/// addresses it is published on.
pub fn run(args: &PortArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let private = match args.private_port.as_deref().map(ports::parse_private_port) {
        None => None,
        Some(Ok(private)) => Some(private),
        Some(Err(e)) => {
            printer.error(&e);
            return Ok(ExitCode::FAILURE);
        }
    };
    let store = global.open_store()?;
    let record = container::find(&store, &args.container)?;
    // Only a running container has its ports, as with docker.
    let published: &[PortMapping] = if record.is_running() {
        &record.ports
    } else {
        &[]
    };
    let lines = ports::port_lines(published, private);
    if let (Some(wanted), true) = (&args.private_port, lines.is_empty()) {
        printer.error_message(format!(
            "no public port '{wanted}' published for {}",
            args.container
        ));
        return Ok(ExitCode::FAILURE);
    }
    let mut out = printer.stdout();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}
