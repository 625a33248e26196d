//! A tight client of the CNI exec protocol (ADD, DEL, CHECK, VERSION): each
//! plugin of a `.conflist` is executed with the `CNI_*` environment and its
//! configuration on standard input (`name`, `cniVersion`, `prevResult`, and
//! the `runtimeConfig` its `capabilities` ask for), as libcni does it.
//!
//! The Rust crates were weighed: `cni-plugin` is for writing plugins, not
//! running them; `rust-cni` is an async port of libcni that pulls in tokio
//! and is little kept. The protocol is an exec with a JSON document in and
//! out, so berth speaks it itself.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most output a plugin may write before berth gives up on it.
pub const MAX_OUTPUT: u64 = 1024 * 1024;

/// How long a plugin may run.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The Debian package that provides the standard plugins.
pub const PLUGINS_PACKAGE: &str = "containernetworking-plugins";

/// The directory plugins come from unless told otherwise.
pub const DEFAULT_CNI_PATH: &str = "/usr/lib/cni";

/// Errors of running CNI plugins.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// No directory of the CNI path holds the plugin.
    #[error(
        "the CNI plugin '{plugin}' is not in the CNI path {}\nhint: install the Debian package {PLUGINS_PACKAGE}, or point --cni-path (BERTH_CNI_PATH) at a directory that holds it",
        path_list(.path)
    )]
    MissingPlugin {
        /// The plugin's type.
        plugin: String,
        /// The directories searched.
        path: Vec<PathBuf>,
    },
    /// The plugin could not be executed or talked to.
    #[error("running the CNI plugin {}", .plugin.display())]
    Exec {
        /// The plugin binary.
        plugin: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plugin reported an error.
    #[error("the CNI plugin '{plugin}' failed {command} (code {code}): {msg}{}", details_suffix(.details))]
    Plugin {
        /// The plugin's type.
        plugin: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// The CNI error code.
        code: u64,
        /// The plugin's message.
        msg: String,
        /// The plugin's details.
        details: String,
    },
    /// The plugin did not finish in time.
    #[error("the CNI plugin '{plugin}' did not finish {command} within {}s; it was killed", .timeout.as_secs())]
    Timeout {
        /// The plugin's type.
        plugin: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// The plugin wrote more than [`MAX_OUTPUT`] bytes.
    #[error("the CNI plugin '{plugin}' wrote more than {MAX_OUTPUT} bytes of output")]
    OutputTooLarge {
        /// The plugin's type.
        plugin: String,
    },
    /// The plugin's output is not the JSON the protocol asks for.
    #[error("the CNI plugin '{plugin}' wrote output that is not a CNI result: {reason}")]
    BadOutput {
        /// The plugin's type.
        plugin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The network configuration is not a usable `.conflist`.
    #[error("the network configuration '{name}' is invalid: {reason}")]
    BadConfig {
        /// The network's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn path_list(path: &[PathBuf]) -> String {
    path.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

/// The operations of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Attach.
    Add,
    /// Detach; idempotent.
    Del,
    /// Verify an attachment.
    Check,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
            Op::Check => "CHECK",
        }
    }
}

/// What the protocol needs to know of the container.
#[derive(Debug, Clone)]
pub struct Runtime<'a> {
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS`: the path of its network namespace.
    pub netns: &'a Path,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// The directories plugins are looked up in (`CNI_PATH`).
    pub cni_path: &'a [PathBuf],
    /// The `runtimeConfig` values, by capability (e.g. `portMappings`);
    /// each plugin gets those its `capabilities` name.
    pub capabilities: &'a Map<String, Value>,
    /// How long each plugin may run ([`PLUGIN_TIMEOUT`]).
    pub timeout: Duration,
}

/// The CNI path from `--cni-path` or `BERTH_CNI_PATH` (colon-separated),
/// else [`DEFAULT_CNI_PATH`].
pub fn cni_path(flag: Option<&str>) -> Vec<PathBuf> {
    let text = flag
        .map(str::to_owned)
        .or_else(|| std::env::var("BERTH_CNI_PATH").ok())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_CNI_PATH.to_owned());
    text.split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Finds the plugin `kind` in the CNI path.
pub fn find_plugin(kind: &str, cni_path: &[PathBuf]) -> Result<PathBuf, CniError> {
    let missing = || CniError::MissingPlugin {
        plugin: kind.to_owned(),
        path: cni_path.to_vec(),
    };
    // A type is a file name, never a path.
    if kind.is_empty() || kind.contains('/') || kind == "." || kind == ".." {
        return Err(missing());
    }
    cni_path
        .iter()
        .map(|dir| dir.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(missing)
}

/// Checks that every plugin of `conflist` is in the CNI path.
pub fn check_plugins(conflist: &Value, cni_path: &[PathBuf]) -> Result<(), CniError> {
    for plugin in plugins(conflist)? {
        find_plugin(plugin_type(plugin), cni_path)?;
        if let Some(ipam) = plugin["ipam"]["type"].as_str() {
            find_plugin(ipam, cni_path)?;
        }
    }
    Ok(())
}

fn conflist_name(conflist: &Value) -> String {
    conflist["name"].as_str().unwrap_or_default().to_owned()
}

fn plugins(conflist: &Value) -> Result<&Vec<Value>, CniError> {
    let bad = |reason: &str| CniError::BadConfig {
        name: conflist_name(conflist),
        reason: reason.to_owned(),
    };
    if conflist["name"].as_str().unwrap_or_default().is_empty() {
        return Err(bad("it has no name"));
    }
    let plugins = conflist["plugins"]
        .as_array()
        .ok_or_else(|| bad("it has no plugins list"))?;
    if plugins.is_empty() {
        return Err(bad("its plugins list is empty"));
    }
    if plugins.iter().any(|p| p["type"].as_str().is_none()) {
        return Err(bad("a plugin has no type"));
    }
    Ok(plugins)
}

fn plugin_type(plugin: &Value) -> &str {
    plugin["type"].as_str().unwrap_or_default()
}

/// The configuration a plugin gets on standard input.
pub fn plugin_config(
    conflist: &Value,
    plugin: &Value,
    prev_result: Option<&Value>,
    capabilities: &Map<String, Value>,
) -> Value {
    let mut config = plugin.as_object().cloned().unwrap_or_default();
    config.insert("name".into(), conflist["name"].clone());
    config.insert(
        "cniVersion".into(),
        conflist
            .get("cniVersion")
            .cloned()
            .unwrap_or_else(|| "1.0.0".into()),
    );
    if let Some(prev) = prev_result {
        config.insert("prevResult".into(), prev.clone());
    }
    let mut runtime_config = Map::new();
    if let Some(wanted) = plugin["capabilities"].as_object() {
        for (capability, on) in wanted {
            if on.as_bool() == Some(true)
                && let Some(value) = capabilities.get(capability)
            {
                runtime_config.insert(capability.clone(), value.clone());
            }
        }
    }
    if !runtime_config.is_empty() {
        config.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    Value::Object(config)
}

/// Runs `op` through every plugin of `conflist`: ADD in order, each plugin
/// getting the previous one's result; DEL in reverse order and CHECK in
/// order, each getting `prev_result` (the ADD's result, when known).
/// Returns the final result (ADD), or `prev_result`. `progress` hears of
/// each ADD result as it comes, so a caller killed in the middle has
/// recorded what DEL needs (the firewall plugin removes its rules only by
/// the addresses of the result it is given).
pub fn exec(
    op: Op,
    conflist: &Value,
    runtime: &Runtime<'_>,
    prev_result: Option<&Value>,
    progress: &mut dyn FnMut(&Value),
) -> Result<Option<Value>, CniError> {
    let plugins = plugins(conflist)?;
    let mut result = prev_result.cloned();
    let ordered: Vec<&Value> = match op {
        Op::Del => plugins.iter().rev().collect(),
        Op::Add | Op::Check => plugins.iter().collect(),
    };
    // DEL goes through every plugin even when one fails, so the others
    // (the bridge's address lease among them) are still released; the first
    // failure is reported.
    let mut first_failure = None;
    for plugin in ordered {
        let input = plugin_config(conflist, plugin, result.as_ref(), runtime.capabilities);
        let output = match run_plugin(op, plugin_type(plugin), &input, runtime) {
            Ok(output) => output,
            Err(e) if op == Op::Del => {
                first_failure.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        if op == Op::Add {
            let output = output.ok_or_else(|| CniError::BadOutput {
                plugin: plugin_type(plugin).to_owned(),
                reason: "ADD gave no result".into(),
            })?;
            progress(&output);
            result = Some(output);
        }
    }
    match first_failure {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

/// Executes one plugin and returns its parsed output (`None` when it wrote
/// nothing, as DEL and CHECK may).
fn run_plugin(
    op: Op,
    kind: &str,
    input: &Value,
    runtime: &Runtime<'_>,
) -> Result<Option<Value>, CniError> {
    let binary = find_plugin(kind, runtime.cni_path)?;
    let exec_err = |source| CniError::Exec {
        plugin: binary.clone(),
        source,
    };
    let mut child = Command::new(&binary)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("CNI_COMMAND", op.name())
        .env("CNI_CONTAINERID", runtime.container_id)
        .env("CNI_NETNS", runtime.netns)
        .env("CNI_IFNAME", runtime.ifname)
        .env("CNI_PATH", path_list(runtime.cni_path))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .map_err(exec_err)?;
    let stdin_text = input.to_string();
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(stdin_text.as_bytes());
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || bounded_read(stdout));
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || bounded_read(stderr));
    let deadline = Instant::now() + runtime.timeout;
    let status = loop {
        match child.try_wait().map_err(exec_err)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                // SAFETY: kill has no memory-safety preconditions; the group
                // is the plugin's own, not yet reaped.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(CniError::Timeout {
                    plugin: kind.to_owned(),
                    command: op.name(),
                    timeout: runtime.timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    // A child the plugin left behind could hold its output open forever:
    // the plugin's process group goes before its output is read to the end.
    // SAFETY: kill has no memory-safety preconditions; the group is the
    // plugin's own (the leader was reaped a moment ago).
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = writer.join();
    let output = reader.join().unwrap_or_default();
    let errors = err_reader.join().unwrap_or_default();
    if output.len() as u64 > MAX_OUTPUT {
        return Err(CniError::OutputTooLarge {
            plugin: kind.to_owned(),
        });
    }
    if !status.success() {
        return Err(plugin_error(kind, op, &output, &errors));
    }
    parse_output(kind, &output)
}

/// Reads at most one byte more than [`MAX_OUTPUT`], then closes the pipe,
/// so a plugin that floods it fails on its next write instead of running on.
fn bounded_read(stream: Option<impl Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(stream) = stream {
        let _ = stream.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
    }
    buf
}

/// The error a failed plugin reports: its JSON `msg` and `details`, else
/// what it wrote to its error output.
pub fn plugin_error(kind: &str, op: Op, output: &[u8], errors: &[u8]) -> CniError {
    #[derive(Deserialize)]
    struct Reported {
        #[serde(default)]
        code: u64,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    let (code, msg, details) = match serde_json::from_slice::<Reported>(output) {
        Ok(r) if !r.msg.is_empty() => (r.code, r.msg, r.details),
        _ => {
            let text = String::from_utf8_lossy(if errors.is_empty() { output } else { errors });
            (0, clip(text.trim()), String::new())
        }
    };
    CniError::Plugin {
        plugin: kind.to_owned(),
        command: op.name(),
        code,
        msg: clip(&msg),
        details: clip(&details),
    }
}

/// Cuts a message a plugin wrote to a length fit for one error line.
fn clip(text: &str) -> String {
    const MAX: usize = 512;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Parses a successful plugin's output: a JSON object, or nothing.
pub fn parse_output(kind: &str, output: &[u8]) -> Result<Option<Value>, CniError> {
    if output.len() as u64 > MAX_OUTPUT {
        return Err(CniError::OutputTooLarge {
            plugin: kind.to_owned(),
        });
    }
    if output.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(output) {
        Ok(value @ Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(CniError::BadOutput {
            plugin: kind.to_owned(),
            reason: "it is not a JSON object".into(),
        }),
        Err(e) => Err(CniError::BadOutput {
            plugin: kind.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// The addresses a CNI result gives the container's interface.
pub fn result_addresses(result: &Value) -> Vec<(IpAddr, u8)> {
    #[derive(Deserialize)]
    struct Ip {
        address: String,
    }
    let ips: Vec<Ip> = result
        .get("ips")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    ips.iter()
        .filter_map(|ip| {
            let (addr, prefix) = ip.address.split_once('/')?;
            Some((addr.parse().ok()?, prefix.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_plugin_gets_name_version_prev_result_and_its_capabilities() {
        let conflist = json!({"cniVersion": "1.0.0", "name": "net1", "plugins": [
            {"type": "bridge"},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}},
        ]});
        let caps: Map<String, Value> =
            serde_json::from_value(json!({"portMappings": [{"hostPort": 8080}], "bandwidth": {}}))
                .unwrap();
        let first = plugin_config(&conflist, &conflist["plugins"][0], None, &caps);
        assert_eq!(
            first,
            json!({"type": "bridge", "name": "net1", "cniVersion": "1.0.0"})
        );
        let prev = json!({"ips": []});
        let second = plugin_config(&conflist, &conflist["plugins"][1], Some(&prev), &caps);
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080}]})
        );
    }

    #[test]
    fn results_and_errors_parse_and_hostile_output_is_refused() {
        let result = br#"{"cniVersion":"1.0.0","ips":[{"address":"10.89.3.2/24","gateway":"10.89.3.1","interface":1},{"address":"junk"}]}"#;
        let value = parse_output("bridge", result).unwrap().unwrap();
        assert_eq!(
            result_addresses(&value),
            vec![("10.89.3.2".parse().unwrap(), 24)]
        );
        assert_eq!(parse_output("bridge", b"  \n").unwrap(), None);
        for bad in [&b"[1,2]"[..], b"not json", b"{\"ips\": "] {
            assert!(
                matches!(parse_output("x", bad), Err(CniError::BadOutput { .. })),
                "{bad:?}"
            );
        }
        let huge = vec![b' '; MAX_OUTPUT as usize + 1];
        assert!(matches!(
            parse_output("x", &huge),
            Err(CniError::OutputTooLarge { .. })
        ));
        let e = plugin_error(
            "bridge",
            Op::Add,
            br#"{"code":7,"msg":"failed to set bridge addr","details":"exists"}"#,
            b"",
        );
        assert_eq!(
            e.to_string(),
            "the CNI plugin 'bridge' failed ADD (code 7): failed to set bridge addr (exists)"
        );
        let long = "x".repeat(10_000);
        let e = plugin_error("bridge", Op::Del, b"", long.as_bytes());
        assert!(e.to_string().len() < 700, "{e}");
    }

    #[test]
    fn a_missing_plugin_names_itself_and_the_debian_package() {
        let dir = tempfile::tempdir().unwrap();
        let path = vec![dir.path().to_path_buf()];
        for kind in ["bridge", "../bin/sh", ""] {
            let e = find_plugin(kind, &path).unwrap_err().to_string();
            assert!(e.contains(&format!("'{kind}'")), "{e}");
            assert!(e.contains(PLUGINS_PACKAGE), "{e}");
        }
    }

    fn fake_plugin(dir: &Path, name: &str, script: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn plugins_run_in_order_with_the_previous_result_and_flood_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        // The first plugin answers with an address; the second echoes its
        // input, so the test sees what it was given.
        fake_plugin(
            dir.path(),
            "first",
            r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","ips":[{"address":"10.89.9.2/24"}]}'"#,
        );
        fake_plugin(dir.path(), "echo", "cat");
        fake_plugin(dir.path(), "flood", "cat >/dev/null; yes '{}'");
        let path = vec![dir.path().to_path_buf()];
        let caps = Map::new();
        let runtime = Runtime {
            container_id: "c1",
            netns: Path::new("/nonexistent"),
            ifname: "eth0",
            cni_path: &path,
            capabilities: &caps,
            timeout: Duration::from_secs(5),
        };
        let conflist = json!({"cniVersion": "1.0.0", "name": "n", "plugins": [
            {"type": "first"}, {"type": "echo"}]});
        let mut seen = Vec::new();
        let out = exec(Op::Add, &conflist, &runtime, None, &mut |r| {
            seen.push(r.clone())
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0]["ips"][0]["address"], "10.89.9.2/24");
        assert_eq!(out["type"], "echo");
        assert_eq!(out["prevResult"]["ips"][0]["address"], "10.89.9.2/24");
        let flood = json!({"name": "n", "plugins": [{"type": "flood"}]});
        assert!(matches!(
            exec(Op::Add, &flood, &runtime, None, &mut |_| {}),
            Err(CniError::OutputTooLarge { .. })
        ));
        // A plugin that hangs is killed, with what it started.
        fake_plugin(dir.path(), "hang", "sleep 60");
        let hang = json!({"name": "n", "plugins": [{"type": "hang"}]});
        let quick = Runtime {
            timeout: Duration::from_millis(300),
            ..runtime.clone()
        };
        let started = Instant::now();
        let e = exec(Op::Del, &hang, &quick, None, &mut |_| {}).unwrap_err();
        assert!(matches!(e, CniError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
