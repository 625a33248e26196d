//! `berth stats`: containers' resource use, as `docker stats` shows it: a
//! table redrawn every second until Ctrl-C or a closed pipe, or one sample
//! with `--no-stream`.

use super::GlobalArgs;
use crate::format::{OutputFormat, write_rows};
use crate::printer::Printer;
use anyhow::Context as _;
use berth_containers::stats::{self, Sample, StatsError, Usage};
use berth_containers::{self as container, ContainerRecord, State, control};
use berth_store::Store;
use clap::Args;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// How often the streaming table is redrawn, as docker's.
const STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of `berth stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show every container (default: only running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Print one sample and exit instead of redrawing every second.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not cut the container ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// The output format: `table`, `table TEMPLATE`, `json` or a Go template.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The containers: ids, unique id prefixes or names (default: all
    /// running ones).
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// docker's columns: header and field name.
const COLUMNS: &[(&str, &str)] = &[
    ("CONTAINER ID", "ID"),
    ("NAME", "Name"),
    ("CPU %", "CPUPerc"),
    ("MEM USAGE / LIMIT", "MemUsage"),
    ("MEM %", "MemPerc"),
    ("NET I/O", "NetIO"),
    ("BLOCK I/O", "BlockIO"),
    ("PIDS", "PIDs"),
];

/// Prints the table once (`--no-stream`) or redraws it every second.
pub fn run(args: &StatsArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let format = OutputFormat::parse(args.format.as_deref())?;
    let mut before = HashMap::new();
    let mut targets = targets(&store, args)?;
    if args.no_stream {
        // One reading: CPU % is the average since each container started,
        // as podman's one-shot stats gives it (docker waits a second for two).
        let mut rows = Vec::new();
        for (wanted, record) in &targets {
            let usage = match sample(record)? {
                Some(now) => match record.state {
                    State::Running { pid_start, .. } => stats::at_start(&now, pid_start)
                        .map_or_else(
                            || Usage::between(&now, &now),
                            |start| Usage::between(&start, &now),
                        ),
                    _ => Usage::between(&now, &now),
                },
                None => Usage::default(),
            };
            rows.push(row(wanted, record, &usage, args.no_trunc));
        }
        let mut out = printer.stdout();
        write(&mut out, &format, &rows)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    for (_, record) in &targets {
        if let Some(sample) = sample(record)? {
            before.insert(record.id.clone(), sample);
        }
    }
    loop {
        std::thread::sleep(STREAM_INTERVAL);
        let mut rows = Vec::new();
        let mut after = HashMap::new();
        for (wanted, record) in &targets {
            let usage = match sample(record)? {
                Some(now) => {
                    let usage = before
                        .get(&record.id)
                        .map(|then| Usage::between(then, &now))
                        .unwrap_or_else(|| Usage::between(&now, &now));
                    after.insert(record.id.clone(), now);
                    usage
                }
                None => Usage::default(),
            };
            rows.push(row(wanted, record, &usage, args.no_trunc));
        }
        let mut out = printer.stdout();
        // docker clears the screen and homes the cursor before each frame.
        write!(out, "\x1b[2J\x1b[H")?;
        write(&mut out, &format, &rows)?;
        out.flush()?;
        before = after;
        // Containers that started or went since the last frame.
        if args.containers.is_empty() {
            targets = self::targets(&store, args)?;
        }
    }
}

/// The containers to show: those named (in that order), else the running
/// ones (every one with `-a`), each with what the user called it.
fn targets(store: &Store, args: &StatsArgs) -> anyhow::Result<Vec<(String, ContainerRecord)>> {
    if !args.containers.is_empty() {
        return args
            .containers
            .iter()
            .map(|wanted| {
                let record = container::find(store, wanted)?;
                Ok((wanted.clone(), record))
            })
            .collect();
    }
    let mut records = Vec::new();
    for record in container::list(store)? {
        // A container whose owner died is cleaned up now, as `ps` does.
        if let Some(record) = control::reconcile(store, record)?
            && (args.all || record.is_running())
        {
            records.push(record);
        }
    }
    records.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(records.into_iter().map(|r| (r.id.clone(), r)).collect())
}

/// A running container's counters; `None` for a container that is not
/// running (docker shows it with zeros).
fn sample(record: &ContainerRecord) -> anyhow::Result<Option<Sample>> {
    let State::Running { pid, pid_start, .. } = record.state else {
        return Ok(None);
    };
    match stats::sample(pid, pid_start) {
        Ok(sample) => Ok(Some(sample)),
        Err(StatsError::NotRunning { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the statistics of {}", record.name)),
    }
}

/// One row with docker's field names and texts.
fn row(wanted: &str, record: &ContainerRecord, usage: &Usage, no_trunc: bool) -> Value {
    let id = if no_trunc {
        record.id.as_str()
    } else {
        record.short_id()
    };
    json!({
        "Container": wanted,
        "ID": id,
        "Name": record.name,
        "CPUPerc": format!("{:.2}%", usage.cpu_percent),
        "MemUsage": format!("{} / {}", bytes_size(usage.mem_usage), bytes_size(usage.mem_limit)),
        "MemPerc": format!("{:.2}%", usage.mem_percent),
        "NetIO": format!("{} / {}", human_size(usage.net_rx), human_size(usage.net_tx)),
        "BlockIO": format!("{} / {}", human_size(usage.blk_read), human_size(usage.blk_write)),
        "PIDs": usage.pids.to_string(),
    })
}

/// Writes the rows in `format`: docker's columns by default; a `table
/// TEMPLATE` may also name `.Container` (what the user called it).
fn write(
    out: &mut dyn std::io::Write,
    format: &OutputFormat,
    rows: &[Value],
) -> std::io::Result<()> {
    let mut columns = COLUMNS.to_vec();
    if !matches!(format, OutputFormat::Table { template: None }) {
        columns.push(("CONTAINER", "Container"));
    }
    write_rows(out, format, &columns, rows)
}

