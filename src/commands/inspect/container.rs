//! `berth inspect CONTAINER`: a container described with docker's keys and
//! shapes, from its record, its bundle's `config.json` and its image's
//! config. Fields other parts of berth fill in later (restart policies,
//! limits, networks) are docker's zero values here.

use berth_containers::{ContainerRecord, State, container_dir};
use berth_store::Store;
use berth_store::images;
use serde_json::{Map, Value, json};

/// docker's time for "never": Go's zero `time.Time`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The files berth binds into every container; docker lists them as paths,
/// not as mounts.
const MANAGED_FILES: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// The document `docker inspect` prints for a container.
pub fn document(store: &Store, record: &ContainerRecord) -> Value {
    let dir = container_dir(store, &record.id);
    // The bundle is berth's own file; a missing or unreadable one leaves the
    // fields it feeds empty rather than failing the whole inspect.
    let spec: Value = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let image = images::resolve(store, record.image_digest.as_str()).ok();
    let image_config = image
        .as_ref()
        .and_then(|s| images::inspect(store, s).ok())
        .map(|doc| doc["Config"].clone())
        .unwrap_or(Value::Null);
    let image_id = image
        .as_ref()
        .map(|s| s.image.id().to_string())
        .unwrap_or_default();
    let process = &spec["process"];
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let entrypoint = strings(&image_config["Entrypoint"]);
    let (entrypoint, cmd) = split_command(&record.command, &entrypoint);
    let user = match (&process["user"]["uid"], &process["user"]["gid"]) {
        // `-u 1000` is 1000 with group 0: docker shows what was asked.
        (Value::Number(uid), Value::Number(gid)) if uid.as_u64() != Some(0) => {
            if gid.as_u64() == Some(0) {
                uid.to_string()
            } else {
                format!("{uid}:{gid}")
            }
        }
        _ => image_config["User"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let hostname = spec["hostname"].as_str().unwrap_or_default();
    let limits = &record.resources;
    let shm_size = if limits.shm_size > 0 {
        limits.shm_size
    } else {
        67_108_864
    };
    let pids_limit = (limits.pids_limit != 0).then_some(limits.pids_limit);
    let ulimits = (!limits.ulimits.is_empty())
        .then(|| serde_json::to_value(&limits.ulimits).ok())
        .flatten();
    let ip_address = record
        .network
        .as_ref()
        .and_then(|e| e.ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let ports = port_bindings(record);
    let mounts: Vec<Value> = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["type"] == "bind"
                && !MANAGED_FILES.contains(&m["destination"].as_str().unwrap_or_default())
        })
        .map(|m| {
            let options = strings(&m["options"]);
            json!({
                "Type": "bind",
                "Source": m["source"],
                "Destination": m["destination"],
                "Mode": "",
                "RW": !options.iter().any(|o| o == "ro"),
                "Propagation": options
                    .iter()
                    .find(|o| o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave"))
                    .cloned()
                    .unwrap_or_else(|| "rprivate".into()),
            })
        })
        .collect();
    let binds: Vec<String> = mounts
        .iter()
        .map(|m| {
            let mode = if m["RW"] == true { "" } else { ":ro" };
            format!(
                "{}:{}{mode}",
                m["Source"].as_str().unwrap_or_default(),
                m["Destination"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let path = |name: &str| dir.join(name).display().to_string();
    json!({
        "Id": record.id,
        "Created": berth_store::oci::rfc3339(record.created),
        "Path": record.command.first().cloned().unwrap_or_default(),
        "Args": record.command.iter().skip(1).collect::<Vec<_>>(),
        "State": state(record),
        "Image": image_id,
        "ResolvConfPath": path("resolv.conf"),
        "HostnamePath": path("hostname"),
        "HostsPath": path("hosts"),
        "LogPath": path("container.log"),
        "Name": format!("/{}", record.name),
        "RestartCount": record.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": {
            "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": network_mode(record, &spec),
            "PortBindings": ports.clone(),
            "RestartPolicy": record.restart_policy,
            "AutoRemove": record.auto_remove,
            "Privileged": false,
            "ReadonlyRootfs": spec["root"]["readonly"].as_bool().unwrap_or(false),
            "ShmSize": shm_size,
            "Runtime": record.runtime.display().to_string(),
            "CpuShares": limits.cpu_shares,
            "Memory": limits.memory,
            "MemoryReservation": limits.memory_reservation,
            "NanoCpus": limits.nano_cpus,
            "CpuPeriod": limits.cpu_period,
            "CpuQuota": limits.cpu_quota,
            "CpusetCpus": limits.cpuset_cpus,
            "CpusetMems": limits.cpuset_mems,
            "MemorySwap": limits.memory_swap,
            "OomKillDisable": limits.oom_kill_disable,
            "PidsLimit": pids_limit,
            "Ulimits": ulimits,
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "MergedDir": path("rootfs"),
                "UpperDir": path("upper"),
                "WorkDir": path("work"),
            },
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": hostname,
            "Domainname": "",
            "User": user,
            "AttachStdin": false,
            "AttachStdout": !record.detached,
            "AttachStderr": !record.detached,
            "Tty": process["terminal"].as_bool().unwrap_or(false),
            "OpenStdin": false,
            "StdinOnce": false,
            // The runtime's HOSTNAME is not part of docker's Config.Env.
            "Env": strings(&process["env"])
                .into_iter()
                .filter(|e| *e != format!("HOSTNAME={hostname}"))
                .collect::<Vec<_>>(),
            "Cmd": cmd,
            "Image": record.image,
            "Volumes": image_config["Volumes"],
            "WorkingDir": process["cwd"].as_str().filter(|c| *c != "/").unwrap_or_default(),
            "Entrypoint": entrypoint,
            "OnBuild": Value::Null,
            "Labels": labels(&image_config["Labels"]),
            "StopSignal": record.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": ports,
            "SandboxKey": "",
            "Gateway": "",
            "IPAddress": ip_address,
            "IPPrefixLen": 0,
            "MacAddress": "",
            "Networks": {},
        },
    })
}

/// docker's `HostConfig.NetworkMode`: the CNI network's name, else `host`
/// (no network namespace of its own) or `none`.
fn network_mode(record: &ContainerRecord, spec: &Value) -> String {
    if let Some(endpoint) = &record.network {
        return endpoint.network.clone();
    }
    let own_namespace = spec["linux"]["namespaces"]
        .as_array()
        .is_some_and(|all| all.iter().any(|ns| ns["type"] == "network"));
    if own_namespace { "none" } else { "host" }.to_string()
}

/// docker's `PortBindings` (and `NetworkSettings.Ports`): the published
/// ports by `PORT/PROTO`.
fn port_bindings(record: &ContainerRecord) -> Value {
    let mut bindings = Map::new();
    for port in &record.ports {
        let key = format!(
            "{}/{}",
            port.container_port,
            match port.protocol {
                berth_containers::network::ports::Protocol::Tcp => "tcp",
                berth_containers::network::ports::Protocol::Udp => "udp",
            }
        );
        let entry = bindings.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(
                json!({"HostIp": port.host_ip.to_string(), "HostPort": port.host_port.to_string()}),
            );
        }
    }
    Value::Object(bindings)
}

/// docker's `State` object.
fn state(record: &ContainerRecord) -> Value {
    let (status, running, pid, exit_code, started, finished) = match record.state {
        State::Created => ("created", false, 0, 0, None, None),
        State::Running { pid, started, .. } if record.is_running() => {
            ("running", true, pid, 0, Some(started), None)
        }
        // The process is gone and its owner has not recorded the exit yet.
        State::Running { started, .. } => ("exited", false, 0, 0, Some(started), None),
        State::Exited {
            code,
            started,
            finished,
        } => ("exited", false, 0, code, Some(started), Some(finished)),
        State::Dead { finished } => ("dead", false, 0, 0, None, Some(finished)),
        State::Removing => ("removing", false, 0, 0, None, None),
        State::Restarting {
            code,
            started,
            finished,
            ..
        } => ("restarting", false, 0, code, Some(started), Some(finished)),
    };
    // The lifecycle's status: a running container may be paused (its freezer says so).
    let current = record.status();
    let paused = current == berth_containers::lifecycle::Status::Paused;
    let status = if paused { current.as_str() } else { status };
    let time = |secs: Option<i64>| secs.map_or(ZERO_TIME.to_string(), berth_store::oci::rfc3339);
    json!({
        "Status": status,
        "Running": running,
        "Paused": paused,
        "Restarting": matches!(record.state, State::Restarting { .. }),
        "OOMKilled": false,
        "Dead": matches!(record.state, State::Dead { .. }),
        "Pid": pid,
        "ExitCode": exit_code,
        "Error": "",
        "StartedAt": time(started),
        "FinishedAt": time(finished),
    })
}

/// The image's entrypoint when the command starts with it, and the rest as
/// `Cmd`; docker keeps the two apart, berth's record holds the joined argv.
fn split_command(command: &[String], entrypoint: &[String]) -> (Value, Value) {
    if !entrypoint.is_empty() && command.starts_with(entrypoint) {
        (json!(entrypoint), json!(&command[entrypoint.len()..]))
    } else {
        (Value::Null, json!(command))
    }
}

/// Labels as an object, `{}` when the image has none.
fn labels(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.clone()),
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_splits_into_entrypoint_and_cmd_as_docker_keeps_them() {
        let argv = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (command, entrypoint, want) in [
            (
                argv(&["sh", "-c", "x"]),
                argv(&[]),
                (Value::Null, json!(["sh", "-c", "x"])),
            ),
            (
                argv(&["/entry", "arg"]),
                argv(&["/entry"]),
                (json!(["/entry"]), json!(["arg"])),
            ),
            (
                argv(&["other"]),
                argv(&["/entry"]),
                (Value::Null, json!(["other"])),
            ),
        ] {
            assert_eq!(split_command(&command, &entrypoint), want, "{command:?}");
        }
    }
}
