//! The container state as runc reports it from `state` and `list`.

use crate::error::{Error, Result};
use libcontainer::container::{Container, ContainerStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// runc's state document: what `state` prints and each element of `list --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The runtime-spec version of the bundle's config.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The init process id, 0 once the container stopped.
    pub pid: i32,
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// The absolute bundle directory.
    pub bundle: PathBuf,
    /// The absolute root filesystem directory.
    pub rootfs: PathBuf,
    /// When the container was created, RFC 3339 with nanoseconds.
    pub created: String,
    /// The name of the user owning the state (empty in `state`, as runc leaves it).
    pub owner: String,
    /// The config's annotations, omitted when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// runc's lowercase name of a status.
pub fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The two fields of a bundle's `config.json` the state reports.
#[derive(Debug, Deserialize)]
struct BundleHead {
    #[serde(rename = "ociVersion", default)]
    oci_version: String,
    #[serde(default)]
    root: Option<BundleRoot>,
}

#[derive(Debug, Deserialize)]
struct BundleRoot {
    path: PathBuf,
}

/// Builds the state document of a loaded container. The bundle's config is
/// read only for its version and rootfs; a bundle removed since creation leaves
/// them empty instead of failing, as the state itself is still valid.
pub(crate) fn of_container(container: &Container) -> State {
    let bundle = container.bundle().clone();
    let head = read_bundle_head(&bundle);
    let (oci_version, rootfs) = match head {
        Some(head) => {
            let rootfs = head
                .root
                .map(|root| {
                    if root.path.is_absolute() {
                        root.path
                    } else {
                        bundle.join(root.path)
                    }
                })
                .unwrap_or_default();
            (head.oci_version, rootfs)
        }
        None => (String::new(), PathBuf::new()),
    };
    let status = container.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => container.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    let created = container
        .created()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default();
    State {
        oci_version,
        id: container.id().to_owned(),
        pid,
        status: status_name(status).to_owned(),
        bundle,
        rootfs,
        created,
        owner: String::new(),
        annotations: container
            .state
            .annotations
            .clone()
            .map(|a| a.into_iter().collect())
            .unwrap_or_default(),
    }
}

fn read_bundle_head(bundle: &Path) -> Option<BundleHead> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The user name owning `path`, or its numeric uid when `/etc/passwd` has none.
pub(crate) fn owner_of(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(path)
        .map_err(|e| Error::io("reading", path, e))?
        .uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let line_uid = fields.nth(1)?;
        (line_uid.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    });
    Ok(name.unwrap_or_else(|| format!("#{uid}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json_has_runc_keys_and_omits_empty_annotations() {
        let state = State {
            oci_version: "1.0.2".into(),
            id: "c1".into(),
            pid: 0,
            status: "stopped".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2024-01-01T00:00:00.123456789Z".into(),
            owner: String::new(),
            annotations: BTreeMap::new(),
        };
        let value = serde_json::to_value(&state).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bundle",
                "created",
                "id",
                "ociVersion",
                "owner",
                "pid",
                "rootfs",
                "status"
            ]
        );
        let mut annotated = state;
        annotated.annotations.insert("a".into(), "b".into());
        let value = serde_json::to_value(&annotated).unwrap();
        assert_eq!(value["annotations"]["a"], "b");
    }
}