/// docker's `units.BytesSize`: binary units, four significant digits
/// (`1.5MiB`, `512MiB`, `0B`).
fn bytes_size(bytes: u64) -> String {
    scaled(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    )
}

/// docker's `units.HumanSizeWithPrecision(n, 3)`: decimal units, three
/// significant digits (`1.2kB`, `0B`).
fn human_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"], 3)
}

fn scaled(bytes: u64, base: f64, units: &[&str], precision: usize) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    format!("{}{}", go_g(value, precision), units[unit])
}

/// Go's `%.{precision}g`: `precision` significant digits, trailing zeros
/// dropped, an exponent when it is below -4 or at least the precision
/// (`999.7` at 3 digits is `1e+03`, as docker prints it).
fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim(&format!("{value:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker_units() {
        let cases: &[(u64, &str, &str)] = &[
            (0, "0B", "0B"),
            (1, "1B", "1B"),
            (999, "999B", "999B"),
            (1000, "1000B", "1kB"),
            (1200, "1.172KiB", "1.2kB"),
            (1024, "1KiB", "1.02kB"),
            (1_572_864, "1.5MiB", "1.57MB"),
            (512 << 20, "512MiB", "537MB"),
            (999_700, "976.3KiB", "1e+03kB"),
            (8_232_923_136, "7.668GiB", "8.23GB"),
            (u64::MAX, "16EiB", "18.4EB"),
        ];
        for (bytes, binary, decimal) in cases {
            assert_eq!(bytes_size(*bytes), *binary, "{bytes}");
            assert_eq!(human_size(*bytes), *decimal, "{bytes}");
        }
    }

    #[test]
    fn go_g_matches_go() {
        let cases: &[(f64, usize, &str)] = &[
            (1.5, 4, "1.5"),
            (100.0, 3, "100"),
            (0.0001, 3, "0.0001"),
            (0.00001, 3, "1e-05"),
            (1234.5, 4, "1234"),
            (12345.0, 4, "1.234e+04"),
            (9.9999, 3, "10"),
        ];
        for (value, precision, want) in cases {
            assert_eq!(go_g(*value, *precision), *want, "{value} {precision}");
        }
    }

    #[test]
    fn a_row_has_dockers_fields_and_texts() {
        let record: ContainerRecord = serde_json::from_value(json!({
            "id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "image": "busybox",
            "image_digest": berth_store::Digest::of(b"m").to_string(),
            "name": "web",
        }))
        .unwrap();
        let usage = Usage {
            cpu_percent: 12.345,
            mem_usage: 1_572_864,
            mem_limit: 512 << 20,
            mem_percent: 0.29296875,
            net_rx: 1200,
            net_tx: 0,
            blk_read: 4096,
            blk_write: 0,
            pids: 3,
        };
        let row = row("web", &record, &usage, false);
        assert_eq!(
            row,
            json!({
                "Container": "web",
                "ID": "0123456789ab",
                "Name": "web",
                "CPUPerc": "12.35%",
                "MemUsage": "1.5MiB / 512MiB",
                "MemPerc": "0.29%",
                "NetIO": "1.2kB / 0B",
                "BlockIO": "4.1kB / 0B",
                "PIDs": "3",
            })
        );
        let table = |flag: Option<&str>| {
            let mut out = Vec::new();
            write(
                &mut out,
                &OutputFormat::parse(flag).unwrap(),
                std::slice::from_ref(&row),
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            table(None),
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O    PIDS\n\
             0123456789ab   web       12.35%    1.5MiB / 512MiB     0.29%     1.2kB / 0B   4.1kB / 0B   3\n"
        );
        assert_eq!(
            table(Some("table {{.Container}}\\t{{.CPUPerc}}")),
            "CONTAINER   CPU %\nweb         12.35%\n"
        );
        assert_eq!(table(Some("{{.Name}}\\t{{.PIDs}}")), "web\t3\n");
        let full = super::row("web", &record, &Usage::default(), true);
        assert_eq!(full["ID"], json!(record.id));
        assert_eq!(full["MemUsage"], json!("0B / 0B"));
        assert_eq!(full["CPUPerc"], json!("0.00%"));
    }
}
