//! Snapshots of what people read: every command's `--help` and the shape of the demo summary.
//!
//! A flag renamed, a default changed or a line dropped from the summary shows up as a snapshot
//! diff to review (`cargo insta review`, or rerun with `INSTA_UPDATE=always` and read the
//! diff of `tests/integration/snapshots/`), not as a silent change in the README's promises.

use std::process::Command;

use crate::support::binary;

/// Every binary and subcommand whose help is a user's reference.
const COMMANDS: &[(&str, &[&str])] = &[
    ("extract", &[]),
    ("build-features", &[]),
    ("train", &[]),
    ("calibrate", &[]),
    ("score", &[]),
    ("repurchase", &[]),
    ("repurchase", &["generate"]),
    ("repurchase", &["demo"]),
    ("repurchase", &["backtest"]),
    ("repurchase", &["monitor"]),
    ("repurchase", &["diagnose"]),
];

/// `--help` as a user sees it, with no `REPURCHASE_*` variable set (clap shows a variable's
/// current value) and a fixed width (clap wraps at the terminal's).
fn help(bin: &str, sub: &[&str]) -> String {
    let mut cmd = Command::new(binary(bin));
    cmd.args(sub).arg("--help").env("COLUMNS", "100");
    for (k, _) in std::env::vars() {
        if k.starts_with("REPURCHASE_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("spawn binary");
    assert!(out.status.success(), "{bin} {sub:?} --help failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn every_command_help() {
    for (bin, sub) in COMMANDS {
        let name = std::iter::once(*bin)
            .chain(sub.iter().copied())
            .collect::<Vec<_>>()
            .join("-");
        insta::assert_snapshot!(format!("help-{name}"), help(bin, sub));
    }
}

/// `text` with every number replaced by `#` and runs of spaces by one: what stays is the
/// summary's shape (its lines, labels and units), whatever the figures of a run.
fn shape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|n| n.is_ascii_digit() || *n == '.' || *n == ',')
            {
                chars.next();
            }
            out.push('#');
        } else if c == ' ' {
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The top customer's reasons and the largest drift as their shape: which features they are
/// depends on the model, how they read does not.
fn mask_reasons(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("  largest PSI  ") {
        let figures = rest.split_once(' ').map_or("", |(_, f)| f);
        return format!("  largest PSI  <feature> {figures}");
    }
    for prefix in ["  raised by ", "  lowered by "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            let n = rest.split("), ").count();
            let one = "<feature> = <value> (<log-odds>)";
            return format!("{prefix}{}", vec![one; n].join(", "));
        }
    }
    line.to_string()
}

#[test]
fn shape_redacts_figures_not_words() {
    assert_eq!(
        shape("train      20429   5.09  150 trees, 10.8%"),
        "train # # # trees, #%"
    );
}

#[test]
fn demo_summary_shape() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary("repurchase"))
        .args(["demo", "--users", "30000", "--log-format", "json", "--dir"])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn repurchase demo");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 summary");
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = stdout
        .lines()
        .find_map(|l| l.strip_prefix("repurchase demo — "))
        .expect("a summary names the model version")
        .to_string();
    let text = stdout
        .replace(&version, "<model version>")
        .replace(&dir.path().display().to_string(), "<dir>")
        .lines()
        .map(mask_reasons)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("demo-summary-shape", shape(&text));
}
