//! `RUN --network` as BuildKit has it: `none` gives a step only loopback,
//! `host` and the default the host's interfaces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::BuildEnv;
use std::fs;

/// The interface of the host's default IPv4 route, which a step on the
/// host's network must see.
fn default_route_interface() -> String {
    let routes = fs::read_to_string("/proc/net/route").unwrap();
    routes
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&"00000000"))
        .map(|fields| fields[0].to_string())
        .expect("the host has no default IPv4 route, which this test needs")
}

/// The interfaces a step printed after `marker`.
fn interfaces_after(progress: &str, marker: &str) -> Vec<String> {
    let line = progress
        .lines()
        .find_map(|l| l.split_once(&format!("{marker}:")).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no line with {marker}: in\n{progress}"));
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn run_network_none_sees_only_loopback_and_host_and_default_see_the_hosts_interfaces() {
    let uplink = default_route_interface();
    let env = BuildEnv::new();
    // /proc/net/dev lists the interfaces of the step's network namespace;
    // the marker is put together by the shell, so that the progress line
    // echoing the step's command does not hold it.
    let list = "$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')";
    env.write(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             RUN --network=none m=none; echo \"mode-$m: {list}\"\n\
             RUN --network=host m=host; echo \"mode-$m: {list}\"\n\
             RUN m=default; echo \"mode-$m: {list}\"\n\
             RUN --network=default m=explicit-default; echo \"mode-$m: {list}\"\n"
        ),
    );
    let (_, progress) = env.build_ok(&["-t", "net"]);
    assert_eq!(interfaces_after(&progress, "mode-none"), vec!["lo"]);
    for mode in ["mode-host", "mode-default", "mode-explicit-default"] {
        let seen = interfaces_after(&progress, mode);
        assert!(
            seen.contains(&uplink) && seen.contains(&"lo".to_string()),
            "{mode}: {seen:?} lacks the host's {uplink}"
        );
    }
}
