//! A throwaway instance of Debian's `docker-registry` (the reference
//! distribution registry) on a free loopback port.
//!
//! The registry is stopped and its storage removed when the handle drops, which
//! also happens when the test panics.

use crate::require;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How the registry authenticates clients.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Anyone may push and pull.
    #[default]
    Anonymous,
    /// HTTP Basic against an htpasswd file (bcrypt entries only, as the registry requires).
    Htpasswd {
        /// The htpasswd file.
        path: PathBuf,
    },
    /// Bearer tokens issued by a token server.
    Token {
        /// The token endpoint clients are sent to.
        realm: String,
        /// The service name the tokens must carry.
        service: String,
        /// The issuer the tokens must carry.
        issuer: String,
        /// PEM certificate bundle whose keys sign the tokens.
        root_cert_bundle: PathBuf,
    },
}

/// Options for [`TestRegistry::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Authentication.
    pub auth: Auth,
}

/// A running registry; dropping it stops the process and removes its storage.
pub struct TestRegistry {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl TestRegistry {
    /// Starts an anonymous registry.
    pub fn start() -> TestRegistry {
        Self::start_with(Options::default())
    }

    /// Starts a registry with the given options. A port taken between choosing it
    /// and the registry binding it is retried with another port.
    pub fn start_with(options: Options) -> TestRegistry {
        let binary = require::program("docker-registry", "docker-registry");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("berth-registry-")
                .tempdir()
                .expect("creating the registry's temporary directory");
            let addr = free_loopback_port();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                config_yaml(addr, &dir.path().join("storage"), &options.auth),
            )
            .expect("writing the registry config");
            let log_path = dir.path().join("registry.log");
            let log = fs::File::create(&log_path).expect("creating the registry log");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("duplicating the log file handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let mut registry = TestRegistry { child, addr, dir };
            if registry.wait_ready(Duration::from_secs(15)) {
                return registry;
            }
            last_log = registry.log();
        }
        panic!("docker-registry did not start listening; its last log:\n{last_log}");
    }

    /// Polls until the registry accepts connections, or it exits, or time runs out.
    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_status)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// `127.0.0.1:PORT`, the registry's host as it appears in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The registry's storage root directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Everything the registry logged so far, access log included.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many requests with this method reached a path containing `path_part`,
    /// counted from the access log.
    pub fn count_requests(&self, method: &str, path_part: &str) -> usize {
        let needle = format!("\"{method} ");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle) && line.contains(path_part))
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an htpasswd file (bcrypt, as the registry requires) with one user
/// into `dir` and returns its path; fails the test without `htpasswd`.
pub fn htpasswd_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let program = require::program("htpasswd", "apache2-utils");
    let output = Command::new(program)
        .args(["-Bbn", user, password])
        .output()
        .expect("running htpasswd");
    assert!(output.status.success(), "htpasswd failed");
    let path = dir.join("htpasswd");
    fs::write(&path, output.stdout).expect("writing the htpasswd file");
    path
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_loopback_port() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a loopback port");
    listener.local_addr().expect("reading the bound address")
}

fn config_yaml(addr: SocketAddr, storage: &Path, auth: &Auth) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n",
        storage.display()
    );
    match auth {
        Auth::Anonymous => {}
        Auth::Htpasswd { path } => {
            let _ = write!(
                yaml,
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            );
        }
        Auth::Token {
            realm,
            service,
            issuer,
            root_cert_bundle,
        } => {
            let _ = write!(
                yaml,
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
                 issuer: {issuer}\n    rootcertbundle: {}\n",
                root_cert_bundle.display()
            );
        }
    }
    yaml
}
