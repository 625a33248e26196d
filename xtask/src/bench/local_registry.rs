//! A local docker-registry for the benchmarks that move images.

use anyhow::{Context, bail};
use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A docker-registry on a free loopback port with its storage and its log
/// (`registry.log`, access log included) under a directory; stopped on drop.
pub struct LocalRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    log: PathBuf,
}

impl LocalRegistry {
    /// Starts one and waits until it listens.
    pub fn start(dir: &Path) -> anyhow::Result<LocalRegistry> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let host = format!("127.0.0.1:{port}");
        fs::create_dir_all(dir)?;
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n\
                 http:\n  addr: {host}\n",
                storage = dir.join("storage").display()
            ),
        )?;
        let log = dir.join("registry.log");
        let log_file = fs::File::create(&log)?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting docker-registry (Debian package 'docker-registry')")?;
        let registry = LocalRegistry { child, host, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&registry.host).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {} in time",
                    registry.host
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// Its log, access log included.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
