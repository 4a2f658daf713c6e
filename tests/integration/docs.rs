//! The documentation against what it describes: README.md and every page under docs/ link only to
//! files and headings that exist, the README links every page and every page links back,
//! docs/WORKERS.md lists exactly the flags each binary's `--help` prints, and the README shows the
//! two commands that `.ci/run` and `scripts/` define.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::binary;

/// The worker binaries and `repurchase`'s own subcommands, as their `--help` is invoked; each has
/// a `### \`<command>\`` section under "Flags" in docs/WORKERS.md.
const COMMANDS: [&str; 10] = [
    "extract",
    "build-features",
    "train",
    "calibrate",
    "score",
    "repurchase backtest",
    "repurchase monitor",
    "repurchase diagnose",
    "repurchase generate",
    "repurchase demo",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    pages.insert(0, repo().join("README.md"));
    pages
}

fn shown(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The markdown split into prose and fenced code blocks: `prose` has every line of a fence (its
/// delimiters included) blanked, so line structure survives; `fenced` holds the fences' lines.
struct Split {
    prose: String,
    fenced: Vec<Vec<String>>,
}

fn split_fences(text: &str) -> Split {
    let mut prose = String::new();
    let mut fenced = Vec::new();
    let mut open: Option<(char, usize, Vec<String>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        match open.take() {
            None => {
                let (c, n) = if run('`') >= 3 {
                    ('`', run('`'))
                } else {
                    ('~', run('~'))
                };
                if n >= 3 {
                    open = Some((c, n, Vec::new()));
                } else {
                    prose.push_str(line);
                }
            }
            Some((c, n, mut lines)) => {
                if run(c) >= n && trimmed.trim_end().chars().all(|x| x == c) {
                    fenced.push(lines);
                } else {
                    lines.push(line.to_string());
                    open = Some((c, n, lines));
                }
            }
        }
        prose.push('\n');
    }
    if let Some((_, _, lines)) = open {
        fenced.push(lines);
    }
    Split { prose, fenced }
}

/// CommonMark code spans of `prose`: a run of N backticks up to the next run of exactly N (across
/// line breaks, which become spaces). Returns the spans and the prose without them.
fn code_spans(prose: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = prose.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let (mut spans, mut rest) = (Vec::new(), String::new());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            rest.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let close = loop {
            match chars[j.min(chars.len())..].iter().position(|&c| c == '`') {
                None => break None,
                Some(k) => {
                    let m = run_at(j + k);
                    if m == n {
                        break Some(j + k);
                    }
                    j += k + m;
                }
            }
        };
        match close {
            Some(end) => {
                let span: String = chars[i + n..end].iter().collect();
                spans.push(span.replace('\n', " ").trim().to_string());
                i = end + n;
            }
            None => {
                rest.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    (spans, rest)
}

/// GitHub's anchor for a heading: lowercase, punctuation other than '-' and '_' dropped (inline
/// code's backticks included), each space a '-'.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The ATX headings of a page outside code, with their level.
fn headings(text: &str) -> Vec<(usize, String)> {
    split_fences(text)
        .prose
        .lines()
        .filter_map(|line| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let rest = line[level..].strip_prefix(' ')?;
            (1..=6)
                .contains(&level)
                .then(|| (level, rest.trim().trim_end_matches('#').trim().to_string()))
        })
        .collect()
}

/// Every anchor a page's headings define; a repeated slug gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    headings(text)
        .into_iter()
        .map(|(_, h)| {
            let s = slug(&h);
            let n = seen.entry(s.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                s
            } else {
                format!("{s}-{}", *n - 1)
            }
        })
        .collect()
}

/// Targets of the inline links `[text](target)` of a page, outside code.
fn link_targets(text: &str) -> Vec<String> {
    let (_, prose) = code_spans(&split_fences(text).prose);
    prose
        .match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &prose[i + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].trim().to_string())
        })
        .collect()
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// Where a relative link of `page` leads: the file (lexically normalised) and the anchor, if any.
fn resolve(page: &Path, target: &str) -> (PathBuf, Option<String>) {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a.to_string())),
        None => (target, None),
    };
    if path.is_empty() {
        return (page.to_path_buf(), anchor);
    }
    let mut out = PathBuf::new();
    for part in page.parent().expect("page dir").join(path).components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    (out, anchor)
}

