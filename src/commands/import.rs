//! `berth import`: make a one-layer image in the local store from a root
//! filesystem directory, like `docker import` of a directory.

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_store::image;
use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `berth import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The root filesystem directory.
    #[arg(value_name = "DIR")]
    pub rootfs: PathBuf,
    /// The image name, e.g. busybox or busybox:1.36.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The image's default command (repeat for each argument).
    #[arg(long = "cmd", value_name = "ARG")]
    pub cmd: Vec<String>,
}

/// Imports the directory and prints the manifest digest.
pub fn run(args: &ImportArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    // SOURCE_DATE_EPOCH pins the creation time, so imports are reproducible.
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cmd: Vec<&str> = args.cmd.iter().map(String::as_str).collect();
    let descriptor = image::import_rootfs(&store, &args.rootfs, &args.name, &cmd, created)
        .with_context(|| format!("importing {}", args.rootfs.display()))?;
    writeln!(printer.stdout(), "{}", descriptor.digest)?;
    Ok(ExitCode::SUCCESS)
}
