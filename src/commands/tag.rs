//! `berth tag`: give an image in the local store another name.

use super::GlobalArgs;
use berth_store::images;
use berth_store::tags::normalize;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: a name, name:tag, name@digest or an image ID prefix.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The new name, e.g. app:1 or localhost:5000/team/app:1.
    #[arg(value_name = "TARGET")]
    pub target: String,
}

/// Points TARGET at SOURCE's image.
pub fn run(args: &TagArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    images::validate_name(&args.target).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = global.open_store()?;
    // The lease keeps a concurrent rmi or prune from removing the image
    // between finding it and naming it.
    let _lease = store
        .lease()
        .map_err(|e| anyhow::anyhow!("taking a lease on the local store: {e}"))?;
    let selected = images::resolve(&store, &args.source).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .tag(&args.target, &selected.image.top)
        .map_err(|e| anyhow::anyhow!("tagging {} as {}: {e}", args.source, args.target))?;
    tracing::info!(source = %args.source, target = %normalize(&args.target), "tagged");
    Ok(ExitCode::SUCCESS)
}
