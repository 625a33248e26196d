//! `berth import`: make a one-layer image in the local store from a root
//! filesystem directory, like `docker import` of a directory.

use berth_builder::image;
use berth_builder::store::Store;
use clap::Args;
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
    /// The local store (default: $BERTH_ROOT, /var/lib/berth as root, else $XDG_DATA_HOME/berth).
    #[arg(long, value_name = "DIR", env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
}

/// Imports the directory and prints the manifest digest.
pub fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let root = args.root.clone().unwrap_or_else(Store::default_root);
    let store = Store::open(&root).map_err(|e| anyhow::anyhow!("opening the local store: {e}"))?;
    // SOURCE_DATE_EPOCH pins the creation time, so imports are reproducible.
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cmd: Vec<&str> = args.cmd.iter().map(String::as_str).collect();
    let descriptor = image::import_rootfs(&store, &args.rootfs, &args.name, &cmd, created)
        .map_err(|e| anyhow::anyhow!("importing {}: {e}", args.rootfs.display()))?;
    println!("{}", descriptor.digest);
    Ok(ExitCode::SUCCESS)
}
