//! How the pages write numbers and labels: fixed decimals, no locale, "n/a" for anything not
//! finite, so the same value always prints the same bytes and no NaN or infinity reaches a page.

/// Fixed-point with `decimals` digits; never prints "-0.000".
pub(crate) fn num(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

pub(crate) fn pct(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{}%", num(v * 100.0, decimals))
    } else {
        "n/a".to_string()
    }
}

/// "10%" for whole percentages, "12.5%" otherwise.
pub(crate) fn pct_short(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let p = v * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        pct(v, 0)
    } else {
        pct(v, 1)
    }
}

pub(crate) fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |x| num(x, decimals))
}

/// Integer with thousands separators: 1234567 → "1,234,567".
pub fn int(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A value with about three significant digits, for bar labels of any magnitude.
pub(crate) fn sig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        num(v, 0)
    } else if a >= 10.0 {
        num(v, 1)
    } else if a >= 1.0 {
        num(v, 2)
    } else {
        num(v, 3)
    }
}

/// An SVG coordinate: one decimal, non-finite drawn at 0 (callers skip non-finite points).
pub(crate) fn c(v: f64) -> String {
    if v.is_finite() {
        num(v, 1)
    } else {
        "0".to_string()
    }
}

/// At most `max` characters, cut with an ellipsis; for labels whose full text is in a tooltip.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(num(-0.0001, 3), "0.000");
        assert_eq!(num(f64::NAN, 3), "n/a");
        assert_eq!(num(f64::INFINITY, 1), "n/a");
        assert_eq!(pct(0.1234, 1), "12.3%");
        assert_eq!(pct_short(0.1), "10%");
        assert_eq!(pct_short(0.125), "12.5%");
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1_000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(sig(1234.6), "1235");
        assert_eq!(sig(0.01234), "0.012");
    }

    #[test]
    fn shorten_cuts_with_an_ellipsis() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(shorten(&"x".repeat(40), 40).chars().count(), 40);
        assert_eq!(shorten(&"x".repeat(41), 40).chars().count(), 40);
    }
}
