//! `berth ps`: list the containers berth started, as `docker ps` does:
//! docker's STATUS strings, `--filter`, `-n`/`-l`, `-q`. Each container is
//! first made into a row keyed by docker's field names (`ID`, `Image`,
//! `Command`, `CreatedAt`, `RunningFor`, `Status`, `State`, `Names`, …),
//! which the table and JSON outputs print.

use super::GlobalArgs;
use super::images::created_at;
use super::images::format::{duration, truncate};
use crate::format::{OutputFormat, write_rows};
use crate::printer::Printer;
use berth_containers::lifecycle::Status;
use berth_containers::network::ports;
use berth_containers::{self as container, ContainerRecord, State, control};
use clap::Args;
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container (default: only running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the N most recently created containers, whatever their state.
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Show the most recently created container, whatever its state.
    #[arg(short, long)]
    pub latest: bool,
    /// Only containers that match: status=, name=, ancestor=, id=, exited=
    /// (the same key given twice matches either value; different keys must all match).
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Do not cut ids and commands short.
    #[arg(long)]
    pub no_trunc: bool,
    /// The output format: table, `table TEMPLATE`, json (one object per
    /// line), or a Go template per row with docker's fields (.ID, .Image,
    /// .Command, .CreatedAt, .RunningFor, .State, .Status, .Names, …).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// The table's columns: docker's header and the row field it shows.
const COLUMNS: [(&str, &str); 7] = [
    ("CONTAINER ID", "ID"),
    ("IMAGE", "Image"),
    ("COMMAND", "Command"),
    ("CREATED", "RunningFor"),
    ("STATUS", "Status"),
    ("PORTS", "Ports"),
    ("NAMES", "Names"),
];

/// Lists the containers, newest first.
pub fn run(args: &PsArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let output = OutputFormat::parse(args.format.as_deref())?;
    let filters = match Filters::parse(&args.filter) {
        Ok(filters) => filters,
        Err(message) => {
            printer.error_message(message);
            return Ok(ExitCode::from(super::container::FAILED));
        }
    };
    let store = global.open_store()?;
    let mut records = Vec::new();
    for record in container::list(&store)? {
        // A container whose owner died is cleaned up now, as its owner would have.
        if let Some(record) = control::reconcile(&store, record)? {
            let status = record.status();
            records.push((record, status));
        }
    }
    records.sort_by(|(a, _), (b, _)| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let last = if args.latest { Some(1) } else { args.last };
    // Docker: -n/-l and a filter on a stopped status show stopped containers too.
    let all = args.all || last.is_some() || filters.wants_stopped();
    let mut shown: Vec<(ContainerRecord, Status)> = records
        .into_iter()
        .filter(|(_, status)| {
            all || matches!(
                status,
                Status::Running | Status::Paused | Status::Restarting
            )
        })
        .filter(|(r, status)| filters.matches(r, *status))
        .collect();
    if let Some(n) = last {
        shown.truncate(n);
    }
    let now = container::now();
    let mut out = printer.stdout();
    if args.quiet {
        for (r, _) in &shown {
            let id = if args.no_trunc { &r.id } else { r.short_id() };
            writeln!(out, "{id}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = shown
        .iter()
        .map(|(r, status)| row(r, *status, now, !args.no_trunc))
        .collect();
    write_rows(&mut out, &output, &COLUMNS, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// A container as a row of `docker ps`, keyed by docker's field names;
/// `trunc` cuts the id to 12 digits and the command to 20 characters, as
/// docker's table does without `--no-trunc`.
fn row(r: &ContainerRecord, status: Status, now: i64, trunc: bool) -> Value {
    let command = r.command.join(" ");
    let command = if trunc {
        truncate(&command, 20)
    } else {
        command
    };
    json!({
        "ID": if trunc { r.short_id() } else { &r.id },
        "Image": r.image,
        "ImageDigest": r.image_digest.to_string(),
        "Command": format!("\"{command}\""),
        "CreatedAt": created_at(Some(&berth_store::oci::rfc3339(r.created))),
        "RunningFor": format!("{} ago", duration(now - r.created)),
        "State": status.as_str(),
        "Status": status_text(&r.state, status, now),
        "ExitCode": exit_code(r),
        "Names": r.name,
        "Labels": "",
        "Mounts": "",
        "Networks": "",
        "Ports": ports_column(r),
        "Size": "0B",
        "LocalVolumes": "0",
    })
}

/// Docker's PORTS column: the published ports of a running container.
fn ports_column(r: &ContainerRecord) -> String {
    if r.is_running() {
        ports::ps_column(&r.ports)
    } else {
        String::new()
    }
}

fn exit_code(r: &ContainerRecord) -> Option<i32> {
    match r.state {
        State::Exited { code, .. } => Some(code),
        _ => None,
    }
}

/// Docker's STATUS text: "Up 3 seconds", "Up 2 minutes (Paused)",
/// "Exited (0) 2 minutes ago", "Created", "Dead", "Removal In Progress".
fn status_text(state: &State, status: Status, now: i64) -> String {
    match (status, state) {
        (Status::Running, State::Running { started, .. }) => {
            format!("Up {}", duration(now - started))
        }
        (Status::Paused, State::Running { started, .. }) => {
            format!("Up {} (Paused)", duration(now - started))
        }
        (Status::Exited, State::Exited { code, finished, .. }) => {
            format!("Exited ({code}) {} ago", duration(now - finished))
        }
        (Status::Restarting, State::Restarting { code, finished, .. }) => {
            format!("Restarting ({code}) {} ago", duration(now - finished))
        }
        // The process is gone and its owner is recording the exit.
        (Status::Exited, _) => "Exiting".into(),
        (Status::Dead, _) => "Dead".into(),
        (Status::Removing, _) => "Removal In Progress".into(),
        (Status::Restarting, _) => "Restarting".into(),
        (Status::Created | Status::Running | Status::Paused, _) => "Created".into(),
    }
}

/// `--filter` values by key. The same key given twice matches either
/// value; different keys must all match (docker's semantics).
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    status: Vec<Status>,
    name: Vec<String>,
    ancestor: Vec<String>,
    id: Vec<String>,
    exited: Vec<i32>,
}

impl Filters {
    fn parse(flags: &[String]) -> Result<Filters, String> {
        let mut filters = Filters::default();
        for flag in flags {
            let Some((key, value)) = flag.split_once('=') else {
                return Err(format!(
                    "bad format of filter (expected name=value): {flag}"
                ));
            };
            match key {
                "status" => filters.status.push(Status::parse(value).ok_or_else(|| {
                    format!("invalid filter 'status={value}': Unrecognised filter value for status")
                })?),
                "name" => filters.name.push(value.trim_start_matches('/').to_string()),
                "ancestor" => filters.ancestor.push(value.to_string()),
                "id" => filters.id.push(value.to_string()),
                "exited" => filters.exited.push(
                    value
                        .parse()
                        .map_err(|_| format!("invalid filter 'exited={value}'"))?,
                ),
                _ => return Err(format!("invalid filter '{key}'")),
            }
        }
        Ok(filters)
    }

    /// Whether the filters ask for containers that do not run.
    fn wants_stopped(&self) -> bool {
        !self.exited.is_empty()
            || self
                .status
                .iter()
                .any(|s| !matches!(s, Status::Running | Status::Paused))
    }

    fn matches(&self, r: &ContainerRecord, status: Status) -> bool {
        fn any<T>(values: &[T], hit: impl Fn(&T) -> bool) -> bool {
            values.is_empty() || values.iter().any(hit)
        }
        any(&self.status, |s| *s == status)
            && any(&self.name, |n| r.name.contains(n.as_str()))
            && any(&self.id, |i| r.id.starts_with(i.as_str()))
            && any(&self.ancestor, |a| ancestor_matches(a, r))
            && any(&self.exited, |code| exit_code(r) == Some(*code))
    }
}

/// Whether `wanted` names the container's image: as given, without its
/// `:latest`, by its repository alone, or by its manifest digest.
fn ancestor_matches(wanted: &str, r: &ContainerRecord) -> bool {
    let image = r.image.as_str();
    let digest = r.image_digest.to_string();
    let repository = |name: &str| -> String {
        match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
            _ => name.to_string(),
        }
    };
    wanted == image
        || wanted == repository(image)
        || repository(wanted) == image
        || (wanted.len() >= 12
            && digest
                .trim_start_matches("sha256:")
                .starts_with(wanted.trim_start_matches("sha256:")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::Digest;
    use std::path::PathBuf;

    fn record(name: &str, image: &str, state: State) -> ContainerRecord {
        ContainerRecord {
            id: format!("{name}0123456789abcdef"),
            image: image.into(),
            image_digest: Digest::of(b"manifest"),
            name: name.into(),
            command: vec!["sh".into()],
            created: 0,
            runtime: PathBuf::from("runc"),
            auto_remove: false,
            stop_signal: None,
            detached: true,
            network: None,
            state,
            ports: Vec::new(),
            resources: Default::default(),
            restart_policy: Default::default(),
            restart_count: 0,
        }
    }

    #[test]
    fn status_strings_read_like_dockers() {
        let now = 1_000;
        let running = State::Running {
            pid: 1,
            pid_start: 1,
            started: now - 180,
            owner: (0, 0),
        };
        let exited = |code, ago| State::Exited {
            code,
            started: 0,
            finished: now - ago,
        };
        for (state, status, want) in [
            (State::Created, Status::Created, "Created"),
            (running.clone(), Status::Running, "Up 3 minutes"),
            (running.clone(), Status::Paused, "Up 3 minutes (Paused)"),
            (
                State::Running {
                    pid: 1,
                    pid_start: 1,
                    started: now,
                    owner: (0, 0),
                },
                Status::Running,
                "Up Less than a second",
            ),
            (exited(137, 5), Status::Exited, "Exited (137) 5 seconds ago"),
            (exited(0, 7200), Status::Exited, "Exited (0) 2 hours ago"),
            (
                exited(1, 61),
                Status::Exited,
                "Exited (1) About a minute ago",
            ),
            (running, Status::Exited, "Exiting"),
            (State::Dead { finished: 0 }, Status::Dead, "Dead"),
            (State::Removing, Status::Removing, "Removal In Progress"),
        ] {
            assert_eq!(status_text(&state, status, now), want, "{state:?}");
        }
    }

    #[test]
    fn filters_or_within_a_key_and_and_across_keys() {
        let exited = State::Exited {
            code: 3,
            started: 0,
            finished: 0,
        };
        let web = record("web", "busybox", exited.clone());
        let db = record("db", "docker.io/library/alpine:3.20", State::Created);
        let flags = |f: &[&str]| {
            Filters::parse(&f.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        for (filters, want_web, want_db) in [
            (vec![], true, true),
            (vec!["status=exited"], true, false),
            (vec!["status=exited", "status=created"], true, true),
            (vec!["status=exited", "name=db"], false, false),
            (vec!["name=we"], true, false),
            (vec!["name=/db"], false, true),
            (vec!["ancestor=busybox"], true, false),
            (vec!["ancestor=busybox:latest"], true, false),
            (vec!["ancestor=docker.io/library/alpine"], false, true),
            (vec!["id=web01"], true, false),
            (vec!["exited=3"], true, false),
            (vec!["exited=0"], false, false),
            (vec!["exited=3", "status=created"], false, false),
        ] {
            let f = flags(&filters);
            assert_eq!(f.matches(&web, Status::Exited), want_web, "web {filters:?}");
            assert_eq!(f.matches(&db, Status::Created), want_db, "db {filters:?}");
        }
    }

    #[test]
    fn bad_filters_are_refused_in_dockers_words() {
        for (flag, want) in [
            ("colour=red", "invalid filter 'colour'"),
            ("status=up", "invalid filter 'status=up'"),
            ("exited=x", "invalid filter 'exited=x'"),
            ("status", "bad format of filter"),
        ] {
            let err = Filters::parse(&[flag.to_string()]).unwrap_err();
            assert!(err.contains(want), "{flag}: {err}");
        }
        let stopped = Filters::parse(&["status=exited".into()]).unwrap();
        assert!(stopped.wants_stopped());
        let up = Filters::parse(&["status=running".into()]).unwrap();
        assert!(!up.wants_stopped());
    }

    #[test]
    fn rows_carry_dockers_field_names() {
        let r = record("web", "busybox", State::Created);
        let row = row(&r, Status::Created, 0, true);
        for field in [
            "ID",
            "Image",
            "Command",
            "CreatedAt",
            "RunningFor",
            "Ports",
            "State",
            "Status",
            "Size",
            "Names",
            "Labels",
            "Mounts",
            "Networks",
            "LocalVolumes",
        ] {
            assert!(row.get(field).is_some(), "{field}");
        }
        assert_eq!(row["ID"], "web012345678");
        assert_eq!(row["CreatedAt"], "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(row["Command"], "\"sh\"");
    }
}
