//! Signal names and numbers as `kill` accepts them.

use crate::error::{Error, Result};

/// Standard signals by name, without the `SIG` prefix.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The highest real-time signal number on Linux.
const SIGRTMAX: i32 = 64;
/// The lowest real-time signal number user space may use (glibc reserves 32 and 33).
const SIGRTMIN: i32 = 34;

/// Parses a signal given as a number (`9`), a name (`KILL`, `SIGKILL`, any case)
/// or a real-time name (`RTMIN+3`, `SIGRTMAX-1`).
pub fn parse(text: &str) -> Result<i32> {
    let invalid = || Error::InvalidSignal(text.to_owned());
    if let Ok(number) = text.parse::<i32>() {
        return if (1..=SIGRTMAX).contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, number)) = NAMES.iter().find(|(known, _)| *known == name) {
        return Ok(number);
    }
    let realtime = |base: i32, rest: &str| -> Result<i32> {
        let offset = match rest {
            "" => 0,
            _ => rest.parse::<i32>().map_err(|_| invalid())?,
        };
        let number = base + offset;
        if (SIGRTMIN..=SIGRTMAX).contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return realtime(SIGRTMIN, rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return realtime(SIGRTMAX, rest);
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime_signals() {
        let cases: &[(&str, Option<i32>)] = &[
            ("9", Some(9)),
            ("KILL", Some(9)),
            ("SIGKILL", Some(9)),
            ("sigterm", Some(15)),
            ("term", Some(15)),
            ("USR1", Some(10)),
            ("RTMIN", Some(34)),
            ("SIGRTMIN+3", Some(37)),
            ("RTMAX-1", Some(63)),
            ("64", Some(64)),
            ("0", None),
            ("65", None),
            ("-9", None),
            ("SIGFOO", None),
            ("RTMAX+1", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).ok(), *want, "parsing {text:?}");
        }
    }
}
