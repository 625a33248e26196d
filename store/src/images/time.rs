//! RFC 3339 times of image configs as seconds since the epoch, for "3 days
//! ago" columns and sorting.

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `None` if it does not.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::rfc3339;

    #[test]
    fn parses_what_rfc3339_formats_and_common_variants() {
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        for (text, want) in [
            ("2023-11-14T22:13:20.123456789Z", Some(1_700_000_000)),
            ("2023-11-14T23:13:20+01:00", Some(1_700_000_000)),
            ("2023-11-14T21:13:20-01:00", Some(1_700_000_000)),
            ("2023-11-14", None),
            ("2023-13-14T22:13:20Z", None),
            ("not a time at all!!", None),
            ("2023-11-14T22:13:20", None),
            ("2023-11-14t22:13:20z", Some(1_700_000_000)),
            ("2023-11-14 22:13:20Z", Some(1_700_000_000)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
            ("2023-02-29T00:00:00Z", None),
            ("2023-11-14T24:00:00Z", None),
            ("2023-11-14T22:13:20+1:00", None),
            ("２０２３-11-14T22:13:20Z", None),
        ] {
            assert_eq!(parse_rfc3339(text), want, "{text}");
        }
    }
}
