//! The HTML shell both pages share: the document head with its one inline stylesheet, the
//! warnings under the heading, the facts table, a figure with its caption, the notes and the
//! closing tags, and [`escape`], through which every string taken from the input passes.
//!
//! The stylesheet is `report.css` beside this file, pulled in at compile time: it reads and
//! diffs as CSS, and the page still carries it inline, so it stays one file with no external
//! reference. A page adds its own rules after it (the timeline does).

/// The rules both pages use; a page may append its own after them.
const STYLE: &str = include_str!("report.css");

/// Escapes text for HTML element content and attribute values: `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Everything up to and including the `<h1>`: the head with `title` and the stylesheet followed
/// by `extra_css`, and the opening of the page body.
pub(crate) fn open(out: &mut String, title: &str, extra_css: &str) {
    let title = escape(title);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n",
    );
    w!(
        out,
        "<title>{title}</title>\n<style>\n{STYLE}{extra_css}</style>\n</head>\n<body>\n<main>\n"
    );
    w!(out, "<h1>{title}</h1>\n");
}

/// One highlighted paragraph per problem found in the input, shown under the lead.
pub(crate) fn warnings(out: &mut String, warnings: &[String]) {
    for warning in warnings {
        w!(out, "<p class=\"warn\">{}</p>\n", escape(warning));
    }
}

/// A section with a key/value table of `facts` (nothing when there are none).
pub(crate) fn facts_section(out: &mut String, heading: &str, facts: &[(String, String)]) {
    if facts.is_empty() {
        return;
    }
    w!(
        out,
        "<section>\n<h2>{}</h2>\n<table class=\"facts\">\n",
        escape(heading)
    );
    for (k, v) in facts {
        w!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(v)
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// An inline `<svg>` (already markup) with its caption (plain text, escaped here).
pub(crate) fn figure(out: &mut String, svg: &str, caption: &str) {
    w!(
        out,
        "<figure>\n{svg}<figcaption>{}</figcaption>\n</figure>\n",
        escape(caption)
    );
}

/// The "Notes" section of plain-text paragraphs (nothing when there are none), then the closing
/// tags of the document.
pub(crate) fn close(out: &mut String, notes: &[String]) {
    if !notes.is_empty() {
        out.push_str("<section>\n<h2>Notes</h2>\n");
        for note in notes {
            w!(out, "<p class=\"note\">{}</p>\n", escape(note));
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("plain – ünïcode"), "plain – ünïcode");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape(""), "");
    }
}
