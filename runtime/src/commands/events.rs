//! `events`: container statistics and OOM kills as runc's JSON events.

use crate::GlobalOptions;
use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

/// Flags of `events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats events when streaming (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// The container id.
    pub id: String,
}

/// runc's event shape; an `oom` event has no data.
#[derive(Serialize)]
struct Event<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// How often a stream checks for OOM kills between stats events.
const OOM_POLL: Duration = Duration::from_millis(100);

/// Runs `events`: one stats event with `--stats`; otherwise a stats event
/// per interval and an `oom` event whenever the OOM killer kills one of the
/// container's processes, as runc does, until the container stops.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let runtime = super::runtime(global);
    let id = args.id.as_str();
    if args.stats {
        emit("stats", id, Some(runtime.stats(id)?))?;
        return Ok(0);
    }
    // The counter's path is found once; the loop only reads the file.
    let oom_file = runtime.oom_kill_file(id)?;
    let count_oom_kills = || match &oom_file {
        Some(file) => berth_runtime::cgroup::oom_kills(file),
        None => Ok(None),
    };
    let mut oom_kills = count_oom_kills()?;
    let mut next_stats = Instant::now();
    loop {
        if Instant::now() >= next_stats {
            match runtime.stats(id) {
                Ok(stats) => emit("stats", id, Some(stats))?,
                // A container that stopped while streaming ends the stream.
                Err(berth_runtime::Error::NotRunning { .. }) => return Ok(0),
                Err(err) => return Err(err.into()),
            }
            next_stats += args.interval;
        }
        std::thread::sleep(OOM_POLL.min(next_stats.saturating_duration_since(Instant::now())));
        // A stopped container ends the stream at the next stats event.
        let now = count_oom_kills()?;
        if let (Some(before), Some(after)) = (oom_kills, now) {
            for _ in before..after {
                emit::<()>("oom", id, None)?;
            }
        }
        oom_kills = now.or(oom_kills);
    }
}

/// Prints one event as a JSON line and flushes it.
fn emit<T: Serialize>(kind: &'static str, id: &str, data: Option<T>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &Event { kind, id, data })?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Parses Go-style durations: a number with `ms`, `s`, `m` or `h`.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("invalid duration {text:?}; hint: use 5s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => anyhow::bail!("invalid duration unit in {text:?}; hint: use ms, s, m or h"),
    };
    if seconds <= 0.0 {
        anyhow::bail!("the interval must be positive, not {text:?}");
    }
    Ok(Duration::from_secs_f64(seconds))
}
