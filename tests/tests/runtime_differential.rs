//! berth-runtime against Debian's runc on the same bundles: what the
//! container sees (hostname, ids, capabilities, no_new_privs, rlimits,
//! environment, cwd, mounts, devices) and the keys of the state JSON.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::bundle::Bundle;
use berth_e2e::require;
use runtime_support::{Runtime, unique_id};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Prints what the container sees, one section per `==name==` header.
const PROBE: &str = r#"
echo ==hostname==; hostname
echo ==id==; id
echo ==status==; grep -E '^(Cap|NoNewPrivs)' /proc/self/status
echo ==limits==; cat /proc/self/limits
echo ==env==; env | grep -v '^SHLVL=' | sort
echo ==cwd==; pwd
echo ==mounts==; while read src dst fstype opts rest; do echo "$dst $fstype ${opts%%,*}"; done < /proc/self/mounts
echo ==devices==; ls -l /dev | awk '{print $1, $5, $6, $NF}' | grep -v '^total'
echo ==namespaces==; ls /proc/self/ns
"#;

fn sections(output: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut current = String::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("==").and_then(|l| l.strip_suffix("==")) {
            current = name.to_owned();
            map.insert(current.clone(), String::new());
        } else if let Some(text) = map.get_mut(&current) {
            text.push_str(line);
            text.push('\n');
        }
    }
    map
}

fn run_with(runtime: &Path, root: &Path, bundle: &Path, id: &str) -> String {
    let out = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} run failed: {}",
        runtime.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn compare(adjust: impl Fn(&mut oci_spec::runtime::Spec) + Copy) {
    let rt = Runtime::new();
    let runc = require::program("runc", "runc");
    let runc_root = tempfile::tempdir().unwrap();
    let ours_bundle = Bundle::busybox_with(&["/bin/sh", "-c", PROBE], adjust);
    let runc_bundle = Bundle::busybox_with(&["/bin/sh", "-c", PROBE], adjust);
    let ours = sections(&run_with(
        &rt.bin,
        rt.root.path(),
        ours_bundle.path(),
        &unique_id("diff"),
    ));
    let theirs = sections(&run_with(
        &runc,
        runc_root.path(),
        runc_bundle.path(),
        &unique_id("diff-runc"),
    ));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the probe printed different sections"
    );
    for (name, text) in &theirs {
        assert_eq!(
            &ours[name], text,
            "section {name} differs (left: berth-runtime, right: runc)"
        );
    }
}

#[test]
fn default_bundle_looks_the_same_inside_as_under_runc() {
    compare(|_| {});
}

#[test]
fn user_cwd_env_rlimits_and_capabilities_match_runc() {
    use oci_spec::runtime::{Capability, PosixRlimitBuilder, PosixRlimitType, UserBuilder};
    compare(|spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_user(
            UserBuilder::default()
                .uid(1000u32)
                .gid(1000u32)
                .additional_gids(vec![10u32, 20])
                .build()
                .unwrap(),
        );
        process.set_cwd(PathBuf::from("/tmp"));
        let mut env = process.env().clone().unwrap();
        env.push("BERTH_DIFF=1 two words".to_owned());
        process.set_env(Some(env));
        process.set_rlimits(Some(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(512u64)
                .hard(2048u64)
                .build()
                .unwrap(),
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNproc)
                .soft(300u64)
                .hard(400u64)
                .build()
                .unwrap(),
        ]));
        let mut caps = process.capabilities().clone().unwrap();
        let mut bounding = caps.bounding().clone().unwrap();
        bounding.insert(Capability::NetAdmin);
        caps.set_bounding(Some(bounding.clone()));
        caps.set_permitted(Some(bounding.clone()));
        caps.set_effective(Some(bounding));
        process.set_capabilities(Some(caps));
        process.set_no_new_privileges(Some(false));
        spec.set_process(Some(process));
        spec.set_hostname(Some("diff-host".to_owned()));
    });
}

#[test]
fn state_json_has_the_same_keys_as_runc() {
    let rt = Runtime::new();
    let runc = require::program("runc", "runc");
    let runc_root = tempfile::tempdir().unwrap();
    let bundle = Bundle::busybox(&["/bin/sleep", "30"]);
    let keys = |runtime: &PathBuf, root: &Path, id: &str| -> Vec<String> {
        let status = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["create", "--bundle"])
            .arg(bundle.path())
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{} create failed", runtime.display());
        let out = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["state", id])
            .output()
            .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", id])
            .status();
        let mut keys: Vec<String> = state.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let ours = keys(&rt.bin, rt.root.path(), &unique_id("keys"));
    let theirs = keys(&runc, runc_root.path(), &unique_id("keys-runc"));
    assert_eq!(ours, theirs);
}
