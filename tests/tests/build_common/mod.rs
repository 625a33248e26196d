//! Shared support for the `berth build` end-to-end tests: a fresh store with
//! the busybox fixture imported as `busybox`, a context directory, and helpers
//! to build, inspect and run images.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_e2e::{bins, require};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// A store and a context for one test.
pub struct BuildEnv {
    pub store: TempDir,
    pub ctx: TempDir,
    /// The runtime RUN steps use: berth-runtime unless a test picks another.
    pub runtime: PathBuf,
}

impl BuildEnv {
    /// A fresh store holding `busybox`, an empty context, berth-runtime for RUN.
    pub fn new() -> BuildEnv {
        require::root();
        let store = tempfile::Builder::new()
            .prefix("berth-store-")
            .tempdir()
            .unwrap();
        let ctx = tempfile::Builder::new()
            .prefix("berth-ctx-")
            .tempdir()
            .unwrap();
        let env = BuildEnv {
            store,
            ctx,
            runtime: bins::berth_runtime(),
        };
        let rootfs = bins::fixtures().join("busybox/rootfs");
        let out = Command::new(bins::berth())
            .args(["import", "--root"])
            .arg(env.store.path())
            .arg(&rootfs)
            .args(["busybox", "--cmd", "sh"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    /// Writes a context file (parents created).
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.ctx.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// The command for `berth build` with this env's store, runtime and context;
    /// `args` go before the context.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.args(["build", "--progress", "plain", "--root"])
            .arg(self.store.path())
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .arg(self.ctx.path())
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    /// Runs `berth build`.
    pub fn build(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `berth build`, fails the test unless it succeeds, returns
    /// (manifest digest, progress output).
    pub fn build_ok(&self, args: &[&str]) -> (String, String) {
        let out = self.build(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "berth build {args:?} failed:\n{stderr}"
        );
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr,
        )
    }

    /// The OCI layout of the store.
    pub fn layout(&self) -> PathBuf {
        self.store.path().join("oci")
    }

    /// A blob of the store.
    pub fn blob(&self, digest: &str) -> PathBuf {
        self.layout()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// A JSON blob.
    pub fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&fs::read(self.blob(digest)).unwrap()).unwrap()
    }

    /// The manifest a tag points at.
    pub fn manifest_of(&self, tag: &str) -> Value {
        let index: Value =
            serde_json::from_slice(&fs::read(self.layout().join("index.json")).unwrap()).unwrap();
        let want = if tag.contains(':') {
            tag.to_string()
        } else {
            format!("{tag}:latest")
        };
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == want.as_str())
            .unwrap_or_else(|| panic!("{want} is not tagged in the store: {index}"));
        self.json(entry["digest"].as_str().unwrap())
    }

    /// The image configuration a tag points at.
    pub fn config_of(&self, tag: &str) -> Value {
        let manifest = self.manifest_of(tag);
        self.json(manifest["config"]["digest"].as_str().unwrap())
    }

    /// The entry names of a layer blob, as GNU tar lists them.
    pub fn layer_entries(&self, digest: &str) -> Vec<String> {
        let out = Command::new("tar")
            .arg("-tf")
            .arg(self.blob(digest))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar -tf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end_matches('/').to_string())
            .collect()
    }

    /// How often a RUN step that appends to the cache mount `counter` ran.
    pub fn runs(&self, counter_id: &str, file: &str) -> usize {
        let id = format!("{:x}", Sha256::digest(counter_id.as_bytes()));
        let path = self.store.path().join("cache-mounts").join(id).join(file);
        fs::read_to_string(path)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Unpacks the tagged image with umoci and runs it with berth-runtime;
    /// returns its stdout.
    pub fn run_image(&self, tag: &str) -> String {
        let umoci = require::program("umoci", "umoci");
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        let out = Command::new(umoci)
            .args(["--log", "error", "unpack", "--image"])
            .arg(format!("{}:{tag}", self.layout().display()))
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci unpack failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // umoci asks for a terminal, which runc (and berth-runtime) can give
        // an attached run only from a terminal; tests have none.
        let config_path = bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let out = Command::new(bins::berth_runtime())
            .arg("--root")
            .arg(dir.path().join("state"))
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("berth-e2e-{}", std::process::id()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "running the image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The layer digests of a manifest.
pub fn layers(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Files left in the store's staging directory.
pub fn staging_entries(store: &Path) -> Vec<String> {
    fs::read_dir(store.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
