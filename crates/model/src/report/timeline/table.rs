//! The plain tables of the timeline page, shown after the panels: text cells, short rows padded,
//! and columns that hold only numbers right-aligned.

use super::Table;
use crate::report::page::escape;

/// Whether a cell reads as a number ("0.734", "-1.2", "12.5%", "1,234"), for right alignment.
fn numeric(cell: &str) -> bool {
    let s = cell.trim();
    let body = s.strip_prefix(['-', '+', '−']).unwrap_or(s);
    body.chars().any(|ch| ch.is_ascii_digit())
        && body
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | ',' | '%'))
}

/// One table in a horizontally scrolling box, so a wide table never widens the page.
pub(crate) fn table(out: &mut String, t: &Table) {
    let cols = t
        .rows
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(t.header.len());
    // A column is numeric when it has a number and nothing but numbers and "missing" marks.
    let right: Vec<bool> = (0..cols)
        .map(|j| {
            let cells = || t.rows.iter().filter_map(|r| r.get(j)).map(|s| s.trim());
            cells().any(numeric)
                && cells()
                    .all(|s| s.is_empty() || matches!(s, "n/a" | "-" | "–" | "—") || numeric(s))
        })
        .collect();
    let class = |j: usize| if right[j] { " class=\"num\"" } else { "" };
    out.push_str("<div class=\"scroll\">\n<table class=\"data\">\n");
    if !t.caption.is_empty() {
        w!(out, "<caption>{}</caption>\n", escape(&t.caption));
    }
    if !t.header.is_empty() {
        out.push_str("<thead><tr>");
        for j in 0..cols {
            let h = t.header.get(j).map_or("", String::as_str);
            w!(out, "<th{}>{}</th>", class(j), escape(h));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    if t.rows.is_empty() {
        w!(
            out,
            "<tr><td class=\"muted\" colspan=\"{}\">no rows</td></tr>\n",
            cols.max(1)
        );
    }
    for row in &t.rows {
        out.push_str("<tr>");
        for j in 0..cols {
            let cell = row.get(j).map_or("", String::as_str);
            w!(out, "<td{}>{}</td>", class(j), escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

#[cfg(test)]
mod tests {
    use super::numeric;

    #[test]
    fn numeric_cells() {
        assert!(numeric("0.734") && numeric("-1.2") && numeric("12.5%") && numeric("1,234"));
        assert!(!numeric("2025-04-07") && !numeric("n/a") && !numeric("") && !numeric("-"));
    }
}
