//! `berth import`: make a one-layer image from a tarball (a file, `-` for
//! stdin, or an http(s) URL), as `docker import` does, or from a root
//! filesystem directory (berth's own form, used by tests and the demo).

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_builder::{change, engine::fetch};
use berth_store::image;
use berth_store::oci::{History, ImageConfig, rfc3339};
use clap::Args;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The largest tarball `import` downloads from a URL (64 GiB).
const MAX_DOWNLOAD: u64 = 64 << 30;

/// Arguments of `berth import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A tarball (plain, gzip or zstd), `-` for stdin, an http(s) URL, or a
    /// root filesystem directory.
    #[arg(value_name = "FILE|-|URL")]
    pub source: String,
    /// The image name, e.g. busybox or busybox:1.36.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
    /// A Dockerfile instruction to apply to the image (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// A commit message for the image's history.
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// The image's default command (repeat for each argument); for a
    /// directory import.
    #[arg(long = "cmd", value_name = "ARG", hide = true)]
    pub cmd: Vec<String>,
}

/// Imports the source; prints the image id (for a directory, the manifest
/// digest, as berth always did).
pub fn run(args: &ImportArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let dir = Path::new(&args.source);
    if args.source != "-" && !fetch::is_url(&args.source) && dir.is_dir() {
        return import_dir(args, &store, dir, printer);
    }
    // SOURCE_DATE_EPOCH pins the creation time; otherwise it is now, as docker's.
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(now);
    let mut config = ImageConfig {
        created: Some(rfc3339(created)),
        architecture: image::host_architecture().to_string(),
        os: "linux".to_string(),
        history: vec![History {
            created: Some(rfc3339(created)),
            comment: Some(
                args.message
                    .clone()
                    .unwrap_or_else(|| format!("Imported from {}", args.source)),
            ),
            ..Default::default()
        }],
        ..Default::default()
    };
    change::apply_all(&mut config, &args.changes)?;
    let name = args.name.as_deref();
    let descriptor = if fetch::is_url(&args.source) {
        let staging = berth_store::tmp::fresh(&store.tmp_dir(), "import");
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("creating {}", staging.display()))?;
        let result = fetch::download_limited(
            &args.source,
            &staging,
            None,
            Some(MAX_DOWNLOAD),
            &mut |_, _| {},
        )
        .map_err(anyhow::Error::from)
        .and_then(|downloaded| {
            let file = std::fs::File::open(&downloaded.path)
                .with_context(|| format!("opening {}", downloaded.path.display()))?;
            Ok(image::import_tar(&store, file, &args.source, config, name)?)
        });
        // The download is staging only; its removal failing leaves it to the
        // next store open's stale-staging sweep.
        let _ = berth_store::tmp::remove_tree(&staging);
        result?
    } else if args.source == "-" {
        image::import_tar(&store, std::io::stdin().lock(), "-", config, name)?
    } else {
        let file = std::fs::File::open(&args.source)
            .with_context(|| format!("opening {} to import", args.source))?;
        image::import_tar(&store, file, &args.source, config, name)?
    };
    let stored = image::load_descriptor(&store, &args.source, descriptor)?;
    writeln!(printer.stdout(), "{}", stored.manifest.config.digest)?;
    Ok(ExitCode::SUCCESS)
}

/// Seconds since the epoch, now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Imports a root filesystem directory, reproducibly (SOURCE_DATE_EPOCH or
/// the epoch), and prints the manifest digest.
fn import_dir(
    args: &ImportArgs,
    store: &berth_store::Store,
    rootfs: &Path,
    printer: Printer,
) -> anyhow::Result<ExitCode> {
    let name = args
        .name
        .as_deref()
        .context("importing a directory needs an image name")?;
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cmd: Vec<&str> = args.cmd.iter().map(String::as_str).collect();
    let descriptor = image::import_rootfs(store, rootfs, name, &cmd, created)
        .with_context(|| format!("importing {}", rootfs.display()))?;
    writeln!(printer.stdout(), "{}", descriptor.digest)?;
    Ok(ExitCode::SUCCESS)
}
