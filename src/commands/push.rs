//! `berth push`: push an image from the local store to a registry.

use super::GlobalArgs;
use super::transfer_progress::{Direction, RegistryArgs, TransferProgress};
use crate::printer::Printer;
use berth_builder::registry;
use berth_store::tags;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image in the local store.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where to push it (default: NAME, which then names the registry).
    #[arg(value_name = "REF")]
    pub target: Option<String>,
    /// Print only the manifest digest.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Runs `berth push`.
pub fn run(args: &PushArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let options = args.registry.options();
    let store = global.open_store()?;
    let name = tags::normalize(&args.name);
    let target = args.target.as_deref().unwrap_or(&args.name);
    let progress = TransferProgress::new(Direction::Push, printer.quiet_if(args.quiet));
    let result = registry::push_image(&store, &name, target, &options, progress.sink());
    progress.finish();
    let report = result?;
    let mut out = printer.stdout();
    if args.quiet {
        writeln!(out, "{}", report.digest)?;
    } else {
        writeln!(out, "Digest: {}", report.digest)?;
        let status = if report.up_to_date {
            "the registry already has this image".to_string()
        } else {
            format!(
                "{} blob(s) pushed, {} mounted, {} already there",
                report.uploaded, report.mounted, report.present
            )
        };
        writeln!(out, "Status: pushed {target} ({status})")?;
    }
    Ok(ExitCode::SUCCESS)
}
