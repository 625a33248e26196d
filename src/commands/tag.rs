//! `berth tag`: give an image in the local store another name.

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context as _;
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
pub fn run(args: &TagArgs, global: &GlobalArgs, _printer: Printer) -> anyhow::Result<ExitCode> {
    images::validate_name(&args.target)?;
    let store = global.open_store()?;
    // The lease keeps a concurrent rmi or prune from removing the image
    // between finding it and naming it.
    let _lease = store.lease().context("taking a lease on the local store")?;
    let selected = images::resolve(&store, &args.source)?;
    store
        .tag(&args.target, &selected.image.top)
        .with_context(|| format!("tagging {} as {}", args.source, args.target))?;
    tracing::info!(source = %args.source, target = %normalize(&args.target), "tagged");
    Ok(ExitCode::SUCCESS)
}
