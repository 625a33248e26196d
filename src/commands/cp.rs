//! `berth cp`: copy files between a container and the host, or a tar stream
//! (`-`) on stdin or stdout, as `docker cp`.

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::{Context as _, bail};
use berth_containers::copy;
use berth_store::layer::extract;
use clap::Args;
use std::fs::File;
use std::io::{BufReader, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `berth cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep the owners of the copied files (berth always does, as root).
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Follow a symlink at the source path.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream on stdin).
    #[arg(value_name = "SRC")]
    pub source: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream on stdout).
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// `CONTAINER:PATH` split, as docker splits it: a colon before any slash,
/// and not a path that starts with `/` or `.`.
fn container_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (container, path) = arg.split_once(':')?;
    (!container.is_empty() && !container.contains('/')).then_some((container, path))
}

/// Copies and prints nothing, as docker does with a stream.
pub fn run(args: &CpArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let staging = berth_store::tmp::fresh(&store.tmp_dir(), "cp.tar");
    let result = match (container_path(&args.source), container_path(&args.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((container, path)), None) => {
            let record = berth_containers::find(&store, container)?;
            if args.dest == "-" {
                copy::copy_out(&store, &record, path, args.follow_link, printer.stdout())?;
                Ok(())
            } else {
                let tar = File::options()
                    .create_new(true)
                    .read(true)
                    .write(true)
                    .open(&staging)
                    .with_context(|| format!("creating {}", staging.display()))?;
                let mut tar = copy::copy_out(&store, &record, path, args.follow_link, tar)
                    .with_context(|| format!("copying {} out of {container}", path))?;
                tar.rewind()?;
                unpack_on_host(tar, &args.dest, path)
            }
        }
        (None, Some((container, path))) => {
            let record = berth_containers::find(&store, container)?;
            if args.source == "-" {
                copy::copy_in(&store, &record, path, std::io::stdin().lock())
                    .with_context(|| format!("copying into {container}:{path}"))?;
                Ok(())
            } else {
                copy_from_host(
                    &store,
                    &record,
                    &args.source,
                    path,
                    &staging,
                    args.follow_link,
                )
                .with_context(|| format!("copying {} into {container}:{path}", args.source))
            }
        }
    };
    let _ = std::fs::remove_file(&staging);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Unpacks the stream of a copy out to `dest` on the host: into it when it
/// is a directory, as it otherwise (docker's rule).
fn unpack_on_host(tar: File, dest: &str, source_path: &str) -> anyhow::Result<()> {
    let dest = Path::new(dest);
    if dest.is_dir() {
        extract::unpack(BufReader::new(tar), dest, "the copied files")?;
        return Ok(());
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("the directory {} does not exist", parent.display());
    }
    // Unpacked beside the destination, then renamed onto it.
    let scratch = parent.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let result = extract::unpack(BufReader::new(tar), &scratch, "the copied files")
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            // The container's root has no name of its own: its contents are
            // the scratch directory itself.
            let copied = Path::new(source_path.trim_end_matches('/'))
                .file_name()
                .map_or_else(|| scratch.clone(), |name| scratch.join(name));
            std::fs::rename(copied, dest)
                .with_context(|| format!("moving the copy to {}", dest.display()))
        });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Copies the host path `source` into the container's `dest`: into it when it
/// is a directory there, as it otherwise.
fn copy_from_host(
    store: &berth_store::Store,
    record: &berth_containers::ContainerRecord,
    source: &str,
    dest: &str,
    staging: &Path,
    follow: bool,
) -> anyhow::Result<()> {
    // Only the parent is made canonical: a symlink named last is copied as
    // a link (or, with -L, as its target's contents) under its own name, as
    // docker does.
    let given = Path::new(source);
    let source_path = match given.file_name() {
        Some(name) => {
            let parent = match given.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            parent.canonicalize().map(|parent| parent.join(name))
        }
        None => given.canonicalize(),
    }
    .with_context(|| format!("{source} does not exist"))?;
    std::fs::symlink_metadata(&source_path).with_context(|| format!("{source} does not exist"))?;
    let (parent, name) = match (source_path.parent(), source_path.file_name()) {
        (Some(parent), Some(name)) => (parent.to_path_buf(), name.to_string_lossy().into_owned()),
        _ => (PathBuf::from("/"), ".".to_string()),
    };
    // Into the destination directory under the source's name, or as the
    // destination when it does not exist yet.
    let into_dir = copy::is_dir_in(store, record, dest)?;
    if !into_dir && dest.ends_with('/') {
        bail!("the destination directory {dest} does not exist in the container");
    }
    let (target_dir, entry_name) = match dest.trim_end_matches('/').rsplit_once('/') {
        _ if into_dir => (dest.to_string(), name.clone()),
        Some((dir, last)) => (
            if dir.is_empty() {
                "/".to_string()
            } else {
                dir.to_string()
            },
            last.to_string(),
        ),
        None => (".".to_string(), dest.to_string()),
    };
    let tar = File::options()
        .create_new(true)
        .read(true)
        .write(true)
        .open(staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let mut tar = copy::host_tar(&parent, &name, &entry_name, follow, tar)?;
    tar.flush()?;
    tar.rewind()?;
    copy::copy_in(store, record, &target_dir, BufReader::new(tar))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::container_path;

    #[test]
    fn container_paths_split_as_docker_splits_them() {
        let cases = [
            ("box:/etc/passwd", Some(("box", "/etc/passwd"))),
            ("box:", Some(("box", ""))),
            ("./box:x", None),
            ("/abs:x", None),
            ("dir/box:x", None),
            ("plain", None),
            ("-", None),
        ];
        for (arg, want) in cases {
            assert_eq!(container_path(arg), want, "{arg}");
        }
    }
}
