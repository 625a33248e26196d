//! `spec`: the default `config.json` of a new bundle.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroupBuilder, Spec};
use std::path::Path;

/// The default spec runc writes: `sh` on a terminal in a `rootfs` directory,
/// with the usual namespaces, mounts, masked paths and a small capability set.
/// `rootless` maps the given uid and gid to root in a user namespace and
/// drops the network namespace and resource limits.
pub fn default_spec(rootless: Option<(u32, u32)>) -> Spec {
    let mut spec = match rootless {
        Some((uid, gid)) => Spec::rootless(uid, gid),
        None => Spec::default(),
    };
    spec.set_hostname(Some("berth".to_owned()));
    // runc's default has no inheritable capabilities since CVE-2022-29162:
    // with them, a program the process execs could regain them.
    if let Some(mut process) = spec.process().clone() {
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            process.set_capabilities(Some(caps));
        }
        spec.set_process(Some(process));
    }
    // runc's default device policy: deny every device, so that the device
    // controller allows only what the runtime adds (the standard devices and
    // linux.devices). The rootless spec has no resources, as runc's.
    if let Some(mut linux) = spec.linux().clone()
        && let Some(mut resources) = linux.resources().clone()
    {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build();
        if let Ok(deny_all) = deny_all {
            resources.set_devices(Some(vec![deny_all]));
            linux.set_resources(Some(resources));
            spec.set_linux(Some(linux));
        }
    }
    spec
}

/// Writes the default spec as `config.json` in `bundle`, refusing to
/// overwrite one that exists.
pub fn write_default(bundle: &Path, rootless: Option<(u32, u32)>) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::InvalidInput(format!(
            "{} exists; remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_vec_pretty(&default_spec(rootless))
        .map_err(|e| Error::InvalidInput(format!("encoding the default spec: {e}")))?;
    std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceType;

    #[test]
    fn writes_once_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        write_default(dir.path(), None).unwrap();
        let spec = Spec::load(dir.path().join("config.json")).unwrap();
        assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("rootfs"));
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["sh".to_owned()]
        );
        assert!(write_default(dir.path(), None).is_err());
    }

    #[test]
    fn default_spec_has_no_inheritable_capabilities_and_denies_devices() {
        let spec = default_spec(None);
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert!(caps.inheritable().is_none());
        assert!(caps.bounding().as_ref().is_some_and(|b| !b.is_empty()));
        let value = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            value["linux"]["resources"]["devices"],
            serde_json::json!([{"allow": false, "access": "rwm"}])
        );
    }

    #[test]
    fn rootless_spec_maps_the_user_and_has_no_network_namespace() {
        let spec = default_spec(Some((1000, 1000)));
        let linux = spec.linux().as_ref().unwrap();
        let kinds: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(kinds.contains(&LinuxNamespaceType::User));
        assert!(!kinds.contains(&LinuxNamespaceType::Network));
        assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 1000);
    }
}
