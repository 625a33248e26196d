//! `berth top`: a container's processes as `ps` shows them, as docker does:
//! the runtime lists the container's pids (`runc ps`), `ps` runs on the host
//! with the user's options, and only the rows of those pids are kept.

use crate::ContainerRecord;
use crate::runc::RuncError;
use crate::supervise::runtime_of;
use berth_store::Store;
use std::process::{Command, Stdio};

/// docker's default `ps` options.
pub const DEFAULT_PS_ARGS: &[&str] = &["-ef"];

/// Errors of `top`.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// The container is not running.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The runtime could not list the container's processes.
    #[error("listing the processes of container {id}")]
    Runtime {
        /// The container.
        id: String,
        /// Why.
        source: Box<RuncError>,
    },
    /// `ps` could not run.
    #[error("running ps {args}")]
    Spawn {
        /// Its options.
        args: String,
        /// Why.
        source: std::io::Error,
    },
    /// `ps` failed.
    #[error("ps {args} failed: {stderr}")]
    Ps {
        /// Its options.
        args: String,
        /// What it said.
        stderr: String,
    },
    /// `ps`'s output has no PID column to filter on.
    #[error("ps {args} printed no PID column\nhint: add -o pid to the ps options")]
    NoPidColumn {
        /// Its options.
        args: String,
    },
}

/// `ps`'s table, cut to the container's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processes {
    /// The column titles.
    pub titles: Vec<String>,
    /// One row per process, as many cells as titles (the last one keeps its
    /// spaces: it is the command line).
    pub rows: Vec<Vec<String>>,
}

/// Lists the processes of the running container `record` with `ps
/// ps_args` (docker's `-ef` when empty).
pub fn top(
    store: &Store,
    record: &ContainerRecord,
    ps_args: &[String],
) -> Result<Processes, TopError> {
    if !record.is_running() {
        return Err(TopError::NotRunning(record.name.clone()));
    }
    let pids = runtime_of(store, record)
        .ps(&record.id)
        .map_err(|e| TopError::Runtime {
            id: record.name.clone(),
            source: Box::new(e),
        })?;
    let args: Vec<String> = if ps_args.is_empty() {
        DEFAULT_PS_ARGS.iter().map(|a| a.to_string()).collect()
    } else {
        ps_args.to_vec()
    };
    let shown = args.join(" ");
    // As docker: `-q PIDS` makes ps read only those processes; some options
    // (such as `f`) refuse it, so a failure retries without it.
    let list: Vec<String> = pids.iter().map(i32::to_string).collect();
    let quick = ps(&args, Some(&list.join(",")), &shown);
    let output = match quick {
        Ok(output) if !pids.is_empty() => output,
        _ => ps(&args, None, &shown)?,
    };
    parse_ps(&output, &pids).ok_or(TopError::NoPidColumn { args: shown })
}

fn ps(args: &[String], quick: Option<&str>, shown: &str) -> Result<String, TopError> {
    let mut command = Command::new("ps");
    command.args(args);
    if let Some(pids) = quick {
        command.arg("-q").arg(pids);
    }
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TopError::Spawn {
            args: shown.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(TopError::Ps {
            args: shown.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Keeps the rows of `ps` output whose PID is one of `pids` (and the thread
/// rows, PID `-`, that follow a kept row, as `ps -eLf`/`m` prints them), as
/// docker's `parsePSOutput`. `None` if there is no PID column.
pub fn parse_ps(output: &str, pids: &[i32]) -> Option<Processes> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_index = titles.iter().position(|t| t == "PID")?;
    let mut rows = Vec::new();
    let mut after_kept = false;
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        let keep = if *pid == "-" {
            after_kept
        } else {
            after_kept = pid.parse::<i32>().is_ok_and(|p| pids.contains(&p));
            after_kept
        };
        if keep {
            // The cells past the last title are the command's words.
            let last = titles.len() - 1;
            let mut row: Vec<String> = fields.iter().take(last).map(|f| f.to_string()).collect();
            row.push(fields.get(last..).unwrap_or_default().join(" "));
            rows.push(row);
        }
    }
    Some(Processes { titles, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100       1  0 10:01 ?        00:00:00 sleep 1000
root         101     100 99 10:01 ?        00:00:09 sh -c while :; do :; done
root         102       1  0 10:01 ?        00:00:00 other
";

    #[test]
    fn only_the_containers_pids_are_kept() {
        let cases: &[(&[i32], &[&str])] =
            &[(&[100, 101], &["100", "101"]), (&[], &[]), (&[999], &[])];
        for (pids, want) in cases {
            let got = parse_ps(PS_EF, pids).unwrap();
            assert_eq!(got.titles.len(), 8);
            let got: Vec<&str> = got.rows.iter().map(|r| r[1].as_str()).collect();
            assert_eq!(&got, want, "{pids:?}");
        }
        let got = parse_ps(PS_EF, &[101]).unwrap();
        assert_eq!(got.rows[0][7], "sh -c while :; do :; done");
    }

    #[test]
    fn thread_rows_follow_their_process() {
        let ps = "\
PID TID CMD
100 - sleep
- 100 -
200 - other
- 200 -
";
        let got = parse_ps(ps, &[100]).unwrap();
        assert_eq!(got.rows.len(), 2);
        assert_eq!(got.rows[1], vec!["-", "100", "-"]);
    }

    #[test]
    fn output_without_a_pid_column_is_refused() {
        assert_eq!(parse_ps("USER CMD\nroot sh\n", &[1]), None);
        assert_eq!(parse_ps("", &[1]), None);
        // Short and garbage rows are skipped, not a panic.
        let got = parse_ps("UID PID CMD\nroot\n\nx y\nroot 7 a b c\n", &[7]).unwrap();
        assert_eq!(got.rows, vec![vec!["root", "7", "a b c"]]);
    }
}
