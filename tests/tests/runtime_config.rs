//! The runtime-spec config is applied: every hook kind with the state on its
//! stdin, sysctl, oom_score_adj, hostname and domainname, masked and
//! read-only paths, no_new_privs, devices, namespaces joined by path, and a
//! container's cgroup on a unified (v2) host.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::bundle::Bundle;
use oci_spec::runtime::{
    Capability, HookBuilder, HooksBuilder, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespace, LinuxNamespaceType,
};
use runtime_support::{Runtime, unique_id};
use std::collections::HashMap;

#[test]
fn every_hook_kind_runs_with_the_state_on_stdin() {
    let rt = Runtime::new();
    let out = tempfile::tempdir().unwrap();
    let hook = |kind: &str| {
        // Each hook saves the state it got on stdin; `cat` comes from the
        // host, since hooks run in the runtime's namespace.
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("cat > {}/{kind}.json", out.path().display()),
            ])
            .build()
            .unwrap()
    };
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        spec.set_hooks(Some(
            HooksBuilder::default()
                .prestart(vec![hook("prestart")])
                .create_runtime(vec![hook("createRuntime")])
                .create_container(vec![hook("createContainer")])
                .start_container(vec![hook("startContainer")])
                .poststart(vec![hook("poststart")])
                .poststop(vec![hook("poststop")])
                .build()
                .unwrap(),
        ));
    });
    // createContainer and startContainer hooks run inside the container's
    // mount namespace: give them the output directory at the same path.
    let inside = bundle.rootfs().join(out.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    let id = unique_id("hooks");
    let result = rt.output(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for kind in kinds {
        // createContainer runs in the container's mount namespace before
        // pivot_root and startContainer after it, so their files may land on
        // either side of the rootfs.
        let name = format!("{kind}.json");
        let text = [out.path().join(&name), inside.join(&name)]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_else(|| panic!("the {kind} hook did not run"));
        let state: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the {kind} hook got no state JSON ({e}): {text:?}"));
        assert_eq!(state["id"], id.as_str(), "{kind}: {state}");
        assert!(
            state["bundle"]
                .as_str()
                .unwrap()
                .ends_with(bundle.path().file_name().unwrap().to_str().unwrap()),
            "{kind}: {state}"
        );
    }
    rt.assert_gone(&id);
}

#[test]
fn sysctl_oom_names_paths_privileges_and_devices_are_applied() {
    let rt = Runtime::new();
    let script = "\
        echo sysctl=$(cat /proc/sys/net/ipv4/ip_forward); \
        echo oom=$(cat /proc/self/oom_score_adj); \
        echo host=$(hostname) domain=$(cat /proc/sys/kernel/domainname); \
        echo masked=$(cat /etc/hostname | wc -c); \
        touch /proc/sys/kernel/berth 2>/dev/null && echo writable || echo readonly; \
        grep NoNewPrivs /proc/self/status | tr -d '\t '; \
        ls -ln /dev/berth-null | awk '{print \"device\", $1, $5, $6}'";
    let bundle = Bundle::busybox_with(&["/bin/sh", "-c", script], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_oom_score_adj(Some(123));
        process.set_no_new_privileges(Some(true));
        spec.set_process(Some(process));
        spec.set_domainname(Some("berth.example".to_string()));
        let mut linux = spec.linux().clone().unwrap();
        let mut masked = linux.masked_paths().clone().unwrap_or_default();
        masked.push("/etc/hostname".to_string());
        linux.set_masked_paths(Some(masked));
        linux.set_sysctl(Some(HashMap::from([(
            "net.ipv4.ip_forward".to_string(),
            "1".to_string(),
        )])));
        linux.set_devices(Some(vec![
            LinuxDeviceBuilder::default()
                .path("/dev/berth-null")
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .file_mode(0o666u32)
                .build()
                .unwrap(),
        ]));
        spec.set_linux(Some(linux));
    });
    let id = unique_id("config");
    let out = rt.output(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "sysctl=1\n",
        "oom=123\n",
        "host=berth-test domain=berth.example\n",
        "masked=0\n",
        "readonly\n",
        "NoNewPrivs:1\n",
        "device crw-rw-rw- 1, 3\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    rt.assert_gone(&id);
}

#[test]
fn namespaces_are_joined_by_path() {
    let rt = Runtime::new();
    let first = Bundle::busybox(&["/bin/sh", "-c", "hostname > /dev/null; sleep 60"]);
    let owner = unique_id("ns-owner");
    rt.run_detached(&owner, first.path());
    let pid = rt.state(&owner)["pid"].as_i64().unwrap();
    // The second container joins the first one's UTS and network namespaces.
    let joiner = Bundle::busybox_with(
        &["/bin/sh", "-c", "hostname; readlink /proc/self/ns/net"],
        |spec| {
            spec.set_hostname(None);
            let mut linux = spec.linux().clone().unwrap();
            let mut namespaces: Vec<LinuxNamespace> = linux
                .namespaces()
                .clone()
                .unwrap()
                .into_iter()
                .filter(|n| {
                    !matches!(
                        n.typ(),
                        LinuxNamespaceType::Uts | LinuxNamespaceType::Network
                    )
                })
                .collect();
            for (kind, name) in [
                (LinuxNamespaceType::Uts, "uts"),
                (LinuxNamespaceType::Network, "net"),
            ] {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(kind);
                ns.set_path(Some(format!("/proc/{pid}/ns/{name}").into()));
                namespaces.push(ns);
            }
            linux.set_namespaces(Some(namespaces));
            spec.set_linux(Some(linux));
        },
    );
    let id = unique_id("ns-joiner");
    let out = rt.output(&["run", "--bundle", joiner.path().to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let owner_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("berth-test\n{}\n", owner_net.display())
    );
    rt.ok(&["delete", "--force", &owner]);
    rt.assert_gone(&owner);
    rt.assert_gone(&id);
}

#[test]
fn init_joins_a_new_session_keyring_unless_told_not_to() {
    let rt = Runtime::new();
    // /proc/keys is masked by default; unmask it to look.
    let bundle = Bundle::busybox_with(&["/bin/sh", "-c", "cat /proc/keys"], |spec| {
        let mut linux = spec.linux().clone().unwrap();
        let mut masked = linux.masked_paths().clone().unwrap_or_default();
        masked.retain(|p| p != "/proc/keys");
        linux.set_masked_paths(Some(masked));
        spec.set_linux(Some(linux));
    });
    let id = unique_id("keyring");
    let out = rt.output(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = String::from_utf8_lossy(&out.stdout);
    assert!(
        keys.contains(&format!("_ses.{id}")),
        "no new session keyring:\n{keys}"
    );

    let id = unique_id("keyring-kept");
    let logs = tempfile::tempdir().unwrap();
    rt.create(&id, bundle.path(), logs.path(), &["--no-new-keyring"]);
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let keys = runtime_support::wait_for_content(&logs.path().join(format!("{id}.out")), "keyring");
    assert!(
        !keys.contains(&format!("_ses.{id}")),
        "--no-new-keyring made one:\n{keys}"
    );
    rt.ok(&["delete", &id]);
    rt.assert_gone(&id);
}

/// On a unified (cgroup v2 only) host the container gets its own cgroup in
/// the one hierarchy, and `delete` removes it. This hybrid machine looks
/// unified to the runtime when its cgroup2 hierarchy is mounted over
/// `/sys/fs/cgroup` in a private mount namespace; production hosts are
/// mostly unified.
#[test]
fn a_unified_cgroup_v2_host_gets_the_container_its_own_cgroup() {
    let rt = Runtime::new();
    let unshare = berth_e2e::require::program("unshare", "util-linux");
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    assert!(
        unified.join("cgroup.procs").exists(),
        "this test needs the hybrid host's cgroup2 hierarchy at {}",
        unified.display()
    );
    let on_v2 = |args: &[&str]| {
        let out = std::process::Command::new(&unshare)
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\"")
            .arg("sh")
            .arg(&rt.bin)
            .arg("--root")
            .arg(rt.root.path())
            .args(args)
            // The container inherits stdio: a pipe would stay open while it runs.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(out.success(), "berth-runtime {args:?} on cgroup v2: {out}");
    };
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("v2");
    on_v2(&[
        "run",
        "--detach",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let cgroups = berth_e2e::cgroups::dirs_naming(&id);
    assert_eq!(
        cgroups.len(),
        1,
        "one cgroup, in the unified hierarchy: {cgroups:?}"
    );
    assert!(cgroups[0].starts_with(unified), "{cgroups:?}");
    let procs = std::fs::read_to_string(cgroups[0].join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|line| line == pid.to_string()),
        "the init process {pid} is not in {}: {procs:?}",
        cgroups[0].display()
    );
    on_v2(&["delete", "--force", &id]);
    rt.assert_gone(&id);
}

/// Runs `script` in a busybox container with CAP_MKNOD and the device cgroup
/// rules Docker and runc apply (deny all, then the standard allow list, then
/// `extra`), on this host seen as unified (cgroup v2 only) as in the test
/// above, and returns what the script printed.
fn run_with_device_rules_on_v2(script: &str, extra: &[LinuxDeviceCgroup]) -> String {
    let rt = Runtime::new();
    let unshare = berth_e2e::require::program("unshare", "util-linux");
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    assert!(
        unified.join("cgroup.procs").exists(),
        "this test needs the hybrid host's cgroup2 hierarchy at {}",
        unified.display()
    );
    let rule = |allow: bool, typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut rule = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(major) = major {
            rule = rule.major(major);
        }
        if let Some(minor) = minor {
            rule = rule.minor(minor);
        }
        rule.build().unwrap()
    };
    // runc's default (libcontainer/specconv AllowedDevices), as berth writes it.
    let mut rules = vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        rule(true, LinuxDeviceType::C, None, None, "m"),
        rule(true, LinuxDeviceType::B, None, None, "m"),
    ];
    for (major, minor) in [(1, Some(3)), (1, Some(5)), (1, Some(7)), (1, Some(8))]
        .into_iter()
        .chain([(1, Some(9)), (5, Some(0)), (5, Some(1)), (5, Some(2))])
        .chain([(136, None), (10, Some(200))])
    {
        rules.push(rule(true, LinuxDeviceType::C, Some(major), minor, "rwm"));
    }
    rules.extend_from_slice(extra);
    let bundle = Bundle::busybox_with(&["/bin/sh", "-c", script], |spec| {
        let mut process = spec.process().clone().unwrap();
        let mut caps = process.capabilities().clone().unwrap();
        let mut bounding = caps.bounding().clone().unwrap();
        bounding.insert(Capability::Mknod);
        caps.set_bounding(Some(bounding.clone()));
        caps.set_permitted(Some(bounding.clone()));
        caps.set_effective(Some(bounding));
        process.set_capabilities(Some(caps));
        spec.set_process(Some(process));
        let mut linux = spec.linux().clone().unwrap();
        let mut resources = linux.resources().clone().unwrap_or_default();
        resources.set_devices(Some(rules));
        linux.set_resources(Some(resources));
        spec.set_linux(Some(linux));
    });
    let id = unique_id("v2dev");
    let out = std::process::Command::new(&unshare)
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\"")
        .arg("sh")
        .arg(&rt.bin)
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth-runtime run on cgroup v2: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    rt.assert_gone(&id);
    String::from_utf8(out.stdout).unwrap()
}

