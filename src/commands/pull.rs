//! `berth pull`: pull an image from a registry into the local store.

use super::GlobalArgs;
use super::transfer_progress::{Direction, RegistryArgs, TransferProgress};
use crate::printer::Printer;
use berth_builder::registry;
use berth_store::tags;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image, as Docker names it (`busybox` is docker.io/library/busybox:latest).
    #[arg(value_name = "REF")]
    pub image: String,
    /// Print only the manifest digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// The platform to pick from a multi-platform image (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Runs `berth pull`.
pub fn run(args: &PullArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let mut options = args.registry.options();
    if let Some(platform) = &args.platform {
        options.platform = Some(registry::parse_platform(platform).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --platform '{platform}': expected os/arch[/variant], e.g. linux/arm64"
            )
        })?);
    }
    let store = global.open_store()?;
    // The same local name a FROM of this reference looks up and pulls to.
    let name = tags::normalize(&args.image);
    let progress = TransferProgress::new(Direction::Pull, printer.quiet_if(args.quiet));
    let result = registry::pull_image(&store, &args.image, &name, &options, progress.sink());
    progress.finish();
    let report = result?;
    let mut out = printer.stdout();
    if args.quiet {
        writeln!(out, "{}", report.digest)?;
    } else {
        writeln!(out, "Digest: {}", report.digest)?;
        writeln!(
            out,
            "Status: pulled {name} ({} blob(s) downloaded, {} already present)",
            report.downloaded, report.present
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
