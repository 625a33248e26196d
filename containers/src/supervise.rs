//! Running a created container to its end: the runtime's `create` and
//! `start`, then waiting for the container's process as its parent.
//!
//! The supervising process (berth itself in the foreground, the monitor of a
//! detached container) makes itself a child subreaper, so when the runtime's
//! `create` exits the container's init process becomes its child and its exit
//! status (a code, or the signal that killed it) is read with `waitpid`. In the
//! foreground, the signals a user sends berth are passed to the container with
//! the runtime's `kill`. At the end the runtime state and the root filesystem's
//! mount go, the record gets the exit code, and `--rm` removes the directory.

use super::console::{self, ConsoleSocket, RawMode};
use super::logfile::{LOG_FILE, LogWriter};
use super::{ContainerError, ContainerRecord, State, cio, container_dir, lookup};
use crate::runc::{CreateOptions, ProcessIo, Runc, RuncError, Stream};
use berth_store::{Store, tmp};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Where the container's standard streams go.
#[derive(Debug)]
pub enum Io {
    /// To these descriptors (berth's own, in the foreground). `stdin` is
    /// `None` without `-i`.
    Attached {
        /// The input, with `-i`.
        stdin: Option<OwnedFd>,
        /// The output.
        stdout: OwnedFd,
        /// The error output.
        stderr: OwnedFd,
    },
    /// To the container's log file (a detached container).
    Logged,
}

/// The signals berth passes on to a foreground container.
pub const FORWARDED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// How to run a created container.
#[derive(Debug)]
pub struct Supervision<'a> {
    /// The store holding it.
    pub store: &'a Store,
    /// Its record (state `Created`).
    pub record: ContainerRecord,
    /// Where its streams go.
    pub io: Io,
    /// Whether it has a terminal (`-t`).
    pub tty: bool,
    /// Whether signals berth receives go to the container.
    pub forward_signals: bool,
}

/// Blocks `signals` in the calling thread (and the threads it starts
/// afterwards), so they wait for [`run`] to pass them on. Call it before
/// starting any thread.
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: the set is initialised; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset uses it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Makes the calling process the reaper of its orphaned descendants.
fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits for the process `pid` (a child) and returns its exit code, 128 + N
/// for a death by signal N.
fn wait_exit(pid: i32) -> io::Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into the integer it is given.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return Ok(128 + libc::WTERMSIG(status));
            }
            continue;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps orphans the runtime left to the subreaper, without waiting.
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: as above; WNOHANG never blocks.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            return;
        }
    }
}

/// The client of a container's runtime, with the container's own state
/// directory.
pub fn runtime_of(store: &Store, record: &ContainerRecord) -> Runc {
    Runc::new(&record.runtime).root(container_dir(store, &record.id).join("runtime"))
}

/// A runtime error and its causes, for a message of its own.
fn chain(err: &RuncError) -> String {
    let mut message = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    message
}

/// The path of the console socket: short, since socket paths are limited to
/// 108 bytes and store paths can be long.
fn console_path(id: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "berth-{}-{}.sock",
        id.get(..12).unwrap_or(id),
        std::process::id()
    ))
}

/// The exit code Docker gives a start failure: 127 or 126 when the command
/// cannot run in the image, else 125.
fn start_failure_code(dir: &Path) -> i32 {
    let process = BundleProcess::read(dir);
    let command = process.args.first().map(String::as_str).unwrap_or_default();
    match lookup::check(&dir.join("rootfs"), command, &process.cwd, &process.env) {
        Ok(()) => 125,
        Err(why) => why.exit_code(),
    }
}

/// The process a container's bundle (`dir/config.json`) runs; empty where
/// the config cannot be read.
pub(super) struct BundleProcess {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// The environment.
    pub env: Vec<String>,
    /// The working directory (`/` if none).
    pub cwd: String,
}

