//! Cancelling a build on Ctrl-C, `SIGTERM` or `SIGHUP`: its `RUN` containers
//! are stopped and deleted (cgroups included) and its staging entries
//! removed before berth exits with 128 + the signal, instead of leaving them
//! for the next command that opens the store.

use crate::printer::Printer;
use anyhow::Context as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a cancelling signal arrived; the signal thread then owns the
/// process's exit.
static CANCELLING_NOW: AtomicBool = AtomicBool::new(false);

/// The signals that cancel a build.
const CANCELLING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Blocks the cancelling signals and starts the thread that waits for them.
/// Call it before any other thread starts, so that every thread inherits
/// the mask and the signals reach only that waiting thread. Child processes
/// start with an empty mask (the standard library resets it).
pub fn install(tmp_dir: PathBuf, printer: Printer) -> anyhow::Result<()> {
    let set = signal_set();
    // SAFETY: the set is initialised; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc))
            .context("blocking the signals that cancel a build");
    }
    std::thread::Builder::new()
        .name("build-cancel".into())
        .spawn(move || wait_and_cancel(&set, &tmp_dir, printer))
        .context("starting the build's signal thread")?;
    Ok(())
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset uses it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in CANCELLING {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

fn wait_and_cancel(set: &libc::sigset_t, tmp_dir: &std::path::Path, printer: Printer) {
    let mut signal = 0;
    // SAFETY: the set is initialised and the signals in it are blocked.
    let rc = unsafe { libc::sigwait(set, &mut signal) };
    if rc != 0 {
        // Only an invalid set fails; the build then runs on uncancellable.
        tracing::warn!(err = %std::io::Error::from_raw_os_error(rc), "waiting for the signals that cancel a build");
        return;
    }
    CANCELLING_NOW.store(true, Ordering::SeqCst);
    let _ = writeln!(
        printer.stderr(),
        "\nbuild cancelled by {}: stopping its containers",
        signal_name(signal)
    );
    if let Err(err) = berth_store::tmp::remove_own(tmp_dir) {
        let err = anyhow::Error::new(err).context("cleaning up the cancelled build");
        printer.warn(crate::printer::report(err.as_ref()));
    }
    std::process::exit(128 + signal);
}

fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Waits for the exit of a cancellation in progress, if there is one. A step
/// fails when the cancellation stops its container; the build must not
/// report that failure, or exit before the cleanup is done.
pub fn wait_if_cancelling() {
    if CANCELLING_NOW.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}
