//! `berth pull`, `berth push`, `berth login` and `berth logout` against a real
//! docker-registry: only missing blobs move, `--quiet`, credentials in
//! Docker's config.json or a credential helper, every fault with a clear error
//! and nothing half-done, interrupted transfers resumed, and podman and skopeo
//! on the other end.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_e2e::podman::Podman;
use berth_e2e::registry::{Auth, Options, TestRegistry, htpasswd_file};
use berth_e2e::{bins, require};
use sha2::{Digest as _, Sha256};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// `berth --root ROOT ARGS…` with a private Docker config, run to the end.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-transfer-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Env { dir }
    }

    fn root(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("docker/config.json")
    }

    fn command(&self, root: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.arg("--root")
            .arg(self.root(root))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("BERTH_INSECURE_REGISTRIES")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, root: &str, args: &[&str]) -> Output {
        self.command(root, args).output().unwrap()
    }

    fn ok(&self, root: &str, args: &[&str]) -> String {
        let out = self.run(root, args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs berth expecting failure; returns stderr.
    fn fails(&self, root: &str, args: &[&str]) -> String {
        let out = self.run(root, args);
        assert!(
            !out.status.success(),
            "berth {args:?} succeeded but should have failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Logs in with the password on stdin, with `PATH` set when given.
    fn login(&self, host: &str, user: &str, password: &str, path: Option<&str>) -> Output {
        let mut cmd = self.command(
            "unused",
            &["login", "--username", user, "--password-stdin", host],
        );
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Imports the busybox fixture as `name` into store `root`.
    fn import_busybox(&self, root: &str, name: &str) {
        let rootfs = bins::fixtures().join("busybox/rootfs");
        self.ok(
            root,
            &["import", rootfs.to_str().unwrap(), name, "--cmd", "sh"],
        );
    }

    /// Imports a directory holding one file of `size` incompressible bytes.
    fn import_random(&self, root: &str, name: &str, size: usize, seed: u64) {
        let dir = self.dir.path().join(format!("random-{seed}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.bin"), random_bytes(seed, size)).unwrap();
        self.ok(root, &["import", dir.to_str().unwrap(), name]);
    }

    /// The names in a store's index.json.
    fn tags(&self, root: &str) -> Vec<String> {
        let path = self.root(root).join("oci/index.json");
        let Ok(bytes) = std::fs::read(path) else {
            return Vec::new();
        };
        let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
            .map(str::to_owned)
            .collect()
    }

    /// Files staged in a store's ingest directory.
    fn staged(&self, root: &str) -> Vec<(PathBuf, u64)> {
        let Ok(entries) = std::fs::read_dir(self.root(root).join("oci/.ingest")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect()
    }
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A blob request in the registry's access log: method, path, status, bytes.
#[derive(Debug)]
struct Logged {
    method: String,
    path: String,
    status: u16,
    bytes: u64,
}

/// The access log's requests, from line `from` on.
fn requests(registry: &TestRegistry, from: usize) -> Vec<Logged> {
    registry
        .log()
        .lines()
        .filter(|line| !line.starts_with("time="))
        .filter_map(|line| {
            let (_, rest) = line.split_once("] \"")?;
            let (request, rest) = rest.split_once('"')?;
            let mut parts = request.split(' ');
            let method = parts.next()?.to_owned();
            let path = parts.next()?.to_owned();
            let mut numbers = rest.split_whitespace();
            let status = numbers.next()?.parse().ok()?;
            let bytes = numbers.next()?.parse().unwrap_or(0);
            Some(Logged {
                method,
                path,
                status,
                bytes,
            })
        })
        .skip(from)
        .collect()
}

fn request_count(registry: &TestRegistry) -> usize {
    requests(registry, 0).len()
}

/// Blob uploads (the requests that carry a blob's bytes) since `from`.
fn uploads(registry: &TestRegistry, from: usize) -> Vec<Logged> {
    requests(registry, from)
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .collect()
}

/// Blob downloads since `from`.
fn downloads(registry: &TestRegistry, from: usize) -> Vec<Logged> {
    requests(registry, from)
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn push_and_pull_move_only_missing_blobs() {
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_busybox("a", "busybox");
    let target = format!("{}/lifecycle/busybox:1", registry.host());

    let pushed = env.run("a", &["push", "busybox", &target]);
    assert!(pushed.status.success());
    let stdout = String::from_utf8(pushed.stdout).unwrap();
    let stderr = String::from_utf8(pushed.stderr).unwrap();
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in: {stdout}"))
        .to_owned();
    // Without a terminal: plain lines, one per blob event, no redraws.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    assert_eq!(stderr.matches(": pushed ").count(), 2, "{stderr}");
    assert_eq!(uploads(&registry, 0).len(), 2);

    // Again: --quiet prints the digest alone and nothing moves.
    let before = request_count(&registry);
    let quiet = env.ok("a", &["push", "--quiet", "busybox", &target]);
    assert_eq!(quiet, format!("{digest}\n"));
    assert!(uploads(&registry, before).is_empty());
    // Under another tag of the same repository: blobs exist, only the
    // manifest is written.
    let before = request_count(&registry);
    let other = format!("{}/lifecycle/busybox:2", registry.host());
    let out = env.run("a", &["push", "busybox", &other]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches(": exists")
            .count(),
        2
    );
    assert!(uploads(&registry, before).is_empty());

    // A fresh store pulls both blobs, under the name FROM would use.
    let before = request_count(&registry);
    let pulled = env.ok("b", &["pull", "-q", &target]);
    assert_eq!(pulled, format!("{digest}\n"));
    assert_eq!(downloads(&registry, before).len(), 2);
    assert_eq!(env.tags("b"), vec![target.clone()]);
    // Pulling again downloads nothing and says so.
    let before = request_count(&registry);
    let again = env.run("b", &["pull", &target]);
    assert!(again.status.success());
    assert!(downloads(&registry, before).is_empty());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr)
            .matches("already present")
            .count(),
        2
    );
    // Pushing from the second store to a new repository mounts nothing it
    // cannot, but uploads nothing the registry has in this repository.
    let third = format!("{}/lifecycle/copy:1", registry.host());
    let before = request_count(&registry);
    let out = env.ok("b", &["push", "-q", &target, &third]);
    assert_eq!(out, format!("{digest}\n"));
    let copied = uploads(&registry, before).len();
    let mounted = requests(&registry, before)
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("mount=") && r.status == 201)
        .count();
    assert_eq!(
        copied + mounted,
        2,
        "every blob is uploaded or mounted once"
    );
    assert_eq!(
        mounted, 2,
        "the store remembers where it pulled the blobs from"
    );
}

#[test]
fn faults_get_clear_errors_and_leave_nothing_behind() {
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_busybox("a", "busybox");
    let host = registry.host();
    env.ok(
        "a",
        &["push", "-q", "busybox", &format!("{host}/faults/app:1")],
    );

    let err = env.fails("b", &["pull", &format!("{host}/faults/nothing:1")]);
    assert!(
        err.contains("repository 'faults/nothing' not found") && err.contains("hint:"),
        "{err}"
    );
    let err = env.fails("b", &["pull", &format!("{host}/faults/app:2")]);
    assert!(
        err.contains("tag '2' not found") && err.contains("the registry has: 1"),
        "{err}"
    );
    // Nothing listens on a port just freed.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let err = env.fails("b", &["pull", &format!("{closed}/faults/app:1")]);
    assert!(
        err.contains(&format!("cannot reach registry {closed}")) && err.contains("hint:"),
        "{err}"
    );
    let err = env.fails("a", &["push", "missing", &format!("{host}/faults/app:3")]);
    assert!(err.contains("no image named 'missing:latest'"), "{err}");
    let err = env.fails("b", &["pull", "Not/A Valid:ref"]);
    assert!(err.contains("invalid image reference"), "{err}");
    assert!(env.tags("b").is_empty());
    assert!(env.staged("b").is_empty());
}

#[test]
fn login_stores_the_credential_in_docker_config_and_logout_removes_it() {
    let env = Env::new();
    let registry = TestRegistry::start_with(Options {
        auth: Auth::Htpasswd {
            path: htpasswd_file(env.dir.path(), "berth", "s3cret"),
        },
    });
    let host = registry.host();
    env.import_busybox("a", "busybox");
    let target = format!("{host}/private/busybox:1");
    std::fs::write(env.config(), r#"{"psFormat":"table {{.ID}}"}"#).unwrap();

    let err = env.fails("a", &["push", "busybox", &target]);
    assert!(
        err.contains("unauthorized") && err.contains(&format!("berth login {host}")),
        "{err}"
    );
    // A wrong password is refused and nothing is stored.
    let out = env.login(&host, "berth", "wrong", None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unauthorized") && err.contains("nothing was stored"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(env.config()).unwrap(),
        r#"{"psFormat":"table {{.ID}}"}"#
    );

    let out = env.login(&host, "berth", "s3cret", None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.config()).unwrap()).unwrap();
    assert_eq!(config["psFormat"], "table {{.ID}}", "other keys are kept");
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("berth:s3cret");
    assert_eq!(config["auths"][host.as_str()]["auth"], auth.as_str());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(env.config())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // berth itself reads the credential back from config.json.
    env.ok("a", &["push", "-q", "busybox", &target]);
    env.ok("b", &["pull", "-q", &target]);
    // So does skopeo: berth wrote what Docker writes.
    let skopeo = require::program("skopeo", "skopeo");
    let inspected = Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false", "--authfile"])
        .arg(env.config())
        .arg(format!("docker://{target}"))
        .output()
        .unwrap();
    assert!(
        inspected.status.success(),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );

    let out = env.ok("unused", &["logout", &host]);
    assert!(out.contains("Removed login credentials"), "{out}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.config()).unwrap()).unwrap();
    assert!(config["auths"].get(host.as_str()).is_none());
    assert_eq!(config["psFormat"], "table {{.ID}}");
    let out = env.ok("unused", &["logout", &host]);
    assert!(out.contains("Not logged in"), "{out}");
    let err = env.fails("c", &["pull", &target]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(env.tags("c").is_empty());
}

#[test]
fn login_goes_through_a_configured_credential_helper() {
    let env = Env::new();
    let registry = TestRegistry::start_with(Options {
        auth: Auth::Htpasswd {
            path: htpasswd_file(env.dir.path(), "helper-user", "helper-pass"),
        },
    });
    let host = registry.host();
    // docker-credential-xyz keeps one credential in a file next to it and
    // logs every call.
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("docker-credential-xyz");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         dir=$(dirname \"$0\")\n\
         input=$(cat)\n\
         echo \"$1 $input\" >> \"$dir/calls.log\"\n\
         case \"$1\" in\n\
           store) printf '%s' \"$input\" > \"$dir/stored.json\" ;;\n\
           get) if [ -f \"$dir/stored.json\" ]; then cat \"$dir/stored.json\";\n\
                else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
           erase) rm -f \"$dir/stored.json\" ;;\n\
         esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(env.config(), r#"{"credsStore":"xyz"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    env.import_busybox("a", "busybox");
    let target = format!("{host}/helper/busybox:1");

    let out = env.login(&host, "helper-user", "helper-pass", Some(&path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bin.join("stored.json")).unwrap()).unwrap();
    assert_eq!(stored["ServerURL"], host.as_str());
    assert_eq!(stored["Username"], "helper-user");
    assert_eq!(stored["Secret"], "helper-pass");
    // The secret is not in config.json.
    assert_eq!(
        std::fs::read_to_string(env.config()).unwrap(),
        r#"{"credsStore":"xyz"}"#
    );

    let pushed = env
        .command("a", &["push", "-q", "busybox", &target])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let calls = std::fs::read_to_string(bin.join("calls.log")).unwrap();
    assert!(calls.contains(&format!("get {host}")), "{calls}");

    let out = env
        .command("unused", &["logout", &host])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("docker-credential-xyz"));
    assert!(!bin.join("stored.json").exists());
    let calls = std::fs::read_to_string(bin.join("calls.log")).unwrap();
    assert!(calls.contains(&format!("erase {host}")), "{calls}");
    // Without a credential the helper answers "not found": anonymous, refused.
    let out = env
        .command("c", &["pull", &target])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthorized"), "{err}");
}

/// A TCP relay in front of the registry that can slow both directions down,
/// so a transfer can be interrupted midway.
struct SlowProxy {
    addr: std::net::SocketAddr,
    /// Bytes per second in each direction; 0 is unlimited.
    rate: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    fn start(upstream: std::net::SocketAddr, rate: u64) -> SlowProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let rate = Arc::new(AtomicU64::new(rate));
        let stop = Arc::new(AtomicBool::new(false));
        let (rate_accept, stop_accept) = (Arc::clone(&rate), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop_accept.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (rate, stop) = (Arc::clone(&rate_accept), Arc::clone(&stop_accept));
                    std::thread::spawn(move || relay(from, to, &rate, &stop));
                }
            }
        });
        SlowProxy { addr, rate, stop }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream, rate: &AtomicU64, stop: &AtomicBool) {
    let mut buffer = vec![0u8; 16 * 1024];
    let started = Instant::now();
    let mut moved = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
        moved += n as u64;
        let limit = rate.load(Ordering::Relaxed);
        if limit > 0 {
            let due = Duration::from_secs_f64(moved as f64 / limit as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Waits for `ready`, failing the test after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const BIG: usize = 12 * 1024 * 1024;

#[test]
fn an_interrupted_pull_resumes_where_it_stopped() {
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_random("a", "big", BIG, 1);
    let proxy = SlowProxy::start(registry.host().parse().unwrap(), 4 * 1024 * 1024);
    let target = format!("{}/resume/big:1", proxy.host());
    let digest = env.ok(
        "a",
        &[
            "push",
            "-q",
            "big",
            &format!("{}/resume/big:1", registry.host()),
        ],
    );

    let mut pull = env
        .command("b", &["pull", "-q", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a partial download", Duration::from_secs(30), || {
        env.staged("b")
            .iter()
            .any(|(path, size)| path.to_string_lossy().ends_with(".partial") && *size >= 3 << 20)
    });
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(pull.id() as i32, libc::SIGKILL) };
    pull.wait().unwrap();
    assert!(env.tags("b").is_empty(), "a killed pull tagged nothing");
    let (partial, staged) = env
        .staged("b")
        .into_iter()
        .find(|(path, _)| path.to_string_lossy().ends_with(".partial"))
        .expect("the partial download is kept for the next pull");
    let layer_hex = partial
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".partial")
        .to_owned();

    proxy.rate.store(0, Ordering::Relaxed);
    // The registry logs the cut-off request once its connection closes.
    wait_for(
        "the killed download in the log",
        Duration::from_secs(10),
        || {
            downloads(&registry, 0)
                .iter()
                .any(|r| r.path.contains(&layer_hex))
        },
    );
    let before = request_count(&registry);
    let out = env.run("b", &["pull", &target]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming after"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(digest.trim()));
    let layer: Vec<Logged> = downloads(&registry, before)
        .into_iter()
        .filter(|r| r.path.contains(&layer_hex))
        .collect();
    assert_eq!(layer.len(), 1, "{layer:?}");
    assert_eq!(layer[0].status, 206, "a Range request continues the blob");
    assert!(
        layer[0].bytes <= BIG as u64 + 4096 - staged,
        "the rerun fetched {} bytes of a {BIG}-byte layer of which {staged} were staged",
        layer[0].bytes
    );
    assert_eq!(env.tags("b"), vec![target.clone()]);
    assert!(env.staged("b").is_empty());
    let blob = std::fs::read(env.root("b").join("oci/blobs/sha256").join(&layer_hex)).unwrap();
    assert_eq!(sha256_hex(&blob), layer_hex);
}

#[test]
fn an_interrupted_push_resends_only_what_was_not_complete() {
    let registry = TestRegistry::start();
    let env = Env::new();
    // The config blob completes first; the big layer is cut off midway.
    env.import_random("a", "big", BIG, 2);
    let proxy = SlowProxy::start(registry.host().parse().unwrap(), 4 * 1024 * 1024);
    let target = format!("{}/resume/pushed:1", proxy.host());

    let mut push = env
        .command("a", &["push", "big", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let upload_dir = registry
        .storage()
        .join("docker/registry/v2/repositories/resume/pushed/_uploads");
    wait_for(
        "the small blob and part of the big one",
        Duration::from_secs(30),
        || {
            let finished = uploads(&registry, 0).iter().any(|r| r.status == 201);
            let partial = std::fs::read_dir(&upload_dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|entry| {
                    std::fs::metadata(entry.path().join("data")).is_ok_and(|m| m.len() >= 3 << 20)
                });
            finished && partial
        },
    );
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(push.id() as i32, libc::SIGKILL) };
    push.wait().unwrap();
    let done_before: Vec<String> = uploads(&registry, 0)
        .iter()
        .filter(|r| r.status == 201)
        .filter_map(|r| r.path.split("digest=").nth(1).map(str::to_owned))
        .collect();
    assert_eq!(done_before.len(), 1, "only the small blob was complete");

    proxy.rate.store(0, Ordering::Relaxed);
    // The registry logs the cut-off upload once its connection closes.
    wait_for(
        "the killed upload in the log",
        Duration::from_secs(10),
        || uploads(&registry, 0).iter().any(|r| r.status != 201),
    );
    let before = request_count(&registry);
    let out = env.run("a", &["push", "big", &target]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(": exists"), "{stderr}");
    let resent: Vec<Logged> = uploads(&registry, before);
    assert_eq!(
        resent.len(),
        1,
        "only the big blob is sent again: {resent:?}"
    );
    assert!(!resent[0].path.contains(&done_before[0]));
    // The result is whole: a fresh store pulls it.
    env.ok("b", &["pull", "-q", &target]);
}

#[test]
fn a_full_disk_fails_the_pull_cleanly_and_the_store_stays_usable() {
    require::root();
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_random("a", "big", BIG, 3);
    env.import_busybox("a", "busybox");
    let host = registry.host();
    env.ok("a", &["push", "-q", "big", &format!("{host}/disk/big:1")]);
    env.ok(
        "a",
        &["push", "-q", "busybox", &format!("{host}/disk/small:1")],
    );

    let small = env.root("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs at {}", small.display());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());

    let err = env.fails("small", &["pull", &format!("{host}/disk/big:1")]);
    assert!(
        err.contains("no space left on device") && err.contains(&format!("{host}/disk/big:1")),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(env.tags("small").is_empty(), "nothing is tagged");
    assert!(
        env.staged("small").is_empty(),
        "the partial download was removed"
    );
    // The store still works for what fits.
    env.ok("small", &["pull", "-q", &format!("{host}/disk/small:1")]);
    assert_eq!(env.tags("small"), vec![format!("{host}/disk/small:1")]);
}

#[test]
fn podman_pulls_and_runs_what_berth_pushed() {
    require::root();
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_busybox("a", "busybox");
    let target = format!("{}/interop/busybox:1", registry.host());
    let digest = env.ok("a", &["push", "-q", "busybox", &target]);

    let podman = Podman::new();
    podman.ok(&["pull", "--tls-verify=false", &target]);
    let inspected = podman.ok(&["image", "inspect", "--format", "{{.Digest}}", &target]);
    assert_eq!(inspected.trim(), digest.trim());
    let said = podman.run(&target, &["echo", "hello from berth's push"]);
    assert_eq!(said, "hello from berth's push\n");
}

#[test]
fn berth_pulls_what_skopeo_pushed_with_the_same_digest() {
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_busybox("a", "busybox");
    let host = registry.host();
    env.ok(
        "a",
        &["push", "-q", "busybox", &format!("{host}/interop/source:1")],
    );
    // skopeo rewrites it as a Docker schema 2 image: a manifest berth never
    // wrote itself.
    let skopeo = require::program("skopeo", "skopeo");
    let copied = Command::new(&skopeo)
        .args([
            "copy",
            "--quiet",
            "--format",
            "v2s2",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{host}/interop/source:1"))
        .arg(format!("docker://{host}/interop/skopeo:1"))
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let raw = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/interop/skopeo:1"))
        .output()
        .unwrap();
    assert!(raw.status.success());
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let expected = format!("sha256:{}", sha256_hex(&raw.stdout));

    let pulled = env.ok("b", &["pull", "-q", &format!("{host}/interop/skopeo:1")]);
    assert_eq!(pulled.trim(), expected);
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let hex = digest.trim_start_matches("sha256:");
        let blob = std::fs::read(env.root("b").join("oci/blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256_hex(&blob), hex);
    }
}

/// Runs `berth ARGS…` on a pseudo-terminal (util-linux `script`), writing
/// each answer once the output shows its prompt; returns everything the
/// terminal showed.
fn on_terminal(env: &Env, root: &str, args: &[&str], answers: &[(&str, &str)]) -> String {
    let script = require::program("script", "bsdutils");
    let berth = env.command(root, args);
    let mut line = format!("{}", bins::berth().display());
    for arg in berth.get_args() {
        line.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    let mut cmd = Command::new(script);
    cmd.args(["-qec", &line, "/dev/null"]);
    for (key, value) in berth.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let shown = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    for (prompt, answer) in answers {
        wait_for(
            &format!("the prompt {prompt:?}"),
            Duration::from_secs(20),
            || String::from_utf8_lossy(&shown.lock().unwrap()).contains(prompt),
        );
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(
        status.success(),
        "berth {args:?} on a terminal failed:\n{text}"
    );
    text
}

#[test]
fn a_terminal_gets_bars_and_a_password_prompt_without_echo() {
    let env = Env::new();
    let registry = TestRegistry::start_with(Options {
        auth: Auth::Htpasswd {
            path: htpasswd_file(env.dir.path(), "tty-user", "tty-s3cret"),
        },
    });
    let host = registry.host();
    let shown = on_terminal(
        &env,
        "unused",
        &["login", &host],
        &[("Username: ", "tty-user"), ("Password: ", "tty-s3cret")],
    );
    assert!(
        shown.contains("tty-user"),
        "the user name is echoed: {shown}"
    );
    assert!(
        !shown.contains("tty-s3cret"),
        "the password was echoed: {shown}"
    );
    assert!(shown.contains("Login Succeeded"), "{shown}");

    env.import_busybox("a", "busybox");
    let target = format!("{host}/tty/busybox:1");
    let shown = on_terminal(&env, "a", &["push", "busybox", &target], &[]);
    // Bars redraw in place and end with each blob's outcome.
    assert!(shown.contains("\u{1b}["), "no terminal drawing: {shown:?}");
    assert!(shown.matches("pushed").count() >= 2, "{shown:?}");
    let shown = on_terminal(
        &env,
        "a",
        &["push", "busybox", &format!("{host}/tty/other:1")],
        &[],
    );
    assert!(shown.contains("mounted from tty/busybox"), "{shown:?}");
    let shown = on_terminal(&env, "b", &["pull", &target], &[]);
    assert!(shown.contains("downloaded"), "{shown:?}");
    let shown = on_terminal(&env, "b", &["pull", &target], &[]);
    assert!(shown.contains("already present"), "{shown:?}");
}

#[test]
fn build_push_shows_the_same_per_blob_progress() {
    let registry = TestRegistry::start();
    let env = Env::new();
    env.import_busybox("a", "busybox");
    let host = registry.host();
    env.ok(
        "a",
        &["push", "-q", "busybox", &format!("{host}/base/busybox:1")],
    );
    let context = env.dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nCOPY note /note\n",
    )
    .unwrap();
    std::fs::write(context.join("note"), "built and pushed\n").unwrap();
    let target = format!("{host}/built/app:1");
    let out = env.run(
        "a",
        &[
            "build",
            "--progress",
            "plain",
            "--push",
            "-t",
            &target,
            context.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The base layer is mounted from where the earlier push put it; the new
    // layer and the config are uploaded.
    assert!(stderr.contains(": mounted from base/busybox"), "{stderr}");
    assert_eq!(stderr.matches(": pushed ").count(), 2, "{stderr}");
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        stderr.contains(&format!("pushed {target}@{digest}")),
        "{stderr}"
    );
    assert_eq!(env.ok("b", &["pull", "-q", &target]).trim(), digest);
}
