//! Fresh OCI bundles made from the busybox fixture.

use crate::bins;
use oci_spec::runtime::{ProcessBuilder, RootBuilder, Spec};
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// An OCI bundle in a temporary directory: `config.json` plus a private copy of
/// the busybox rootfs, so a test may write to it freely. Removed on drop.
pub struct Bundle {
    dir: TempDir,
}

impl Bundle {
    /// A bundle whose process runs `args`, with the default runc-like spec
    /// (namespaces, mounts, capabilities) and `hostname` set to `berth-test`.
    pub fn busybox(args: &[&str]) -> Bundle {
        Self::busybox_with(args, |_| {})
    }

    /// Like [`Bundle::busybox`], letting the test adjust the spec before it is written.
    pub fn busybox_with(args: &[&str], adjust: impl FnOnce(&mut Spec)) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .expect("creating the bundle directory");
        let fixture = bins::fixtures().join("busybox/rootfs");
        copy_tree(&fixture, &dir.path().join("rootfs"))
            .unwrap_or_else(|e| panic!("copying {} into the bundle: {e}", fixture.display()));

        let mut spec = Spec::default();
        let process = ProcessBuilder::default()
            .terminal(false)
            .args(args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
            .env(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
                "TERM=xterm".to_string(),
            ])
            .cwd("/")
            .build()
            .expect("building the process spec");
        spec.set_process(Some(process));
        spec.set_root(Some(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .expect("building the root spec"),
        ));
        spec.set_hostname(Some("berth-test".to_string()));
        adjust(&mut spec);
        spec.save(dir.path().join("config.json"))
            .expect("writing config.json");
        Bundle { dir }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bundle's root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

/// Copies a directory tree, keeping symlinks as symlinks and file modes.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
