//! A typed client of the runc command-line contract, as go-runc is for
//! containerd: every runtime invocation of berth (a `RUN` step's `run`,
//! `berth run`'s `create`, `start`, `kill` and `delete`, `berth exec`'s
//! `exec`) goes through [`Runc`], which works with `berth-runtime`, runc and
//! any runtime with runc's command line.
//!
//! [`Runtime`] names the binary (a build or container setting); [`Runc`] is
//! that binary with runc's global options: a state root, a JSON log, and
//! cgroups managed directly (never through systemd). Each subcommand is a
//! method whose options are typed; a failure is a [`RuncError`] naming the
//! subcommand and the container, with the runtime's own error lines, read
//! from its JSON log when it has one, else from its error output. Output
//! the runtime prints (`state`, `ps`, `events`) is read up to a bound and
//! parsed, so a runtime that prints without end cannot exhaust memory.

use oci_spec::runtime::LinuxResources;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// A runtime binary: `berth-runtime`, `runc`, or a path.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The binary (`berth-runtime`, `runc`, or a path).
    pub binary: PathBuf,
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

    /// The client of this runtime keeping its containers' state in `root`.
    pub fn at(&self, root: &Path) -> Runc {
        Runc::new(&self.binary).root(root)
    }
}

/// A runc-compatible runtime and its global options.
#[derive(Debug, Clone)]
pub struct Runc {
    /// The binary.
    pub binary: PathBuf,
    /// `--root`: the directory of the containers' state (the runtime's
    /// default when `None`).
    pub root: Option<PathBuf>,
    /// `--log` with `--log-format json`: where the runtime logs, and where
    /// its error lines are read from.
    pub log: Option<PathBuf>,
    /// `--systemd-cgroup`: off unless asked for; berth manages cgroups
    /// through the runtime directly.
    pub systemd_cgroup: bool,
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a foreground `run` ended.
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

/// The standard streams a container's process gets; `None` is `/dev/null`.
#[derive(Debug, Default)]
pub struct ProcessIo {
    /// Standard input.
    pub stdin: Option<Stdio>,
    /// Standard output.
    pub stdout: Option<Stdio>,
    /// Standard error (also where the runtime writes its own errors).
    pub stderr: Option<Stdio>,
}

/// Options of `create`.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// `--pid-file`: where the runtime writes the container's init pid.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`: the unix socket the runtime sends the master
    /// side of the container's terminal to (for a process with a terminal).
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`: `chroot` instead of `pivot_root` (a root on ramfs).
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// The process's streams: the runtime hands its own to the container.
    pub io: ProcessIo,
    /// Whether the runtime, and so the container, starts in a process group
    /// of its own (a terminal's Ctrl-C then reaches the container only
    /// through its supervisor).
    pub new_process_group: bool,
}

/// Options of a foreground `run`.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// `--pid-file`: where the runtime writes the container's init pid.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
}

/// The process `exec` runs in a container.
#[derive(Debug, Clone, Copy)]
pub enum ProcessSpec<'a> {
    /// The command and its settings as `exec`'s flags.
    Flags(&'a ExecProcess),
    /// `--process`: a runtime-spec `process` JSON file.
    File(&'a Path),
}

/// A process given through `exec`'s flags; what is not set is the
/// container's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecProcess {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `--env KEY=value`, on top of the container's environment.
    pub env: Vec<String>,
    /// `--cwd`.
    pub cwd: Option<String>,
    /// `--user uid:gid`.
    pub user: Option<(u32, u32)>,
    /// `--additional-gids`.
    pub additional_gids: Vec<u32>,
}

/// Options of `exec`.
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// `--tty`: the process gets a terminal.
    pub tty: bool,
    /// `--console-socket`: where the terminal's master side goes.
    pub console_socket: Option<PathBuf>,
    /// `--pid-file`: where the runtime writes the process's pid.
    pub pid_file: Option<PathBuf>,
    /// `--detach`: the runtime returns once the process runs.
    pub detach: bool,
    /// The process's streams.
    pub io: ProcessIo,
}

/// A container's state as `state` prints it (runc's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The OCI runtime-spec version.
    #[serde(default)]
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The init process's pid as the host sees it (0 once it stopped).
    #[serde(default)]
    pub pid: i32,
    /// Where the container is in its life.
    pub status: Status,
    /// The bundle directory.
    #[serde(default)]
    pub bundle: PathBuf,
    /// The root filesystem.
    #[serde(default)]
    pub rootfs: PathBuf,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// The owner (runc leaves it empty).
    #[serde(default)]
    pub owner: String,
    /// The bundle's annotations.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A container's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created; its process waits for `start`.
    Created,
    /// Its process runs.
    Running,
    /// Being frozen.
    Pausing,
    /// Frozen.
    Paused,
    /// Its process ended.
    Stopped,
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

/// One stats event of `events --stats` (runc's `types.Stats`, in part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// CPU time.
    pub cpu: CpuStats,
    /// Memory use.
    pub memory: MemoryStats,
    /// Processes.
    pub pids: PidsStats,
}

/// CPU time of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Usage counters.
    pub usage: CpuUsage,
}

/// CPU time counters, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// All CPU time.
    pub total: u64,
    /// In the kernel.
    pub kernel: u64,
    /// In user space.
    pub user: u64,
}

/// Memory use of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// The page cache, in bytes.
    pub cache: u64,
    /// Memory use and limit.
    pub usage: MemoryEntry,
}

/// A memory counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    /// The limit, in bytes.
    pub limit: u64,
    /// The use, in bytes.
    pub usage: u64,
    /// The highest use, in bytes.
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

/// The processes of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    /// How many there are.
    pub current: u64,
    /// The limit (0 for none).
    pub limit: u64,
}

/// An error of a runtime subcommand: it names the subcommand and the
/// container, and carries the runtime's own error lines.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    /// The runtime binary could not be run.
    #[error("starting the runtime {} for `{command}` of container {id}", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The subcommand.
        command: &'static str,
        /// The container.
        id: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Waiting for or reading from the runtime failed.
    #[error("reading from the runtime {} during `{command}` of container {id}", binary.display())]
    Io {
        /// The binary.
        binary: PathBuf,
        /// The subcommand.
        command: &'static str,
        /// The container.
        id: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The runtime reported a failure.
    #[error("the runtime {} failed `{command}` of container {id} ({status}){}", binary.display(), said(errors))]
    Failed {
        /// The binary.
        binary: PathBuf,
        /// The subcommand.
        command: &'static str,
        /// The container.
        id: String,
        /// How the runtime exited.
        status: ExitStatus,
        /// The runtime's own error lines, the last few.
        errors: Vec<String>,
    },
    /// The runtime printed more than a subcommand's output can be.
    #[error("the output of the runtime {}'s `{command}` of container {id} exceeds {limit} bytes", binary.display())]
    TooLarge {
        /// The binary.
        binary: PathBuf,
        /// The subcommand.
        command: &'static str,
        /// The container.
        id: String,
        /// The bound.
        limit: u64,
    },
    /// The input for the runtime could not be rendered.
    #[error("rendering the input of `{command}` of container {id}")]
    Input {
        /// The subcommand.
        command: &'static str,
        /// The container.
        id: String,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The runtime's output does not parse.
    #[error("the output of the runtime {}'s `{command}` of container {id} is not what runc prints", binary.display())]
    Parse {
        /// The binary.
        binary: PathBuf,
        /// The subcommand.
        command: &'static str,
        /// The container.
        id: String,
        /// The underlying error.
        source: serde_json::Error,
    },
}

impl RuncError {
    /// The runtime's own error lines, for a failure it reported.
    pub fn runtime_errors(&self) -> &[String] {
        match self {
            RuncError::Failed { errors, .. } => errors,
            _ => &[],
        }
    }
}

fn said(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}

const TAIL_LINES: usize = 20;

/// How much of the end of the runtime's log (or error output) is read, and
/// how many of its error messages are kept.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
const LOG_ERRORS: usize = 5;

/// The most a subcommand's output (`state`, `ps`, `events --stats`) may be.
pub const OUTPUT_LIMIT: u64 = 1024 * 1024;

/// The messages of the error lines a runtime wrote to its JSON log from
/// byte `from` on, the last [`LOG_ERRORS`] (runc's format:
/// `{"level":"error","msg":"…"}` per line).
fn log_errors(log: &Path, from: u64) -> Vec<String> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES).max(from);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    let errors = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    last_distinct(errors)
}

/// The last [`LOG_ERRORS`] of `lines`, repeats in a row dropped.
fn last_distinct(mut lines: Vec<String>) -> Vec<String> {
    lines.dedup();
    let skip = lines.len().saturating_sub(LOG_ERRORS);
    lines.drain(..skip);
    lines
}

/// The non-empty lines of a runtime's error output, the last few.
fn stderr_errors(stderr: &[u8]) -> Vec<String> {
    last_distinct(
        String::from_utf8_lossy(stderr)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// Reads at most `limit` bytes; says whether there was more.
fn read_bounded(reader: Option<impl Read>, limit: u64) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let Some(reader) = reader else {
        return (bytes, false);
    };
    let _ = reader.take(limit + 1).read_to_end(&mut bytes);
    let over = bytes.len() as u64 > limit;
    bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    (bytes, over)
}

/// Reads to the end, keeping the last `limit` bytes (a runtime's last
/// words are its error).
fn read_tail(reader: Option<impl Read>, limit: u64) -> Vec<u8> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    let Some(mut reader) = reader else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > limit {
        // The first line kept is cut: it goes, up to its end.
        let cut = kept.len() - limit;
        let end = kept[cut..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(kept.len(), |p| cut + p + 1);
        kept.drain(..end);
    }
    kept
}

/// What a captured subcommand printed.
struct Captured {
    status: ExitStatus,
    stdout: Vec<u8>,
    stdout_over: bool,
    stderr: Vec<u8>,
}

/// The pid of a process pinned by a pidfd: while the pidfd is open, signals
/// sent through it reach that process or none, never a process that reused
/// its pid.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no process to pin: pid {pid}"),
        ));
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us; pidfds are
    // created close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl State {
    /// Parses `state`'s output.
    pub fn parse(bytes: &[u8]) -> Result<State, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// A pidfd of the container's init process (`pidfd_open(2)`), which
    /// keeps naming that process however long it is held. Fails for a
    /// container with no process.
    pub fn pidfd(&self) -> io::Result<OwnedFd> {
        pidfd_open(self.pid)
    }
}

impl Runc {
    /// The runtime `binary` with its default state root and no log.
    pub fn new(binary: impl Into<PathBuf>) -> Runc {
        Runc {
            binary: binary.into(),
            root: None,
            log: None,
            systemd_cgroup: false,
        }
    }

    /// With `--root`.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Runc {
        self.root = Some(root.into());
        self
    }

    /// With `--log` in JSON.
    pub fn log(mut self, log: impl Into<PathBuf>) -> Runc {
        self.log = Some(log.into());
        self
    }

    /// The runtime's command line with the global options and `subcommand`.
    /// The runtime, and so the container, starts with no signal blocked or
    /// ignored, as under a daemon, whatever berth itself inherited or
    /// blocks to forward.
    fn command(&self, subcommand: &str) -> Command {
        let mut command = Command::new(&self.binary);
        if let Some(root) = &self.root {
            command.arg("--root").arg(root);
        }
        if let Some(log) = &self.log {
            command.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        if self.systemd_cgroup {
            command.arg("--systemd-cgroup");
        }
        command.arg(subcommand);
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

    /// The length of the log now, so that only what a call adds is read.
    fn log_mark(&self) -> u64 {
        self.log
            .as_ref()
            .and_then(|log| std::fs::metadata(log).ok())
            .map_or(0, |m| m.len())
    }

    /// The runtime's error lines: from its log since `mark` when it has
    /// one and logged any, else from its error output.
    fn errors(&self, mark: u64, stderr: &[u8]) -> Vec<String> {
        let logged = self
            .log
            .as_ref()
            .map(|log| log_errors(log, mark))
            .unwrap_or_default();
        if logged.is_empty() {
            stderr_errors(stderr)
        } else {
            logged
        }
    }

    fn spawn_error(&self, command: &'static str, id: &str) -> impl FnOnce(io::Error) -> RuncError {
        let binary = self.binary.clone();
        let id = id.to_string();
        move |source| RuncError::Spawn {
            binary,
            command,
            id,
            source,
        }
    }

    fn io_error(&self, command: &'static str, id: &str) -> impl FnOnce(io::Error) -> RuncError {
        let binary = self.binary.clone();
        let id = id.to_string();
        move |source| RuncError::Io {
            binary,
            command,
            id,
            source,
        }
    }

    fn failed(
        &self,
        command: &'static str,
        id: &str,
        status: ExitStatus,
        errors: Vec<String>,
    ) -> RuncError {
        RuncError::Failed {
            binary: self.binary.clone(),
            command,
            id: id.to_string(),
            status,
            errors,
        }
    }

    /// Runs `command` with `input` on its standard input, reading its
    /// output up to `limit` bytes (a runtime that prints more is killed;
    /// with no limit the output is not wanted) and its error output up to
    /// [`LOG_TAIL_BYTES`].
    fn capture(
        &self,
        name: &'static str,
        id: &str,
        mut command: Command,
        input: Option<&[u8]>,
        limit: Option<u64>,
    ) -> Result<Captured, RuncError> {
        command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if limit.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(self.spawn_error(name, id))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let ((stdout, stdout_over), stderr) = std::thread::scope(|scope| {
            scope.spawn(move || {
                if let (Some(mut writer), Some(input)) = (stdin, input) {
                    // A runtime that does not read its input says why itself.
                    let _ = writer.write_all(input);
                }
            });
            let errors = scope.spawn(move || read_tail(stderr, LOG_TAIL_BYTES));
            let out = read_bounded(stdout, limit.unwrap_or(0));
            if out.1 {
                // Whatever else it prints is not read.
                let _ = child.kill();
            }
            (out, errors.join().unwrap_or_default())
        });
        let status = child.wait().map_err(self.io_error(name, id))?;
        Ok(Captured {
            status,
            stdout,
            stdout_over,
            stderr,
        })
    }

    /// Runs a subcommand whose output is not wanted; fails unless the
    /// runtime reports success.
    fn simple(&self, name: &'static str, id: &str, command: Command) -> Result<(), RuncError> {
        let mark = self.log_mark();
        let out = self.capture(name, id, command, None, None)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failed(name, id, out.status, self.errors(mark, &out.stderr)))
        }
    }

    /// Runs a subcommand that prints JSON and parses it.
    fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &'static str,
        id: &str,
        command: Command,
        input: Option<&[u8]>,
        parse: impl FnOnce(&[u8]) -> Result<T, serde_json::Error>,
    ) -> Result<T, RuncError> {
        let mark = self.log_mark();
        let out = self.capture(name, id, command, input, Some(OUTPUT_LIMIT))?;
        if out.stdout_over {
            return Err(RuncError::TooLarge {
                binary: self.binary.clone(),
                command: name,
                id: id.to_string(),
                limit: OUTPUT_LIMIT,
            });
        }
        if !out.status.success() {
            return Err(self.failed(name, id, out.status, self.errors(mark, &out.stderr)));
        }
        parse(&out.stdout).map_err(|source| RuncError::Parse {
            binary: self.binary.clone(),
            command: name,
            id: id.to_string(),
            source,
        })
    }

    fn create_command(&self, id: &str, bundle: &Path, options: &CreateOptions) -> Command {
        let mut command = self.command("create");
        command.arg("--bundle").arg(bundle);
        if let Some(pid_file) = &options.pid_file {
            command.arg("--pid-file").arg(pid_file);
        }
        if let Some(socket) = &options.console_socket {
            command.arg("--console-socket").arg(socket);
        }
        if options.no_pivot {
            command.arg("--no-pivot");
        }
        if options.no_new_keyring {
            command.arg("--no-new-keyring");
        }
        command.arg(id);
        command
    }

    /// `create`: sets up the bundle's container, its process waiting for
    /// `start`. The process gets the streams of `options.io` (the runtime
    /// passes its own through), or a terminal sent to the console socket.
    pub fn create(&self, id: &str, bundle: &Path, options: CreateOptions) -> Result<(), RuncError> {
        let mut command = self.create_command(id, bundle, &options);
        let CreateOptions {
            io,
            new_process_group,
            ..
        } = options;
        if new_process_group {
            command.process_group(0);
        }
        set_io(&mut command, io);
        let mark = self.log_mark();
        let status = command.status().map_err(self.spawn_error("create", id))?;
        if status.success() {
            Ok(())
        } else {
            // The runtime's error output went where the process's goes.
            Err(self.failed("create", id, status, self.errors(mark, &[])))
        }
    }

    fn start_command(&self, id: &str) -> Command {
        let mut command = self.command("start");
        command.arg(id);
        command
    }

    /// `start`: lets a created container's process run its command.
    pub fn start(&self, id: &str) -> Result<(), RuncError> {
        self.simple("start", id, self.start_command(id))
    }

    fn run_command(&self, id: &str, bundle: &Path, options: &RunOptions) -> Command {
        let mut command = self.command("run");
        command.arg("--bundle").arg(bundle);
        if let Some(pid_file) = &options.pid_file {
            command.arg("--pid-file").arg(pid_file);
        }
        if options.no_pivot {
            command.arg("--no-pivot");
        }
        if options.no_new_keyring {
            command.arg("--no-new-keyring");
        }
        command.arg(id);
        command
    }

    /// `run` in the foreground: creates and starts the bundle's container
    /// and waits for it, each output line going to `on_line`. The command's
    /// own exit code is no error; the runtime's errors, read from its log,
    /// come with a non-zero code.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        options: &RunOptions,
        on_line: &(dyn Fn(Stream, &str) + Sync),
    ) -> Result<RunExit, RuncError> {
        let mark = self.log_mark();
        let mut command = self.run_command(id, bundle, options);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        // The runtime dies with its caller, so a killed build cannot leave a
        // runtime process waiting on a container forever.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(self.spawn_error("run", id))?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        std::thread::scope(|scope| {
            let pump = |reader: Box<dyn Read + Send>, stream: Stream| {
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
        let status = child.wait().map_err(self.io_error("run", id))?;
        let code = exit_code(status);
        let tail = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let runtime_errors = match (&self.log, code) {
            (Some(log), code) if code != 0 => log_errors(log, mark),
            _ => Vec::new(),
        };
        Ok(RunExit {
            code,
            tail,
            runtime_errors,
        })
    }

    fn state_command(&self, id: &str) -> Command {
        let mut command = self.command("state");
        command.arg(id);
        command
    }

    /// `state`: the container's state, from at most [`OUTPUT_LIMIT`] bytes
    /// of output.
    pub fn state(&self, id: &str) -> Result<State, RuncError> {
        self.json("state", id, self.state_command(id), None, State::parse)
    }

    fn kill_command(&self, id: &str, signal: &str, all: bool) -> Command {
        let mut command = self.command("kill");
        if all {
            command.arg("--all");
        }
        command.arg(id).arg(signal);
        command
    }

    /// `kill`: sends `signal` (a name such as `SIGTERM` or a number) to the
    /// container's init process, or with `all` to all its processes.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuncError> {
        self.simple("kill", id, self.kill_command(id, signal, all))
    }

    fn delete_command(&self, id: &str, force: bool) -> Command {
        let mut command = self.command("delete");
        if force {
            command.arg("--force");
        }
        command.arg(id);
        command
    }

    /// `delete`: removes a stopped container's state and cgroup; with
    /// `force`, a running one's too, its processes killed.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuncError> {
        self.simple("delete", id, self.delete_command(id, force))
    }

    fn exec_argv(&self, id: &str, process: ProcessSpec<'_>, options: &ExecOptions) -> Command {
        let mut command = self.command("exec");
        let flags = match process {
            ProcessSpec::File(path) => {
                command.arg("--process").arg(path);
                None
            }
            ProcessSpec::Flags(flags) => Some(flags),
        };
        if let Some(flags) = flags {
            if let Some((uid, gid)) = flags.user {
                command.arg("--user").arg(format!("{uid}:{gid}"));
            }
            for gid in &flags.additional_gids {
                command.arg("--additional-gids").arg(gid.to_string());
            }
            if let Some(cwd) = &flags.cwd {
                command.arg("--cwd").arg(cwd);
            }
            for entry in &flags.env {
                command.arg("--env").arg(entry);
            }
        }
        if options.tty {
            command.arg("--tty");
        }
        if let Some(socket) = &options.console_socket {
            command.arg("--console-socket").arg(socket);
        }
        if let Some(pid_file) = &options.pid_file {
            command.arg("--pid-file").arg(pid_file);
        }
        if options.detach {
            command.arg("--detach");
        }
        command.arg(id);
        if let Some(flags) = flags {
            command.args(&flags.args);
        }
        command
    }

    /// The command line of `exec`, with the streams of `options.io`, for a
    /// caller that runs it itself (replacing itself with it, say, so the
    /// terminal, signals and exit code pass straight through).
    pub fn exec_command(
        &self,
        id: &str,
        process: ProcessSpec<'_>,
        options: ExecOptions,
    ) -> Command {
        let mut command = self.exec_argv(id, process, &options);
        set_io(&mut command, options.io);
        command
    }

    /// `exec`: runs another process in the running container and waits for
    /// the runtime: for the process's end, or with `detach` for its start.
    /// Returns the process's exit code (0 when detached); an exit the
    /// runtime logged errors for is the runtime's failure.
    pub fn exec(
        &self,
        id: &str,
        process: ProcessSpec<'_>,
        options: ExecOptions,
    ) -> Result<i32, RuncError> {
        let mark = self.log_mark();
        let status = self
            .exec_command(id, process, options)
            .status()
            .map_err(self.spawn_error("exec", id))?;
        let code = exit_code(status);
        if code != 0
            && let Some(log) = &self.log
        {
            let errors = log_errors(log, mark);
            if !errors.is_empty() {
                return Err(self.failed("exec", id, status, errors));
            }
        }
        Ok(code)
    }

    fn pause_command(&self, id: &str) -> Command {
        let mut command = self.command("pause");
        command.arg(id);
        command
    }

    /// `pause`: freezes every process of the container.
    pub fn pause(&self, id: &str) -> Result<(), RuncError> {
        self.simple("pause", id, self.pause_command(id))
    }

    fn resume_command(&self, id: &str) -> Command {
        let mut command = self.command("resume");
        command.arg(id);
        command
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), RuncError> {
        self.simple("resume", id, self.resume_command(id))
    }

    fn update_command(&self, id: &str) -> Command {
        let mut command = self.command("update");
        command.args(["--resources", "-"]).arg(id);
        command
    }

    /// `update`: sets the container's resource limits to `resources` (a
    /// runtime-spec `linux.resources`, given on the runtime's input).
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), RuncError> {
        let input = serde_json::to_vec(resources).map_err(|source| RuncError::Input {
            command: "update",
            id: id.to_string(),
            source,
        })?;
        let mark = self.log_mark();
        let out = self.capture("update", id, self.update_command(id), Some(&input), None)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failed("update", id, out.status, self.errors(mark, &out.stderr)))
        }
    }

    fn events_command(&self, id: &str) -> Command {
        let mut command = self.command("events");
        command.arg("--stats").arg(id);
        command
    }

    /// `events --stats`: one reading of the container's statistics.
    pub fn stats(&self, id: &str) -> Result<Stats, RuncError> {
        self.json("events", id, self.events_command(id), None, parse_stats)
    }

    fn ps_command(&self, id: &str) -> Command {
        let mut command = self.command("ps");
        command.args(["--format", "json"]).arg(id);
        command
    }

    /// `ps`: the pids of the container's processes, as the host sees them.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>, RuncError> {
        self.json("ps", id, self.ps_command(id), None, |bytes| {
            // runc prints `null` for a container with no process.
            Ok(serde_json::from_slice::<Option<Vec<i32>>>(bytes)?.unwrap_or_default())
        })
    }
}

/// Parses the first event of `events --stats`: `{"type":"stats","id":…,
/// "data":{…}}`.
fn parse_stats(bytes: &[u8]) -> Result<Stats, serde_json::Error> {
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        data: Option<Stats>,
    }
    let mut events = serde_json::Deserializer::from_slice(bytes).into_iter::<Event>();
    loop {
        match events.next() {
            Some(Ok(Event {
                kind,
                data: Some(stats),
            })) if kind == "stats" => return Ok(stats),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(serde::de::Error::custom("no stats event in the output"));
            }
        }
    }
}

