//! Driving a runc-compatible runtime binary through its command line: `run`
//! with `--bundle` and `--pid-file` for `RUN` steps; `create`, `start` and
//! `kill` for `berth run`'s containers; `delete --force` for cleanup.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// A runtime binary and the state directory it keeps its containers in.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The binary (`berth-runtime`, `runc`, or a path).
    pub binary: PathBuf,
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a container run ended.
#[derive(Debug, Clone)]
pub struct RunExit {
    /// The exit code (128 + signal for a signal).
    pub code: i32,
    /// The last lines of output, both streams interleaved.
    pub tail: Vec<String>,
    /// The errors the runtime itself logged (it failed to start the command,
    /// say), as opposed to what the command printed.
    pub runtime_errors: Vec<String>,
}

const TAIL_LINES: usize = 20;

/// The runtime's log file in a bundle.
const LOG_FILE: &str = "runtime.log";

/// How much of the end of the runtime's log is read, and how many of its
/// error messages are kept.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
const LOG_ERRORS: usize = 5;

/// The messages of the error lines at the end of a runtime's JSON log
/// (runc's format: `{"level":"error","msg":"…"}` per line).
fn runtime_errors(log: &Path) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    let mut errors: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    errors.dedup();
    let skip = errors.len().saturating_sub(LOG_ERRORS);
    errors.drain(..skip);
    errors
}

impl Runtime {
    /// The default runtime: `berth-runtime` next to the running binary, else
    /// on `PATH`.
    pub fn default_binary() -> PathBuf {
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
            && dir.join("berth-runtime").is_file()
        {
            return dir.join("berth-runtime");
        }
        PathBuf::from("berth-runtime")
    }

    /// Runs the bundle's container in the foreground and waits for it; each
    /// output line goes to `on_line`.
    pub fn run(
        &self,
        state_root: &Path,
        bundle: &Path,
        id: &str,
        on_line: &(dyn Fn(Stream, &str) + Sync),
    ) -> io::Result<RunExit> {
        let log = bundle.join(LOG_FILE);
        let mut command = self.command(state_root);
        // The runtime's own errors go to a log of their own, so a failure to
        // start the command is told apart from the command's output.
        command
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json"])
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(bundle.join("pid"))
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        // The runtime dies with the build, so a killed build cannot leave a
        // runtime process waiting on a container forever.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("starting the runtime {}: {e}", self.binary.display()),
            )
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        std::thread::scope(|scope| {
            let pump = |reader: Box<dyn io::Read + Send>, stream: Stream| {
                let tail = Arc::clone(&tail);
                move || {
                    for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
                        let line = String::from_utf8_lossy(&line).into_owned();
                        on_line(stream, &line);
                        if let Ok(mut tail) = tail.lock() {
                            if tail.len() == TAIL_LINES {
                                tail.pop_front();
                            }
                            tail.push_back(line);
                        }
                    }
                }
            };
            if let Some(out) = stdout {
                scope.spawn(pump(Box::new(out), Stream::Stdout));
            }
            if let Some(err) = stderr {
                scope.spawn(pump(Box::new(err), Stream::Stderr));
            }
        });
        let status = child.wait()?;
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1);
        let tail = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let runtime_errors = if code == 0 {
            Vec::new()
        } else {
            runtime_errors(&log)
        };
        Ok(RunExit {
            code,
            tail,
            runtime_errors,
        })
    }

    /// Force-deletes a container, ignoring a container that is already gone.
    pub fn delete(&self, state_root: &Path, id: &str) {
        let _ = self
            .command(state_root)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The runtime's command line with its state directory. The runtime,
    /// and so the container, starts with no signal blocked or ignored, as
    /// under a daemon, whatever berth itself inherited or blocks to forward.
    pub fn command(&self, state_root: &Path) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(state_root);
        // SAFETY: sigemptyset, sigprocmask and signal are async-signal-safe
        // and allocate nothing.
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                for signal in 1..32 {
                    if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                        libc::signal(signal, libc::SIG_DFL);
                    }
                }
                Ok(())
            });
        }
        command
    }

    /// `create`: sets up the bundle's container, its process waiting for
    /// `start`. The process gets the standard streams `io` sets on the
    /// command (the runtime passes its own through), or a terminal sent to
    /// `console_socket`.
    pub fn create(
        &self,
        state_root: &Path,
        bundle: &Path,
        id: &str,
        console_socket: Option<&Path>,
        io: impl FnOnce(&mut Command),
    ) -> io::Result<std::process::ExitStatus> {
        let mut command = self.command(state_root);
        command
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(bundle.join("pid"));
        if let Some(socket) = console_socket {
            command.arg("--console-socket").arg(socket);
        }
        command.arg(id);
        io(&mut command);
        command.status().map_err(|e| self.spawn_error(e))
    }

    /// `start`: lets a created container's process run its command. Returns
    /// the runtime's exit status and its error output.
    pub fn start(&self, state_root: &Path, id: &str) -> io::Result<(bool, String)> {
        let out = self
            .command(state_root)
            .args(["start", id])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    /// `kill`: sends `signal` (a name or number) to the container's process.
    /// Returns whether the runtime reported success.
    pub fn kill(&self, state_root: &Path, id: &str, signal: &str) -> io::Result<bool> {
        let status = self
            .command(state_root)
            .args(["kill", id, signal])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| self.spawn_error(e))?;
        Ok(status.success())
    }

    fn spawn_error(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("starting the runtime {}: {e}", self.binary.display()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_error_lines_of_the_log_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runtime.log");
        let mut text = String::from("not json\n");
        text.push_str(&format!(
            "{{\"level\":\"info\",\"msg\":\"{}\"}}\n",
            "x".repeat(100_000)
        ));
        for n in 0..8 {
            text.push_str(&format!("{{\"level\":\"error\",\"msg\":\"failed {n}\"}}\n"));
        }
        text.push_str("{\"level\":\"error\",\"msg\":\"failed 7\"}\n");
        std::fs::write(&log, text).unwrap();
        assert_eq!(
            runtime_errors(&log),
            ["failed 3", "failed 4", "failed 5", "failed 6", "failed 7"]
        );
        assert!(runtime_errors(&dir.path().join("missing")).is_empty());
    }
}
