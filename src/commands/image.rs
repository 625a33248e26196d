//! `berth image …`: docker's image command group, dispatching to the
//! top-level commands, and `image prune`.

use super::images::format;
use super::{GlobalArgs, history, images, import, inspect, load, pull, push, rmi, save, tag};
use crate::printer::Printer;
use anyhow::Context as _;
use berth_containers::ContainerRoots;
use berth_store::collect::Reclaimed;
use berth_store::images::{self as store_images, RemoveOptions, Removed};
use berth_store::{Digest, Store};
use clap::{Args, Subcommand};
use std::collections::BTreeSet;
use std::io::{BufRead as _, Read as _, Write as _};
use std::process::ExitCode;

/// Arguments of `berth image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// The subcommands of `berth image`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images (as `berth images`).
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove images (as `berth rmi`).
    #[command(visible_alias = "remove")]
    Rm(rmi::RmiArgs),
    /// Remove dangling images (-a: every image no container uses).
    Prune(PruneArgs),
    /// Show images' descriptions as JSON.
    Inspect(ImageInspectArgs),
    /// Show the layers of an image.
    History(history::HistoryArgs),
    /// Give an image another name.
    Tag(tag::TagArgs),
    /// Write images to an archive.
    Save(save::SaveArgs),
    /// Read images from an archive.
    Load(load::LoadArgs),
    /// Make an image from a root filesystem.
    Import(import::ImportArgs),
    /// Push an image to a registry.
    Push(push::PushArgs),
    /// Pull an image from a registry.
    Pull(pull::PullArgs),
}

/// Arguments of `berth image inspect`.
#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// The images: names, name:tag, name@digest or image ID prefixes.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Print each image through a Go template instead.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

/// Arguments of `berth image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Runs a subcommand of `berth image`.
pub fn run(args: &ImageArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    match &args.command {
        ImageCommand::Ls(args) => images::run(args, global, printer),
        ImageCommand::Rm(args) => rmi::run(args, global, printer),
        ImageCommand::Prune(args) => prune(args, global, printer),
        ImageCommand::Inspect(args) => {
            let args = inspect::InspectArgs {
                names: args.images.clone(),
                format: args.format.clone(),
                kind: Some(inspect::Kind::Image),
            };
            inspect::run(&args, global, printer)
        }
        ImageCommand::History(args) => history::run(args, global, printer),
        ImageCommand::Tag(args) => tag::run(args, global, printer),
        ImageCommand::Save(args) => save::run(args, global, printer),
        ImageCommand::Load(args) => load::run(args, global, printer),
        ImageCommand::Import(args) => import::run(args, global, printer),
        ImageCommand::Push(args) => push::run(args, global, printer),
        ImageCommand::Pull(args) => pull::run(args, global, printer),
    }
}

/// `berth image prune`: asks, removes, and reports as docker does.
fn prune(args: &PruneArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(printer, warning)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = global.open_store()?;
    let (removed, reclaimed) = prune_images(&store, args.all, printer)?;
    let mut out = printer.stdout();
    write_deleted_images(&mut out, &removed)?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        format::docker_size(reclaimed.bytes)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Asks docker's question on stderr; only `y` or `yes` goes on.
pub fn confirm(printer: Printer, warning: &str) -> anyhow::Result<bool> {
    printer.prompt(&format!(
        "{warning}\nAre you sure you want to continue? [y/N] "
    ))?;
    let mut answer = String::new();
    // One short line is an answer; more is not read.
    std::io::stdin()
        .lock()
        .take(256)
        .read_line(&mut answer)
        .context("reading the answer from stdin")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Writes docker's "Deleted Images:" section (nothing when none were).
pub fn write_deleted_images(
    out: &mut dyn std::io::Write,
    removed: &[Removed],
) -> std::io::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    writeln!(out, "Deleted Images:")?;
    for step in removed {
        match step {
            Removed::Untagged(name) => writeln!(out, "untagged: {name}")?,
            Removed::Deleted(id) => writeln!(out, "deleted: {id}")?,
        }
    }
    writeln!(out)
}

/// Removes the dangling images (untagged ones), or with `all` every image no
/// container uses, and collects the blobs and snapshots only they held.
pub fn prune_images(
    store: &Store,
    all: bool,
    printer: Printer,
) -> anyhow::Result<(Vec<Removed>, Reclaimed)> {
    let in_use: BTreeSet<Digest> = berth_containers::images_in_use(store)?;
    let mut doomed = BTreeSet::new();
    for image in store_images::local_images(store)? {
        let used =
            in_use.contains(&image.top.digest) || in_use.contains(&image.image.descriptor.digest);
        if !used && (all || image.names.is_empty()) {
            doomed.insert(image.top.digest.to_string());
        }
    }
    if doomed.is_empty() {
        return Ok((Vec::new(), Reclaimed::default()));
    }
    let on_wait = || {
        let _ = writeln!(printer.stderr(), "waiting for running builds to finish");
    };
    let references: Vec<String> = doomed.into_iter().collect();
    // By manifest digest with force: every name of the image goes, as
    // docker's prune untags each.
    let report = store_images::remove(
        store,
        &references,
        RemoveOptions { force: true },
        &[&ContainerRoots, &berth_builder::cache::roots(store)],
        &on_wait,
    )
    .with_context(|| format!("pruning images in {}", store.root().display()))?;
    let mut removed = Vec::new();
    for (reference, result) in report.results {
        match result {
            Ok(steps) => removed.extend(steps),
            // An image removed meanwhile by another berth is what was wanted.
            Err(store_images::ImagesError::NotFound(_)) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("removing image {reference}")));
            }
        }
    }
    Ok((removed, report.reclaimed))
}