impl BundleProcess {
    pub(super) fn read(dir: &Path) -> BundleProcess {
        let config: serde_json::Value = fs::read(dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let process = &config["process"];
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        BundleProcess {
            args: strings(&process["args"]),
            env: strings(&process["env"]),
            cwd: process["cwd"].as_str().unwrap_or("/").to_owned(),
        }
    }
}

/// The streams the runtime's `create` passes to the container, and what
/// berth does with the other ends.
#[derive(Default)]
struct Streams {
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    /// Berth's terminal and the pipe the container reads it from.
    stdin_feed: Option<(OwnedFd, io::PipeWriter)>,
    /// The output pipes to copy into the log, and where each also goes
    /// as it comes (berth's own streams in the foreground).
    log_pipes: Option<[(io::PipeReader, Option<OwnedFd>); 2]>,
    /// The runtime's error output, when it is not the container's.
    runtime_err: Option<io::PipeReader>,
}

fn streams(io: &Io, tty: bool) -> io::Result<Streams> {
    let mut s = Streams::default();
    if tty {
        // The container's streams are the terminal; what the runtime says
        // goes to a pipe, for the error message.
        let (reader, writer) = io::pipe()?;
        set_nonblocking(&reader)?;
        s.stderr = Some(writer.into());
        s.runtime_err = Some(reader);
        return Ok(s);
    }
    match io {
        Io::Attached {
            stdin,
            stdout,
            stderr,
        } => {
            // Through pipes, so the output is logged as it is shown.
            let (out_r, out_w) = io::pipe()?;
            let (err_r, err_w) = io::pipe()?;
            s.stdout = Some(out_w.into());
            s.stderr = Some(err_w.into());
            s.log_pipes = Some([
                (out_r, Some(stdout.try_clone()?)),
                (err_r, Some(stderr.try_clone()?)),
            ]);
            if let Some(input) = stdin {
                if console::is_terminal(input.as_fd()) {
                    // A terminal stays berth's: the container, in its own
                    // process group, reads a pipe berth fills instead of
                    // being stopped for reading from the background.
                    let (reader, writer) = io::pipe()?;
                    s.stdin = Some(reader.into());
                    s.stdin_feed = Some((input.try_clone()?, writer));
                } else {
                    s.stdin = Some(input.try_clone()?.into());
                }
            }
        }
        Io::Logged => {
            let (out_r, out_w) = io::pipe()?;
            let (err_r, err_w) = io::pipe()?;
            s.stdout = Some(out_w.into());
            s.stderr = Some(err_w.into());
            s.log_pipes = Some([(out_r, None), (err_r, None)]);
        }
    }
    Ok(s)
}

fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_fd().as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs the container to its end and returns its exit code. `on_started`
/// hears of it once its process runs. A container that cannot start is
/// removed entirely and the error carries Docker's exit code for it.
pub fn run(
    supervision: Supervision<'_>,
    on_started: &mut dyn FnMut(&ContainerRecord),
) -> Result<i32, ContainerError> {
    let Supervision {
        store,
        mut record,
        io,
        tty,
        forward_signals,
    } = supervision;
    let dir = container_dir(store, &record.id);
    let runtime = runtime_of(store, &record);
    let id = record.id.clone();
    // A container that ran before (a restart) stays, to be recorded as
    // exited; a new one goes entirely.
    let fresh = matches!(record.state, State::Created);
    let fail = |message: String, code: i32| {
        // A container already gone is what is wanted.
        let _ = runtime.delete(&id, true);
        if fresh {
            let _ = tmp::remove_tree(&dir);
        }
        ContainerError::Start { message, code }
    };
    if let Err(e) = become_subreaper() {
        return Err(fail(format!("becoming a child subreaper: {e}"), 125));
    }
    let console = match tty
        .then(|| ConsoleSocket::listen(&console_path(&record.id)))
        .transpose()
    {
        Ok(console) => console,
        Err(e) => return Err(fail(format!("listening on a console socket: {e}"), 125)),
    };
    let mut streams = match streams(&io, tty) {
        Ok(streams) => streams,
        Err(e) => {
            return Err(fail(
                format!("setting up the container's streams: {e}"),
                125,
            ));
        }
    };
    let log = match LogWriter::open(&dir.join(LOG_FILE)) {
        Ok(log) => Arc::new(log),
        Err(e) => return Err(fail(format!("opening the container log: {e}"), 125)),
    };
    let created = runtime.create(
        &record.id,
        &dir,
        CreateOptions {
            pid_file: Some(dir.join("pid")),
            console_socket: console.as_ref().map(|c| c.path().to_path_buf()),
            io: ProcessIo {
                stdin: streams.stdin.take(),
                stdout: streams.stdout.take(),
                stderr: streams.stderr.take(),
            },
            // Its own process group: a terminal's Ctrl-C reaches the
            // container once, through berth, as with Docker's sig-proxy.
            new_process_group: true,
            ..CreateOptions::default()
        },
    );
    let mut pumps: Vec<JoinHandle<()>> = Vec::new();
    if let Some([stdout, stderr]) = streams.log_pipes.take() {
        for ((reader, shown), stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
            let log = Arc::clone(&log);
            pumps.push(std::thread::spawn(move || {
                if let Err(e) = log.pump(reader, stream, shown.map(fs::File::from)) {
                    tracing::warn!(error = %e, "writing the container log");
                }
            }));
        }
    }
    let created = match created {
        Ok(()) => Ok(()),
        Err(RuncError::Failed { status, .. }) => Err(status.to_string()),
        Err(e) => Err(chain(&e)),
    };
    if let Err(status) = created {
        let mut said = String::new();
        if let Some(mut reader) = streams.runtime_err.take() {
            let _ = reader.read_to_string(&mut said);
        }
        drop(console);
        for pump in pumps {
            let _ = pump.join();
        }
        let logged = matches!(io, Io::Logged);
        let message = creation_failure(&runtime, &record, &dir, &status, said, logged);
        return Err(fail(message, start_failure_code(&dir)));
    }
    drop(streams.runtime_err.take());

    let pid = match fs::read_to_string(dir.join("pid"))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    {
        Some(pid) => pid,
        None => {
            return Err(fail(
                format!(
                    "the runtime {} wrote no pid file for container {}",
                    runtime.binary.display(),
                    record.short_id()
                ),
                125,
            ));
        }
    };
    let kill_and_fail = |message: String, code: i32| {
        // SAFETY: kill has no memory-safety preconditions; the pid is the
        // container's init, our child now.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait_exit(pid);
        fail(message, code)
    };

    let mut raw_mode = None;
    let mut master_for_resize = None;
    if let Some(console) = console {
        let master = match console.master() {
            Ok(master) => master,
            Err(e) => return Err(kill_and_fail(format!("receiving the terminal: {e}"), 125)),
        };
        raw_mode = attach_terminal(&master, &io, &log, &mut pumps);
        master_for_resize = Some(master);
    }
    if let Some((source, mut writer)) = streams.stdin_feed.take() {
        // Never joined, as above; the pipe closes when berth exits.
        std::thread::spawn(move || {
            let _ = io::copy(&mut fs::File::from(source), &mut writer);
        });
    }

    let started = super::now();
    record.state = State::Running {
        pid,
        pid_start: super::process_start(pid).unwrap_or(0),
        started,
        owner: {
            let me = std::process::id() as i32;
            (me, super::process_start(me).unwrap_or(0))
        },
    };
    if let Err(e) = super::save(store, &record) {
        // The message carries the causes: Start keeps no source.
        let causes = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source());
        let message = causes.map(ToString::to_string).collect::<Vec<_>>();
        return Err(kill_and_fail(message.join(": "), 125));
    }
    match runtime.start(&record.id) {
        Ok(()) => {}
        Err(RuncError::Failed { errors, .. }) => {
            let code = start_failure_code(&dir);
            return Err(kill_and_fail(
                format!(
                    "the runtime {} could not start container {}: {}",
                    runtime.binary.display(),
                    record.short_id(),
                    errors.join("\n")
                ),
                code,
            ));
        }
        Err(e) => return Err(kill_and_fail(chain(&e), 125)),
    }
    on_started(&record);

