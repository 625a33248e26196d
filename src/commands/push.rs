//! `berth push`: push an image from the local store to a registry.

use super::GlobalArgs;
use super::transfer_progress::{Direction, RegistryArgs, TransferProgress};
use berth_builder::registry;
use berth_store::tags;
use clap::Args;
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
pub fn run(args: &PushArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let options = args.registry.options();
    let store = global.open_store()?;
    let name = tags::normalize(&args.name);
    let target = args.target.as_deref().unwrap_or(&args.name);
    let progress = TransferProgress::new(Direction::Push, args.quiet);
    let result = registry::push_image(&store, &name, target, &options, progress.sink());
    progress.finish();
    let report = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.quiet {
        println!("{}", report.digest);
    } else {
        println!("Digest: {}", report.digest);
        let status = if report.up_to_date {
            "the registry already has this image".to_string()
        } else {
            format!(
                "{} blob(s) pushed, {} mounted, {} already there",
                report.uploaded, report.mounted, report.present
            )
        };
        println!("Status: pushed {target} ({status})");
    }
    Ok(ExitCode::SUCCESS)
}
