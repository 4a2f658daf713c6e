//! Timestamps in the text form of a BigQuery CSV export (`2023-01-05 10:02:03 UTC`, with
//! `.123456` only when the value has sub-second precision).
//!
//! Written by hand rather than through chrono's formatter because the CSV writer prints millions
//! of them straight into its output buffer.

pub(crate) const MICROS_PER_SEC: i64 = 1_000_000;
pub(crate) const SECS_PER_DAY: i64 = 86_400;

/// Formats microseconds since the Unix epoch the way BigQuery exports a TIMESTAMP.
pub fn format_bigquery_ts(micros: i64) -> String {
    let mut buf = Vec::with_capacity(32);
    write_bigquery_ts(&mut buf, micros);
    // Every byte written is ASCII.
    buf.into_iter().map(char::from).collect()
}

pub(crate) fn write_bigquery_ts(buf: &mut Vec<u8>, micros: i64) {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        push_padded(buf, y as u64, 4);
    } else {
        crate::csv::write_i64(buf, y);
    }
    buf.push(b'-');
    push_padded(buf, u64::from(m), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(d), 2);
    buf.push(b' ');
    push_padded(buf, (sod / 3600) as u64, 2);
    buf.push(b':');
    push_padded(buf, (sod / 60 % 60) as u64, 2);
    buf.push(b':');
    push_padded(buf, (sod % 60) as u64, 2);
    if frac != 0 {
        buf.push(b'.');
        push_padded(buf, frac as u64, 6);
    }
    buf.extend_from_slice(b" UTC");
}

fn push_padded(buf: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    while v > 0 || tmp.len() - i < width {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use rand::{Rng, SeedableRng};

    #[test]
    fn examples() {
        assert_eq!(format_bigquery_ts(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_bigquery_ts(1_672_912_923_000_000),
            "2023-01-05 10:02:03 UTC"
        );
        assert_eq!(
            format_bigquery_ts(1_672_912_923_123_456),
            "2023-01-05 10:02:03.123456 UTC"
        );
        assert_eq!(
            format_bigquery_ts(1_672_912_923_000_001),
            "2023-01-05 10:02:03.000001 UTC"
        );
        assert_eq!(format_bigquery_ts(-1), "1969-12-31 23:59:59.999999 UTC");
        assert_eq!(
            format_bigquery_ts(951_782_400_000_000),
            "2000-02-29 00:00:00 UTC"
        );
    }

    #[test]
    fn agrees_with_chrono() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20_000 {
            let us: i64 = rng.random_range(-2_000_000_000_000_000..8_000_000_000_000_000);
            let dt: DateTime<Utc> = DateTime::from_timestamp_micros(us).expect("in range");
            let expected = if us % 1_000_000 == 0 {
                dt.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            } else {
                dt.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string()
            };
            assert_eq!(format_bigquery_ts(us), expected, "{us}");
        }
    }
}