    let done = Arc::new(AtomicBool::new(false));
    let forwarder = forward_signals.then(|| {
        let done = Arc::clone(&done);
        let runtime = runtime.clone();
        let id = record.id.clone();
        let resize = match (&io, &master_for_resize) {
            (Io::Attached { stdout, .. }, Some(master)) => {
                match (stdout.try_clone(), master.try_clone()) {
                    (Ok(from), Ok(to)) => Some((from, to)),
                    _ => None,
                }
            }
            _ => None,
        };
        std::thread::spawn(move || forward(&done, &runtime, &id, resize))
    });
    let exit = wait_exit(pid);
    done.store(true, Ordering::SeqCst);
    if let Some(forwarder) = forwarder {
        let _ = forwarder.join();
    }
    drop(master_for_resize);
    for pump in pumps {
        let _ = pump.join();
    }
    drop(raw_mode);
    let code = match exit {
        Ok(code) => code,
        // A runtime that keeps a process between berth and the container
        // leaves no child to wait for: watch the process instead; its code
        // is unknown (Docker's 255).
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
            tracing::warn!(
                pid,
                "the container's process is not berth's child; polling it"
            );
            while record.is_running() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            255
        }
        Err(e) => return Err(cio("waiting for the container process of", &dir)(e)),
    };
    if !super::restart::keep_for_restart(store, &record, started, code)? {
        finish(store, &record, started, code)?;
    }
    reap_orphans();
    Ok(code)
}

