//! `berth rmi`: remove images from the local store.

use super::GlobalArgs;
use super::images::format;
use berth_containers::ContainerRoots;
use berth_store::images::{self, RemoveOptions, Removed};
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// The images: names, name:tag, name@digest or image ID prefixes.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Untag an image a container uses, and every tag of an image given by ID.
    #[arg(short, long)]
    pub force: bool,
}

/// Removes the images, reporting each like docker does.
pub fn run(args: &RmiArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let on_wait = || eprintln!("waiting for running builds to finish");
    let report = images::remove(
        &store,
        &args.images,
        RemoveOptions { force: args.force },
        &[&ContainerRoots, &berth_builder::cache::roots(&store)],
        &on_wait,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut failed = false;
    for (_, result) in &report.results {
        match result {
            Ok(done) => {
                for step in done {
                    match step {
                        Removed::Untagged(name) => println!("Untagged: {name}"),
                        Removed::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("berth: {}", crate::error_chain(e));
                failed = true;
            }
        }
    }
    if report.reclaimed.bytes > 0 {
        eprintln!("reclaimed {}", format::size(report.reclaimed.bytes));
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