/// Creates a node for the host's first loop device (block 7:0) and reads it,
/// then uses /dev/null and /dev/zero.
const READ_A_HOST_BLOCK_DEVICE: &str = "\
    mknod /x b 7 0 && echo mknod=ok; \
    if head -c1 /x >/dev/null 2>/err; then echo loop=read; else echo \"loop=$(cat /err)\"; fi; \
    echo hi >/dev/null && echo null=$(head -c1 /dev/zero | wc -c)";

/// On a unified host the device rules hold as they do on v1: with CAP_MKNOD
/// a container may create a node for a host disk but not open it, while the
/// standard devices still work. cgroup v2 has no device files; the runtime
/// must attach an eBPF device program to the container's cgroup, as runc does.
#[test]
fn a_unified_cgroup_v2_host_denies_devices_outside_the_allow_list() {
    let text = run_with_device_rules_on_v2(READ_A_HOST_BLOCK_DEVICE, &[]);
    for want in [
        "mknod=ok\n",
        "loop=head: /x: Operation not permitted\n",
        "null=1\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// An allow rule for one device opens exactly that one on a unified host.
#[test]
fn a_unified_cgroup_v2_host_allows_a_device_the_rules_allow() {
    let read_loop0 = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::B)
        .major(7)
        .minor(0)
        .access("r")
        .build()
        .unwrap();
    let text = run_with_device_rules_on_v2(READ_A_HOST_BLOCK_DEVICE, &[read_loop0]);
    for want in ["mknod=ok\n", "loop=read\n", "null=1\n"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
