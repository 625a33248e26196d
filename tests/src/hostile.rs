//! Hostile images: tar layers crafted entry by entry (raw names and link
//! targets, as an attacker writes them), OCI layouts around them whose config
//! may lie about the layers' diffIDs, pushed with skopeo; and a canary
//! directory whose every file, mode and mtime must survive whatever berth
//! does with them.

use crate::{bins, require};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// One crafted tar entry.
#[derive(Debug, Clone)]
pub enum Raw {
    /// A directory.
    Dir(String),
    /// A regular file with content.
    File(String, Vec<u8>),
    /// A symlink and its target.
    Symlink(String, String),
    /// A character device.
    Char(String, u32, u32),
}

/// The tar stream of `entries`, names and targets written raw.
pub fn tar_layer(entries: &[Raw]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(5);
        header.set_uid(0);
        header.set_gid(0);
        let (name, link, data): (&str, Option<&str>, &[u8]) = match entry {
            Raw::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (name, None, &[])
            }
            Raw::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                (name, None, data)
            }
            Raw::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                (name, Some(target), &[])
            }
            Raw::Char(name, major, minor) => {
                header.set_entry_type(tar::EntryType::Char);
                header.set_mode(0o666);
                header.set_device_major(*major).unwrap();
                header.set_device_minor(*minor).unwrap();
                (name, None, &[])
            }
        };
        let old = header.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The busybox fixture's root filesystem as one uncompressed layer.
pub fn busybox_layer() -> Vec<u8> {
    let rootfs = bins::fixtures().join("busybox/rootfs");
    let tar = require::program("tar", "tar");
    let out = Command::new(tar)
        .args(["--numeric-owner", "--sort=name", "-C"])
        .arg(&rootfs)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar of {}", rootfs.display());
    out.stdout
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A layer and the diffID the image config will claim for it.
pub struct Layer {
    /// The uncompressed tar.
    pub tar: Vec<u8>,
    /// What the config says its diffID is.
    pub claimed_diff_id: String,
}

impl Layer {
    /// A layer whose config tells the truth.
    pub fn honest(tar: Vec<u8>) -> Layer {
        let claimed_diff_id = digest(&tar);
        Layer {
            tar,
            claimed_diff_id,
        }
    }
}

/// Writes an OCI layout at `dir` holding one image tagged `tag`.
pub fn write_layout(dir: &Path, tag: &str, layers: &[Layer]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        fs::write(blobs.join(&d["sha256:".len()..]), bytes).unwrap();
        (d, bytes.len())
    };
    let mut descriptors = Vec::new();
    for layer in layers {
        let (d, size) = put(&layer.tar);
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": d,
            "size": size,
        }));
    }
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.claimed_diff_id.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": descriptors,
    });
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Writes `layers` as an image and pushes it with skopeo to `reference`
/// (`HOST:PORT/name:tag` on a plain-HTTP test registry).
pub fn push(layers: &[Layer], reference: &str) {
    let skopeo = require::program("skopeo", "skopeo");
    let dir = tempfile::tempdir().unwrap();
    write_layout(dir.path(), "t", layers);
    let out = Command::new(skopeo)
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:t", dir.path().display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy to {reference} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A host directory no layer may touch: a file, a directory with a child,
/// all with old mtimes, and a listing to compare with.
pub struct Canary {
    dir: TempDir,
}

impl Canary {
    /// A fresh canary tree under the system temporary directory.
    pub fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("berth-canary-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("victimdir/inner")).unwrap();
        fs::write(p.join("victim"), b"host data").unwrap();
        fs::write(p.join("victimdir/inner/file"), b"more").unwrap();
        let old = fs::FileTimes::new()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000));
        for rel in [
            "victim",
            "victimdir/inner/file",
            "victimdir/inner",
            "victimdir",
            "",
        ] {
            fs::File::open(p.join(rel)).unwrap().set_times(old).unwrap();
        }
        Canary { dir }
    }

    /// The canary directory (an absolute host path).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path()` as a string, for symlink targets.
    pub fn path_str(&self) -> String {
        self.path().display().to_string()
    }

    /// Every entry with its type, mode, size, mtime and content.
    pub fn listing(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(path) = stack.pop() {
            let m = fs::symlink_metadata(&path).unwrap();
            let content = if m.is_file() {
                String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
            } else {
                String::new()
            };
            out.insert(
                path.clone(),
                format!(
                    "{:?} mode {:o} size {} mtime {} rdev {} {content}",
                    m.file_type(),
                    m.mode(),
                    m.len(),
                    m.mtime(),
                    m.rdev()
                ),
            );
            if m.is_dir() {
                for e in fs::read_dir(&path).unwrap() {
                    stack.push(e.unwrap().path());
                }
            }
        }
        out
    }
}

impl Default for Canary {
    fn default() -> Self {
        Self::new()
    }
}
