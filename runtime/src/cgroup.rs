//! Operations on a container's cgroup: its processes (`ps`), statistics
//! (`events`) and resource limits (`update`).

use crate::error::{Error, Result};
use crate::lifecycle::Runtime;
use crate::stats::Stats;
use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt, create_cgroup_manager};
use libcontainer::container::Container;
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

impl Runtime {
    /// The process ids in a container's cgroup, sorted.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let container = self.load(id)?;
        let (manager, path) = manager(&container)?;
        let mut pids: Vec<i32> = manager
            .get_all_pids()
            .map_err(|e| cgroup_error("listing the processes of", id, &path, &e))?
            .into_iter()
            .map(|p| p.as_raw())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// A container's resource statistics.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let container = self.load_live(id)?;
        let (manager, path) = manager(&container)?;
        let stats = manager
            .stats()
            .map_err(|e| cgroup_error("reading the statistics of", id, &path, &e))?;
        Ok(stats.into())
    }

    /// Applies new resource limits to a running, paused or created container.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let container = self.load_live(id)?;
        let (manager, path) = manager(&container)?;
        manager
            .apply(&ControllerOpt {
                resources,
                disable_oom_killer: resources
                    .memory()
                    .as_ref()
                    .and_then(|m| m.disable_oom_killer())
                    .unwrap_or(false),
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| cgroup_error("updating", id, &path, &e))
    }
}

impl Runtime {
    /// The file that counts the container's OOM kills: the memory
    /// controller's `memory.oom_control` (v1) or `memory.events` (v2), read
    /// with [`oom_kills`]. `None` where there is no such file to read: no
    /// memory controller, or a cgroup managed through systemd.
    pub fn oom_kill_file(&self, id: &str) -> Result<Option<PathBuf>> {
        let container = self.load_live(id)?;
        if container.systemd() {
            return Ok(None);
        }
        let config = container
            .spec()
            .map_err(|source| Error::container("reading the config of", id, source))?;
        // Cleaned as the cgroup manager cleans it, so `..` cannot climb out.
        let cleaned = libcgroups::common::clean_cgroup_path(&config.cgroup_path);
        let relative = cleaned.strip_prefix("/").unwrap_or(&cleaned).to_owned();
        Ok(match libcgroups::common::get_cgroup_setup() {
            Ok(libcgroups::common::CgroupSetup::Unified) => {
                libcgroups::v2::util::get_unified_mount_point()
                    .map(|mount| mount.join(&relative).join("memory.events"))
                    .ok()
            }
            Ok(_) => libcgroups::v1::util::get_subsystem_mount_point(
                &libcgroups::v1::ControllerType::Memory,
            )
            .map(|mount| mount.join(&relative).join("memory.oom_control"))
            .ok(),
            Err(_) => None,
        })
    }

    /// Loads a container that has processes: created, running or paused.
    fn load_live(&self, id: &str) -> Result<Container> {
        let container = self.load(id)?;
        if !container.status().can_kill() {
            return Err(Error::NotRunning {
                id: id.to_owned(),
                status: crate::state::status_name(container.status()).into(),
            });
        }
        Ok(container)
    }
}

/// Kills what still runs in the cgroup of a container whose state file is
/// unreadable, and removes that cgroup. A runtime killed while it rewrote
/// `state.json` (libcontainer truncates it first) leaves the container
/// running with no pid on record; the cgroup path survives in the config
/// libcontainer saved beside the state at create. The cgroup is frozen while
/// its processes are listed and killed, so none can fork away or be replaced
/// by a reused pid.
pub(crate) fn remove_orphaned(container_dir: &Path, id: &str, systemd: bool) -> Result<()> {
    let config = match libcontainer::config::YoukiConfig::load(container_dir) {
        Ok(config) => config,
        // No saved config: the create stopped before making the cgroup.
        Err(libcontainer::config::ConfigError::LoadIO { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(());
        }
        Err(err) => {
            return Err(Error::InvalidInput(format!(
                "container {id} has neither a readable state nor a readable config in {}: {}",
                container_dir.display(),
                crate::error::youki_chain(&err)
            )));
        }
    };
    let path = config.cgroup_path.clone();
    let manager = create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: systemd,
        container_name: id.to_owned(),
    })
    .map_err(|e| cgroup_error("opening", id, &path, &e))?;
    // Freezing fails where there is no freezer (or nothing left); the kill
    // below still reaches every listed process.
    let _ = manager.freeze(libcgroups::common::FreezerState::Frozen);
    let pids = manager.get_all_pids().unwrap_or_default();
    for pid in pids {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = manager.freeze(libcgroups::common::FreezerState::Thawed);
    manager
        .remove()
        .map_err(|e| cgroup_error("removing", id, &path, &e))
}

fn manager(container: &Container) -> Result<(libcgroups::common::AnyCgroupManager, PathBuf)> {
    let id = container.id();
    let config = container
        .spec()
        .map_err(|source| Error::container("reading the config of", id, source))?;
    let path = config.cgroup_path.clone();
    let manager = create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: id.to_owned(),
    })
    .map_err(|e| cgroup_error("opening", id, &path, &e))?;
    Ok((manager, path))
}

/// How many OOM kills the [`Runtime::oom_kill_file`] `file` counts; `None`
/// when it is gone (the cgroup was removed) or has no `oom_kill` line (a
/// kernel older than 4.13).
pub fn oom_kills(file: &Path) -> Result<Option<u64>> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(oom_kill_count(&text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io("reading", file, err)),
    }
}

/// The `oom_kill` line of v1's `memory.oom_control` or v2's `memory.events`.
fn oom_kill_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|count| count.trim().parse().ok())
}

fn cgroup_error(action: &'static str, id: &str, path: &Path, err: &dyn std::error::Error) -> Error {
    Error::Cgroup {
        action,
        id: id.to_owned(),
        path: path.to_owned(),
        reason: crate::error::youki_chain(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_never_climb_out_of_the_hierarchy() {
        use std::path::Path;
        // As runc's utils.CleanPath: cleaned as if rooted at '/'.
        let cases = [
            ("../../x", "x"),
            ("/../../x", "/x"),
            ("/a/../../b/./c", "/b/c"),
            ("a/b/..", "a"),
            ("/youki/c1", "/youki/c1"),
            ("..", ""),
            ("", ""),
            ("system.slice:../../../x:n", "x:n"),
            ("system.slice:berth:c1", "system.slice:berth:c1"),
        ];
        for (path, want) in cases {
            let cleaned = libcgroups::common::clean_cgroup_path(Path::new(path));
            assert_eq!(cleaned, Path::new(want), "{path}");
            let joined = Path::new("/sys/fs/cgroup/memory")
                .join(cleaned.strip_prefix("/").unwrap_or(&cleaned));
            assert!(joined.starts_with("/sys/fs/cgroup/memory"), "{path}");
        }
    }

    #[test]
    fn oom_kills_are_read_from_v1_and_v2_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        let v2 = "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kill_count(v1), Some(3));
        assert_eq!(oom_kill_count(v2), Some(2));
        assert_eq!(oom_kill_count("oom_kill_disable 0\nunder_oom 0\n"), None);
    }
}
