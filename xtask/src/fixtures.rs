//! Test fixtures, built once and cached under `target/fixtures`.
//!
//! - `busybox/rootfs`: a root filesystem made from Debian's `busybox-static`,
//!   with every applet linked, minimal `/etc` files and the usual mount points.
//!
//! Each fixture carries a stamp naming what it was built from; a fixture whose
//! stamp still matches is reused, so a second run costs a few stats.

use crate::util::{output, target_dir};
use anyhow::{Context, bail};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `busybox-static` installs its binary.
const BUSYBOX: &str = "/bin/busybox";

/// Bumped whenever the layout this module writes changes, to rebuild old fixtures.
const LAYOUT_VERSION: u32 = 1;

/// Builds every fixture that is missing or stale and returns the fixtures directory.
pub fn build() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("fixtures");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    busybox_rootfs(&dir.join("busybox"))?;
    Ok(dir)
}

/// The busybox root filesystem at `dir/rootfs`, rebuilt when the busybox
/// package or this layout changed.
fn busybox_rootfs(dir: &Path) -> anyhow::Result<()> {
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing\nhint: run 'cargo xtask deps' to install busybox-static");
    }
    let package =
        output(Command::new("dpkg-query").args(["-W", "-f=${Version}", "busybox-static"]))
            .unwrap_or_else(|_| "unknown".into());
    let stamp = format!(
        "layout={LAYOUT_VERSION} busybox-static={}\n",
        package.trim()
    );
    let stamp_path = dir.join("stamp");
    if fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) && dir.join("rootfs").exists() {
        eprintln!("xtask: fixture {} is up to date", dir.display());
        return Ok(());
    }
    eprintln!("xtask: building fixture {}", dir.display());

    // Build beside the final place and rename, so an interrupted build never
    // leaves a half-made rootfs that a stamp vouches for.
    let staging = dir.with_extension("staging");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    let rootfs = staging.join("rootfs");
    for sub in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "home", "var",
        "run",
    ] {
        fs::create_dir_all(rootfs.join(sub))?;
    }
    fs::create_dir_all(rootfs.join("tmp"))?;
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).with_context(|| format!("copying {BUSYBOX}"))?;
    fs::set_permissions(
        rootfs.join("bin/busybox"),
        fs::Permissions::from_mode(0o755),
    )?;

    let applets = output(Command::new(BUSYBOX).arg("--list-full"))?;
    for applet in applets.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let link = rootfs.join(applet);
        if link.exists() || applet == "bin/busybox" {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        symlink("/bin/busybox", &link).with_context(|| format!("linking {}", link.display()))?;
    }

    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(rootfs.join("etc/hostname"), "busybox\n")?;
    fs::write(rootfs.join("etc/hosts"), "127.0.0.1 localhost\n")?;
    fs::write(rootfs.join("etc/resolv.conf"), "")?;
    fs::write(staging.join("stamp"), &stamp)?;

    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    fs::rename(&staging, dir).with_context(|| format!("moving fixture into {}", dir.display()))?;
    Ok(())
}
