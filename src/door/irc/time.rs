//! IRCv3 `server-time`: instants as `YYYY-MM-DDThh:mm:ss.sssZ` in UTC, both ways.
//!
//! The same text names a message in `CHATHISTORY ... timestamp=...`, so [`parse`] reads exactly
//! what [`format`](fn@format) writes (and the same without milliseconds or without the `Z`, which clients
//! sometimes send). Instants are milliseconds since the Unix epoch, the hub's unit.

use crate::clock::format_utc;

/// `ms` (since the Unix epoch) as a `time` tag value: `2026-11-27T16:40:17.456Z`.
pub fn format(ms: i64) -> String {
    let mut text = format_utc(ms);
    // `format_utc` writes `YYYY-MM-DD HH:MM:SS.SSS`: the same fields, two separators apart.
    text.replace_range(10..11, "T");
    text.push('Z');
    text
}

/// The instant a `time` value names, in milliseconds since the Unix epoch.
pub fn parse(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = number(date_parts.next()?, 4)?;
    let month: i64 = number(date_parts.next()?, 2)?;
    let day: i64 = number(date_parts.next()?, 2)?;
    let (hms, millis) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, fraction_ms(frac)?),
        None => (clock, 0),
    };
    let mut clock_parts = hms.splitn(3, ':');
    let hour: i64 = number(clock_parts.next()?, 2)?;
    let minute: i64 = number(clock_parts.next()?, 2)?;
    let second: i64 = number(clock_parts.next()?, 2)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// A field of exactly `width` ASCII digits.
fn number(field: &str, width: usize) -> Option<i64> {
    (field.len() == width && field.bytes().all(|b| b.is_ascii_digit()))
        .then(|| field.parse().ok())
        .flatten()
}

/// Milliseconds from a fraction of a second of one to nine digits (`4` is 400 ms).
fn fraction_ms(frac: &str) -> Option<i64> {
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{frac:0<3}");
    padded[..3].parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`, the
/// inverse of the one in `crate::clock`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses_known_instants() {
        assert_eq!(format(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format(1_795_797_617_456), "2026-11-27T16:40:17.456Z");
        assert_eq!(parse("2026-11-27T16:40:17.456Z"), Some(1_795_797_617_456));
        assert_eq!(parse("2026-11-27T16:40:17Z"), Some(1_795_797_617_000));
        assert_eq!(parse("2026-11-27T16:40:17.4"), Some(1_795_797_617_400));
        assert_eq!(parse("2000-02-29T00:00:00.123456Z"), Some(951_782_400_123));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "*",
            "2026-11-27",
            "2026-13-01T00:00:00Z",
            "2026-1-01T00:00:00Z",
            "x026-11-27T16:40:17Z",
            "2026-11-27T16:40:17.Z",
            "2026-11-27T24:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_inverts_format(ms in -62_000_000_000_000i64..253_000_000_000_000) {
            prop_assert_eq!(parse(&format(ms)), Some(ms));
        }
    }
}
