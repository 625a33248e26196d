//! Human forms of sizes and ages for the image tables, as docker prints them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `12.3 MB`: decimal units, three significant digits.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    format!("{text} {}", UNITS[unit])
}

/// docker's `units.HumanSize`: decimal units, four significant digits, no
/// space (`4.261MB`, `0B`), as prune and `system df` print.
pub fn docker_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let digits = if value >= 1.0 {
        value.log10().floor() as i32 + 1
    } else {
        1
    };
    let decimals = (4 - digits).max(0) as usize;
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `3 days ago`, from an RFC 3339 time; `N/A` when there is none.
pub fn age(created: Option<&str>, now: i64) -> String {
    match created.and_then(berth_store::images::time::parse_rfc3339) {
        Some(then) => format!("{} ago", duration(now.saturating_sub(then).max(0))),
        None => "N/A".to_string(),
    }
}

/// docker's human durations: `About an hour`, `3 weeks`, `2 years`.
pub fn duration(secs: i64) -> String {
    let (minute, hour, day) = (60, 3600, 86_400);
    match secs {
        s if s < 1 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < minute => format!("{s} seconds"),
        s if s < 2 * minute => "About a minute".to_string(),
        s if s < hour => format!("{} minutes", s / minute),
        s if s < 2 * hour => "About an hour".to_string(),
        s if s < 2 * day => format!("{} hours", s / hour),
        s if s < 14 * day => format!("{} days", s / day),
        s if s < 90 * day => format!("{} weeks", s / (7 * day)),
        s if s < 730 * day => format!("{} months", s / (30 * day)),
        s => format!("{} years", s / (365 * day)),
    }
}

/// Cuts `text` to `max` characters, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Prints rows as left-aligned columns three spaces apart, like docker.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 3;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        for (bytes, text) in [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.00 kB"),
            (4_261_000, "4.26 MB"),
            (12_345_678, "12.3 MB"),
            (123_456_789, "123 MB"),
            (2_000_000_000, "2.00 GB"),
        ] {
            assert_eq!(size(bytes), text);
        }
    }

    #[test]
    fn docker_sizes_have_four_significant_digits() {
        for (bytes, text) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1500, "1.5kB"),
            (4_261_000, "4.261MB"),
            (12_345_678, "12.35MB"),
            (123_456_789, "123.5MB"),
            (2_000_000_000, "2GB"),
        ] {
            assert_eq!(docker_size(bytes), text);
        }
    }

    #[test]
    fn ages_read_like_docker() {
        let now = 1_700_000_000;
        let at = |secs_ago: i64| berth_store::oci::rfc3339(now - secs_ago);
        for (ago, text) in [
            (0, "Less than a second ago"),
            (30, "30 seconds ago"),
            (90, "About a minute ago"),
            (600, "10 minutes ago"),
            (4000, "About an hour ago"),
            (3 * 3600, "3 hours ago"),
            (3 * 86_400, "3 days ago"),
            (21 * 86_400, "3 weeks ago"),
            (200 * 86_400, "6 months ago"),
            (3 * 365 * 86_400, "3 years ago"),
        ] {
            assert_eq!(age(Some(&at(ago)), now), text);
        }
        assert_eq!(age(None, now), "N/A");
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "LONG HEADER"],
            &[vec!["wide cell".into(), "x".into()]],
        );
        assert_eq!(text, "A           LONG HEADER\nwide cell   x\n");
    }
}
