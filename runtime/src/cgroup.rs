//! Operations on a container's cgroup: its processes (`ps`), statistics
//! (`events`) and resource limits (`update`).

use crate::error::{Error, Result};
use crate::lifecycle::Runtime;
use crate::stats::Stats;
use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt, create_cgroup_manager};
use libcontainer::container::Container;
use oci_spec::runtime::LinuxResources;

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

fn manager(
    container: &Container,
) -> Result<(libcgroups::common::AnyCgroupManager, std::path::PathBuf)> {
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

fn cgroup_error(
    action: &'static str,
    id: &str,
    path: &std::path::Path,
    err: &dyn std::error::Error,
) -> Error {
    Error::Cgroup {
        action,
        id: id.to_owned(),
        path: path.to_owned(),
        reason: crate::error::chain(err),
    }
}