/// Problems with the relative links of `pages` (path, text): a missing file, an anchor on a file
/// that has no headings, or an anchor that no heading of the target defines.
fn link_problems(pages: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (page, text) in pages {
        for target in link_targets(text) {
            if is_external(&target) {
                continue;
            }
            let (file, anchor) = resolve(page, &target);
            let known = pages.iter().find(|(p, _)| *p == file);
            if known.is_none() && !file.exists() {
                problems.push(format!(
                    "{}: link ({target}): {} does not exist",
                    shown(page),
                    shown(&file)
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if file.extension().is_none_or(|x| x != "md") {
                problems.push(format!(
                    "{}: link ({target}): an anchor on a file that is not markdown",
                    shown(page)
                ));
                continue;
            }
            let defined = match known {
                Some((_, t)) => anchors(t),
                None => anchors(&read(&file)),
            };
            if !defined.contains(&anchor) {
                problems.push(format!(
                    "{}: link ({target}): no heading of {} has the anchor #{anchor} (it has: {})",
                    shown(page),
                    shown(&file),
                    defined.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    problems
}

fn load(paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
    paths.iter().map(|p| (p.clone(), read(p))).collect()
}

#[test]
fn docs_links_resolve_to_files_and_headings() {
    let pages = load(&pages());
    assert!(pages.len() >= 9, "README.md and docs/*.md: {}", pages.len());
    let problems = link_problems(&pages);
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn docs_readme_links_every_page_and_every_page_links_back() {
    let pages = load(&pages());
    let (readme, text) = &pages[0];
    let linked: BTreeSet<PathBuf> = link_targets(text)
        .iter()
        .filter(|t| !is_external(t))
        .map(|t| resolve(readme, t).0)
        .collect();
    let mut problems = Vec::new();
    for (page, text) in &pages[1..] {
        if !linked.contains(page) {
            problems.push(format!("README.md does not link {}", shown(page)));
        }
        let back = link_targets(text)
            .iter()
            .any(|t| !is_external(t) && resolve(page, t).0 == *readme);
        if !back {
            problems.push(format!("{} does not link back to README.md", shown(page)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The long flags a command's `--help` lists (one option per line, at clap's 2- or 6-space
/// indent; flags quoted in descriptions are further in), without `--help` and `--version`.
fn help_flags(command: &str) -> BTreeSet<String> {
    let mut words = command.split(' ');
    let bin = words.next().expect("binary");
    let out = Command::new(binary(bin))
        .args(words)
        .arg("--help")
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn --help");
    assert!(out.status.success(), "{command} --help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    let flags: BTreeSet<String> = help
        .lines()
        .filter_map(|line| {
            let short = line.strip_prefix("  -").and_then(|r| {
                let mut c = r.chars();
                (c.next()?.is_ascii_alphanumeric() && c.as_str().starts_with(", --"))
                    .then(|| &c.as_str()[4..])
            });
            let rest = short.or_else(|| line.strip_prefix("      --"))?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty()).then(|| format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect();
    assert!(
        flags.len() >= 2,
        "{command} --help: no options found in\n{help}"
    );
    flags
}

/// The long flags written in `text` (`--name`, letters, digits and '-').
fn flags_in(text: &str) -> Vec<String> {
    text.match_indices("--")
        .filter(|(i, _)| *i == 0 || !text[..*i].ends_with(|c: char| c.is_alphanumeric()))
        .filter_map(|(i, _)| {
            let name: String = text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let name = name.trim_end_matches('-');
            name.starts_with(|c: char| c.is_ascii_alphanumeric())
                .then(|| format!("--{name}"))
        })
        .collect()
}

/// The command a code span starts with (`score --shard I/N`, `repurchase backtest …`), if any;
/// `repurchase <worker>` runs the worker's own code and flags.
fn command_of(span: &str) -> Option<&'static str> {
    let mut words = span.split_whitespace();
    let first = words.next()?;
    let first = if first == "repurchase" {
        words.next()?
    } else {
        first
    };
    COMMANDS
        .into_iter()
        .find(|c| *c == first || c.strip_prefix("repurchase ") == Some(first))
}

/// The first cell of each row of the markdown tables in `text` (header and rule rows included).
fn first_cells(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('|'))
        .map(|row| {
            let mut cell = String::new();
            let mut escaped = false;
            for c in row.chars() {
                if c == '|' && !escaped {
                    break;
                }
                escaped = c == '\\';
                cell.push(c);
            }
            cell
        })
        .collect()
}

/// docs/WORKERS.md's "Flags" section: the flags of each `### \`<command>\`` subsection's tables
/// (first cells), plus those of "Every worker" when the subsection links `#every-worker`.
fn documented_flags(workers_md: &str) -> BTreeMap<String, BTreeSet<String>> {
    let prose = split_fences(workers_md).prose;
    let start = prose
        .find("\n## Flags\n")
        .expect("docs/WORKERS.md has a ## Flags section");
    let section = &prose[start + 1..];
    let section = match section[1..].find("\n## ") {
        Some(end) => &section[..end + 1],
        None => section,
    };
    let mut parts: Vec<(String, &str)> = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("\n### ") {
        rest = &rest[i + 5..];
        let (title, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let end = body.find("\n### ").map_or(body.len(), |e| e + 1);
        parts.push((title.trim().trim_matches('`').to_string(), &body[..end]));
    }
    let table_flags = |body: &str| -> BTreeSet<String> {
        first_cells(body).iter().flat_map(|c| flags_in(c)).collect()
    };
    let common = parts
        .iter()
        .find(|(t, _)| t == "Every worker")
        .map(|(_, b)| table_flags(b))
        .expect("docs/WORKERS.md: ### Every worker under ## Flags");
    parts
        .iter()
        .filter(|(t, _)| t != "Every worker")
        .map(|(title, body)| {
            let mut flags = table_flags(body);
            if body.contains("(#every-worker)") {
                flags.extend(common.iter().cloned());
            }
            (title.clone(), flags)
        })
        .collect()
}

#[test]
fn docs_workers_md_has_every_flag_of_every_binary_and_no_other() {
    let text = read(&repo().join("docs/WORKERS.md"));
    let help: BTreeMap<&str, BTreeSet<String>> =
        COMMANDS.iter().map(|c| (*c, help_flags(c))).collect();
    let any_help: BTreeSet<&String> = help.values().flatten().collect();
    let mut problems = Vec::new();

    // Each command's section lists what its --help prints, no more, no less.
    let documented = documented_flags(&text);
    for command in COMMANDS {
        let Some(doc) = documented.get(command) else {
            problems.push(format!("no section ### `{command}` under ## Flags"));
            continue;
        };
        for f in help[command].difference(doc) {
            problems.push(format!(
                "`{command} {f}` is in its --help but not documented"
            ));
        }
        for f in doc.difference(&help[command]) {
            problems.push(format!(
                "`{command} {f}` is documented but not in its --help"
            ));
        }
    }
    for title in documented.keys() {
        if !COMMANDS.contains(&title.as_str()) {
            problems.push(format!("### {title} under ## Flags is no known command"));
        }
    }

    // Anywhere on the page, a flag in code belongs to the command the code names, or to one
    // (clap's own `--help` and `--version` to all).
    let split = split_fences(&text);
    let (mut spans, _) = code_spans(&split.prose);
    spans.extend(split.fenced.into_iter().flatten());
    for span in &spans {
        let command = command_of(span);
        for f in flags_in(span) {
            let known = f == "--help"
                || f == "--version"
                || match command {
                    Some(c) => help[c].contains(&f),
                    None => any_help.contains(&f),
                };
            if !known {
                let whose = command.unwrap_or("any binary");
                problems.push(format!("`{span}`: {f} is no flag of {whose}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/WORKERS.md and the binaries' --help disagree:\n{}",
        problems.join("\n")
    );
}

/// The command a script hands over to with its last `exec`.
fn exec_line(script: &Path) -> String {
    let text = read(script);
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("exec "))
        .unwrap_or_else(|| panic!("{}: no exec line", shown(script)))
        .trim()
        .to_string()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[test]
fn docs_readme_shows_the_two_commands_verbatim() {
    // CI's one command is the test command; the demo is the script that execs `repurchase demo`.
    let test = exec_line(&repo().join(".ci/run"));
    let demo = "scripts/demo".to_string();
    let demo_exec = exec_line(&repo().join(&demo));
    assert!(
        demo_exec.contains("/repurchase\" demo") || demo_exec.contains("/repurchase demo"),
        "{demo} no longer runs `repurchase demo`: {demo_exec}"
    );
    for command in [&demo, &test] {
        assert!(
            is_executable(&repo().join(command)),
            "{command} is not an executable file"
        );
    }

    let readme = read(&repo().join("README.md"));
    let shown_together = split_fences(&readme).fenced.iter().any(|block| {
        let commands: Vec<&str> = block
            .iter()
            .map(|l| l.split(" #").next().unwrap_or("").trim())
            .filter(|c| !c.is_empty())
            .collect();
        commands == [demo.as_str(), test.as_str()]
    });
    assert!(
        shown_together,
        "README.md has no fenced block of exactly the two commands `{demo}` and `{test}` \
         (comments after ` #` aside)"
    );
}

#[test]
fn docs_checks_follow_githubs_rules() {
    assert_eq!(slug("`repurchase backtest`"), "repurchase-backtest");
    assert_eq!(
        slug("Rolling-origin backtest: the evaluation of what is actually served"),
        "rolling-origin-backtest-the-evaluation-of-what-is-actually-served"
    );
    assert_eq!(
        slug("Two runs of one stage, for one_date?"),
        "two-runs-of-one-stage-for-one_date"
    );
    assert_eq!(slug("1× — 100,000 users"), "1--100000-users");
    let page = "# T\n\n## A\n\n## A\n\n```sh\n# not a heading\n```\n";
    assert_eq!(
        anchors(page),
        ["a", "a-1", "t"].map(String::from).into_iter().collect()
    );

    // Links in code are no links; a span may cross a line break.
    let text = "[a](x.md) `[b](y.md)` ``c ` [d](z.md)``\n\n```\n[e](w.md)\n```\n`--run-date\nD`";
    assert_eq!(link_targets(text), ["x.md"]);
    let (spans, _) = code_spans(&split_fences(text).prose);
    assert_eq!(spans, ["[b](y.md)", "c ` [d](z.md)", "--run-date D"]);
    assert_eq!(
        flags_in("`score --shard I/N \\| --merge-shards N` a--b --x-"),
        ["--shard", "--merge-shards", "--x"]
    );
    assert_eq!(
        command_of("repurchase backtest --origins N"),
        Some("repurchase backtest")
    );
    assert_eq!(command_of("repurchase score --shard 1/2"), Some("score"));
    assert_eq!(command_of("--promotion-margin 1"), None);

    // A broken link and a missing anchor are both reported.
    let dir = repo().join("docs");
    let pages = vec![(
        dir.join("A.md"),
        "# A\n\n[ok](#a) [gone](NOPE.md) [bad](#b)\n".to_string(),
    )];
    let problems = link_problems(&pages);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("NOPE.md does not exist"),
        "{problems:?}"
    );
    assert!(problems[1].contains("#b"), "{problems:?}");
}
