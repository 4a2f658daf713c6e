//! Parsing the timestamp formats of a BigQuery export into UTC microseconds.
//!
//! Hand-written rather than chrono's format parser because the events table has millions of rows;
//! dates are still validated through chrono.

use chrono::NaiveDate;

/// Parses `2023-01-05 10:02:03 UTC`, `2023-01-05 10:02:03.123456 UTC`,
/// `2023-01-05 10:02:03.123456+00:00`, `2023-01-05T10:02:03Z` and other explicit offsets
/// (converted to UTC). A timestamp without zone is read as UTC, as BigQuery writes them.
pub fn parse_ts_micros(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?;
    let time = date.and_hms_opt(h, mi, sec)?;
    let mut micros = time.and_utc().timestamp_micros();
    let mut i = 19;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        let mut frac: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                frac = frac * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            frac *= 10;
        }
        micros += frac;
    }
    let rest = std::str::from_utf8(&b[i..]).ok()?.trim_start();
    let offset_secs: i64 = match rest {
        "" | "UTC" | "Z" | "z" => 0,
        _ => parse_offset(rest)?,
    };
    Some(micros - offset_secs * 1_000_000)
}

/// `+HH:MM`, `+HHMM` or `+HH` (and `-`).
fn parse_offset(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: Vec<u8> = b[1..].iter().copied().filter(|c| *c != b':').collect();
    if !digits.iter().all(u8::is_ascii_digit) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    if b.len() == 6 && b[3] != b':' {
        return None;
    }
    let h = i64::from(digits[0] - b'0') * 10 + i64::from(digits[1] - b'0');
    let m = if digits.len() == 4 {
        i64::from(digits[2] - b'0') * 10 + i64::from(digits[3] - b'0')
    } else {
        0
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigquery_formats() {
        let base = parse_ts_micros("2023-01-05 10:02:03 UTC").unwrap();
        assert_eq!(base, 1_672_912_923_000_000);
        assert_eq!(
            parse_ts_micros("2023-01-05 10:02:03.123456 UTC"),
            Some(base + 123_456)
        );
        assert_eq!(
            parse_ts_micros("2023-01-05 10:02:03.123456+00:00"),
            Some(base + 123_456)
        );
        assert_eq!(
            parse_ts_micros("2023-01-05T10:02:03.5Z"),
            Some(base + 500_000)
        );
        assert_eq!(parse_ts_micros("2023-01-05 12:02:03+02:00"), Some(base));
        assert_eq!(parse_ts_micros("2023-01-05 10:02:03"), Some(base));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2023-01-05",
            "2023-13-05 10:02:03 UTC",
            "2023-02-30 10:02:03 UTC",
            "2023-01-05 25:00:00 UTC",
            "2023-01-05 10:02:03 PST",
            "2023-01-05 10:02:03.",
            "yesterday at noon, roughly",
        ] {
            assert_eq!(parse_ts_micros(bad), None, "{bad:?}");
        }
    }
}