/// The message for a failed `create`: the runtime's own words, from its
/// error output or, for a detached container, from the log it went to.
fn creation_failure(
    runtime: &Runc,
    record: &ContainerRecord,
    dir: &Path,
    status: &str,
    mut said: String,
    logged: bool,
) -> String {
    if logged {
        let mut err = Vec::new();
        let _ = super::logfile::copy(
            &dir.join(LOG_FILE),
            &mut io::sink(),
            &mut err,
            super::logfile::CopyOptions::default(),
            &|| false,
        );
        said.push_str(&String::from_utf8_lossy(&err));
    }
    let said = said.trim();
    format!(
        "the runtime {} could not create container {} ({status}){}",
        runtime.binary.display(),
        record.short_id(),
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    )
}

/// Connects the container's terminal (`master`) to the log and, in the
/// foreground, to berth's terminal, put in raw mode and sized like it (the
/// mode to restore is returned).
fn attach_terminal(
    master: &OwnedFd,
    io: &Io,
    log: &Arc<LogWriter>,
    pumps: &mut Vec<JoinHandle<()>>,
) -> Option<RawMode> {
    let mut raw_mode = None;
    let mut shown = None;
    if let Io::Attached { stdin, stdout, .. } = io {
        if console::is_terminal(stdout.as_fd()) {
            let _ = console::copy_window_size(stdout.as_fd(), master.as_fd());
        }
        if let Some(input) = stdin {
            if console::is_terminal(input.as_fd()) {
                raw_mode = RawMode::enter(input.as_fd()).ok();
            }
            if let (Ok(from), Ok(to)) = (input.try_clone(), master.try_clone()) {
                // Never joined: it blocks reading berth's input until berth exits.
                std::thread::spawn(move || console::copy(from, to));
            }
        }
        shown = stdout.try_clone().ok().map(fs::File::from);
    }
    if let Ok(from) = master.try_clone() {
        let log = Arc::clone(log);
        pumps.push(std::thread::spawn(move || {
            if let Err(e) = log.pump(fs::File::from(from), Stream::Stdout, shown) {
                tracing::warn!(error = %e, "writing the container log");
            }
        }));
    }
    raw_mode
}

/// Passes the blocked signals to the container until `done`; with a
/// terminal, a window size change resizes the container's terminal instead.
fn forward(done: &AtomicBool, runtime: &Runc, id: &str, resize: Option<(OwnedFd, OwnedFd)>) {
    let set = sigset(FORWARDED);
    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while !done.load(Ordering::SeqCst) {
        // SAFETY: the set is initialised; no siginfo is asked for.
        let signal = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout) };
        if signal <= 0 {
            continue;
        }
        if signal == libc::SIGWINCH
            && let Some((from, to)) = &resize
        {
            let _ = console::copy_window_size(from.as_fd(), to.as_fd());
            continue;
        }
        tracing::debug!(signal, container = %id, "forwarding a signal");
        // A container that ended meanwhile has nothing to signal.
        if let Err(e @ RuncError::Spawn { .. }) = runtime.kill(id, &signal.to_string(), false) {
            tracing::warn!(error = %chain(&e), signal, "forwarding a signal to the container");
        }
    }
}

/// Records the exit and cleans up: the runtime's state, the root
/// filesystem's mount, and with `--rm` the whole directory. A container
/// removed meanwhile (`berth rm -f`) is left alone.
pub fn finish(
    store: &Store,
    record: &ContainerRecord,
    started: i64,
    code: i32,
) -> Result<(), ContainerError> {
    let dir = container_dir(store, &record.id);
    if !dir.join(super::RECORD_FILE).exists() {
        return Ok(());
    }
    let _lock = super::lock(store, &record.id)?;
    if !dir.join(super::RECORD_FILE).exists() {
        return Ok(());
    }
    // A container already gone is what is wanted.
    let _ = runtime_of(store, record).delete(&record.id, true);
    tmp::unmount_under(&dir);
    if record.auto_remove {
        tmp::remove_tree(&dir)?;
        return Ok(());
    }
    let mut record = super::load(store, &record.id)?;
    record.state = State::Exited {
        code,
        started,
        finished: super::now(),
    };
    super::save(store, &record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_start_failure_gets_dockers_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("rootfs/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("tool"), b"").unwrap();
        fs::set_permissions(bin.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(bin.join("data"), b"").unwrap();
        for (command, code) in [
            ("tool", 125),
            ("/bin/tool", 125),
            ("nope", 127),
            ("data", 126),
        ] {
            let config = serde_json::json!({
                "process": {"args": [command], "env": ["PATH=/bin"], "cwd": "/"}
            });
            fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
            assert_eq!(start_failure_code(dir.path()), code, "{command}");
        }
    }
}
