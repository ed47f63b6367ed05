//! Durations as operators type them: `90s`, `10m`, `1h`, `7d`, `2w`, or several run together
//! (`1h30m`). A bare number is refused rather than guessed at (seconds? minutes?).

use std::time::Duration;

/// The longest duration accepted: ten years. Longer is "until lifted", which is what no duration
/// means, and the cap keeps expiry arithmetic far from overflow.
pub const MAX: Duration = Duration::from_secs(10 * 366 * 86_400);

/// Parses a duration such as `1h` or `1h30m`. Units: `s`, `m`, `h`, `d`, `w`.
pub fn parse(text: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if digits.len() >= 9 {
                return None;
            }
            digits.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    if !digits.is_empty() || !any || total == 0 {
        return None;
    }
    let duration = Duration::from_secs(total);
    (duration <= MAX).then_some(duration)
}

/// A short human form for replies and `/bans`: `1h`, `7d`, `1h30m`.
pub fn format(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 7 * 86_400),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_and_combinations() {
        assert_eq!(parse("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("2W"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "5",
            "h",
            "1x",
            "1h5",
            "0s",
            "-1h",
            "1 h",
            "9999999999s",
            "100000w",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["1h", "6d", "1h30m", "2w", "1w3d", "45s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = parse(&s);
        }
    }
}