/// Gives `command` the streams of `io`, `/dev/null` where it has none.
fn set_io(command: &mut Command, io: ProcessIo) {
    command
        .stdin(io.stdin.unwrap_or_else(Stdio::null))
        .stdout(io.stdout.unwrap_or_else(Stdio::null))
        .stderr(io.stderr.unwrap_or_else(Stdio::null));
}

/// The exit code of a process, 128 + N for a death by signal N.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn argv(command: &Command) -> Vec<String> {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn each_subcommand_has_runcs_command_line() {
        let plain = Runc::new("runc");
        let full = Runc::new("/bin/rt").root("/r").log("/l");
        let gid = ExecProcess {
            args: vec!["sh".into(), "-c".into(), "--x".into()],
            env: vec!["A=1".into(), "B=2".into()],
            cwd: Some("/w".into()),
            user: Some((1, 2)),
            additional_gids: vec![3, 4],
        };
        let cases: Vec<(Command, &str)> = vec![
            (
                plain.create_command("c", Path::new("/b"), &CreateOptions::default()),
                "runc create --bundle /b c",
            ),
            (
                full.create_command(
                    "c",
                    Path::new("/b"),
                    &CreateOptions {
                        pid_file: Some("/b/pid".into()),
                        console_socket: Some("/s".into()),
                        no_pivot: true,
                        no_new_keyring: true,
                        ..CreateOptions::default()
                    },
                ),
                "/bin/rt --root /r --log /l --log-format json create --bundle /b --pid-file /b/pid \
                 --console-socket /s --no-pivot --no-new-keyring c",
            ),
            (
                full.start_command("c"),
                "/bin/rt --root /r --log /l --log-format json start c",
            ),
            (
                plain.run_command(
                    "c",
                    Path::new("/b"),
                    &RunOptions {
                        pid_file: Some("/b/pid".into()),
                        ..RunOptions::default()
                    },
                ),
                "runc run --bundle /b --pid-file /b/pid c",
            ),
            (plain.state_command("c"), "runc state c"),
            (
                plain.kill_command("c", "SIGTERM", false),
                "runc kill c SIGTERM",
            ),
            (plain.kill_command("c", "9", true), "runc kill --all c 9"),
            (plain.delete_command("c", false), "runc delete c"),
            (plain.delete_command("c", true), "runc delete --force c"),
            (
                plain.exec_argv("c", ProcessSpec::Flags(&gid), &ExecOptions::default()),
                "runc exec --user 1:2 --additional-gids 3 --additional-gids 4 --cwd /w --env A=1 \
                 --env B=2 c sh -c --x",
            ),
            (
                plain.exec_argv(
                    "c",
                    ProcessSpec::File(Path::new("/p.json")),
                    &ExecOptions {
                        tty: true,
                        console_socket: Some("/s".into()),
                        pid_file: Some("/pid".into()),
                        detach: true,
                        ..ExecOptions::default()
                    },
                ),
                "runc exec --process /p.json --tty --console-socket /s --pid-file /pid --detach c",
            ),
            (plain.pause_command("c"), "runc pause c"),
            (plain.resume_command("c"), "runc resume c"),
            (plain.update_command("c"), "runc update --resources - c"),
            (plain.events_command("c"), "runc events --stats c"),
            (plain.ps_command("c"), "runc ps --format json c"),
        ];
        for (command, expected) in cases {
            let expected: Vec<&str> = expected.split_whitespace().collect();
            assert_eq!(argv(&command), expected);
        }
        let systemd = Runc {
            systemd_cgroup: true,
            ..Runc::new("runc")
        };
        assert_eq!(
            argv(&systemd.start_command("c")),
            ["runc", "--systemd-cgroup", "start", "c"]
        );
        assert_eq!(
            argv(
                &Runtime {
                    binary: "rt".into()
                }
                .at(Path::new("/r"))
                .state_command("c")
            ),
            ["rt", "--root", "/r", "state", "c"]
        );
    }

    #[test]
    fn state_parses_runcs_json_and_refuses_anything_else() {
        let state = State::parse(
            br#"{"ociVersion":"1.0.2-dev","id":"c","pid":42,"status":"running",
                "bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z",
                "owner":"","annotations":{"a":"b"},"extra":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(state.id, "c");
        assert_eq!(state.pid, 42);
        assert_eq!(state.status, Status::Running);
        assert_eq!(state.rootfs, PathBuf::from("/b/rootfs"));
        assert_eq!(state.annotations.unwrap()["a"], "b");
        for (text, status) in [
            ("created", Status::Created),
            ("paused", Status::Paused),
            ("pausing", Status::Pausing),
            ("stopped", Status::Stopped),
            ("exploded", Status::Unknown),
        ] {
            let json = format!(r#"{{"id":"c","status":"{text}","annotations":null}}"#);
            assert_eq!(State::parse(json.as_bytes()).unwrap().status, status);
        }
        for hostile in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"id\":\"c\"}",
            b"{\"id\":7,\"status\":\"running\"}",
            b"{\"id\":\"c\",\"status\":\"running\",\"pid\":99999999999}",
            b"{\"id\":\"c\",\"status\":\"running\"",
            b"\xff\xfe",
        ] {
            assert!(State::parse(hostile).is_err(), "{hostile:?}");
        }
        let deep = "[".repeat(100_000);
        assert!(State::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn stats_and_ps_parse_their_events() {
        let stats = parse_stats(
            br#"{"type":"stats","id":"c","data":{"cpu":{"usage":{"total":5,"kernel":2,"user":3}},
                "memory":{"cache":1,"usage":{"limit":100,"usage":50,"max":60,"failcnt":0}},
                "pids":{"current":2,"limit":10},"hugetlb":{}}}"#,
        )
        .unwrap();
        assert_eq!(stats.cpu.usage.total, 5);
        assert_eq!(stats.memory.usage.limit, 100);
        assert_eq!(stats.pids.current, 2);
        assert!(parse_stats(br#"{"type":"oom","id":"c"}"#).is_err());
        assert!(parse_stats(b"").is_err());
        assert_eq!(
            parse_stats(br#"{"type":"oom","id":"c"} {"type":"stats","id":"c","data":{}}"#).unwrap(),
            Stats::default()
        );
    }

    /// A fake runtime: a shell script that ignores its arguments and runs
    /// `body`.
    fn fake_runtime(dir: &Path, body: &str) -> Runc {
        let path = dir.join("fake-runtime");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Runc::new(path).root(dir.join("root"))
    }

    #[test]
    fn endless_or_broken_output_is_refused_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let endless = fake_runtime(dir.path(), "exec yes '{\"id\":\"c\",'");
        assert!(matches!(
            endless.state("c"),
            Err(RuncError::TooLarge {
                command: "state",
                limit: OUTPUT_LIMIT,
                ..
            })
        ));
        let broken = fake_runtime(dir.path(), "echo '{\"id\":\"c\"'");
        let err = broken.state("c").unwrap_err();
        assert!(
            matches!(
                err,
                RuncError::Parse {
                    command: "state",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("of container c"), "{err}");
        let ok = fake_runtime(
            dir.path(),
            "echo '{\"id\":\"c\",\"status\":\"paused\",\"pid\":7}'",
        );
        assert_eq!(ok.state("c").unwrap().status, Status::Paused);
        let ps = fake_runtime(dir.path(), "echo null");
        assert_eq!(ps.ps("c").unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn a_failure_names_the_subcommand_and_carries_the_runtimes_words() {
        let dir = tempfile::tempdir().unwrap();
        // Without a log, the last lines of the error output.
        let loud = fake_runtime(
            dir.path(),
            "i=0; while [ $i -lt 20000 ]; do echo noise >&2; i=$((i+1)); done; \
             echo 'container \"c\" does not exist' >&2; exit 1",
        );
        let err = loud.kill("c", "SIGTERM", false).unwrap_err();
        assert_eq!(
            err.runtime_errors(),
            ["noise", "container \"c\" does not exist"]
        );
        let text = err.to_string();
        assert!(text.contains("failed `kill` of container c"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        // With a log, its error lines since the call began.
        let log = dir.path().join("log.json");
        std::fs::write(&log, "{\"level\":\"error\",\"msg\":\"an old one\"}\n").unwrap();
        let logged = fake_runtime(
            dir.path(),
            &format!(
                "echo '{{\"level\":\"info\",\"msg\":\"x\"}}' >> {log}; \
                 echo '{{\"level\":\"error\",\"msg\":\"no such container\"}}' >> {log}; \
                 echo 'text' >&2; exit 3",
                log = log.display()
            ),
        )
        .log(&log);
        let err = logged.delete("c", true).unwrap_err();
        assert_eq!(err.runtime_errors(), ["no such container"]);
        let err = Runc::new(dir.path().join("missing"))
            .start("c")
            .unwrap_err();
        assert!(
            matches!(
                err,
                RuncError::Spawn {
                    command: "start",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn update_sends_the_resources_on_standard_input() {
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got");
        let runtime = fake_runtime(dir.path(), &format!("cat > {}", got.display()));
        let resources: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":7}}"#).unwrap();
        runtime.update("c", &resources).unwrap();
        let sent: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&got).unwrap()).unwrap();
        assert_eq!(sent["pids"]["limit"], 7);
    }

    #[test]
    fn a_pidfd_pins_a_live_process_only() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(pidfd_open(me).is_ok());
        assert!(pidfd_open(0).is_err());
        assert!(pidfd_open(-1).is_err());
    }

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
            log_errors(&log, 0),
            ["failed 3", "failed 4", "failed 5", "failed 6", "failed 7"]
        );
        assert!(log_errors(&dir.path().join("missing"), 0).is_empty());
    }
}
