//! The binaries as an operator runs them: flags and environment, exit codes, JSON logs.

use std::process::{Command, Output};

use crate::support::binary;

fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary(name));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env("REPURCHASE_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_documents_every_flag_and_its_variable() {
    for (bin, flags) in [
        (
            "extract",
            &["--run-date", "--data-root", "--source", "--log-format"][..],
        ),
        (
            "build-features",
            &["--run-date", "--data-root", "--anchor", "--horizon-days"][..],
        ),
        (
            "train",
            &[
                "--run-date",
                "--data-root",
                "--valid-days",
                "--test-days",
                "--seed",
            ][..],
        ),
        ("calibrate", &["--run-date", "--data-root"][..]),
        ("score", &["--run-date", "--data-root", "--model-date"][..]),
    ] {
        let out = run(bin, &["--help"], &[]);
        assert!(out.status.success(), "{bin} --help failed");
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in flags {
            assert!(help.contains(flag), "{bin} --help lacks {flag}");
        }
        assert!(
            help.contains("REPURCHASE_DATA_ROOT") && help.contains("REPURCHASE_RUN_DATE"),
            "{bin} --help lacks env vars:\n{help}"
        );
    }
}

#[test]
fn binaries_run_the_chain_with_json_logs_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("source");
    let lake = dir.path().join("lake");
    let (src_s, lake_s) = (src.to_str().unwrap(), lake.to_str().unwrap());
    let generated = Command::new(binary("repurchase"))
        .args([
            "generate",
            "--users",
            "4000",
            "--seed",
            "9",
            "--end-date",
            "2025-06-30",
            "--out",
            src_s,
        ])
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "generate: {}",
        stderr(&generated)
    );
    assert!(src.join("events.csv").exists() && src.join("truth/anchor_truth.parquet").exists());

    let env = [
        ("REPURCHASE_DATA_ROOT", lake_s),
        ("REPURCHASE_RUN_DATE", "2025-06-30"),
    ];
    let out = run("extract", &["--source", src_s], &env);
    assert!(out.status.success(), "extract: {}", stderr(&out));
    // JSON lines carrying stage, run date and row counts.
    let logs = stderr(&out);
    let line = logs
        .lines()
        .find(|l| l.contains("step finished"))
        .expect("a step log line");
    let v: serde_json::Value = serde_json::from_str(line).expect("json log line");
    assert_eq!(v["span"]["stage"], "extract");
    assert_eq!(v["span"]["run_date"], "2025-06-30");
    assert!(
        v["rows_in"].is_number() && v["rows_out"].is_number() && v["duration_ms"].is_number(),
        "{line}"
    );

    for (bin, args) in [
        ("build-features", vec![]),
        ("train", vec!["--valid-days", "180", "--test-days", "180"]),
        ("calibrate", vec![]),
        ("score", vec![]),
    ] {
        let out = run(bin, &args, &env);
        assert!(out.status.success(), "{bin}: {}", stderr(&out));
    }
    assert!(
        lake.join("scores/run_date=2025-06-30/_manifest.json")
            .exists()
    );

    // The umbrella command runs the same worker code.
    let out = Command::new(binary("repurchase"))
        .args(["score", "--run-date", "2025-06-30", "--data-root", lake_s])
        .output()
        .unwrap();
    assert!(out.status.success(), "repurchase score: {}", stderr(&out));

    // Bad input: exit 2 and a message naming the problem; nothing written.
    let empty = dir.path().join("empty-source");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(
        "extract",
        &[
            "--source",
            empty.to_str().unwrap(),
            "--run-date",
            "2025-07-01",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("users") && stderr(&out).contains("not found"),
        "{}",
        stderr(&out)
    );
    assert!(!lake.join("raw/users/run_date=2025-07-01").exists());

    let out = run("train", &["--run-date", "2025-13-01"], &env);
    assert_eq!(out.status.code(), Some(2));
    let out = run("score", &["--run-date", "2025-07-01"], &env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "score without features: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("not published"), "{}", stderr(&out));
}

/// Dates reach SQL only as typed values parsed from strict `YYYY-MM-DD`: anything else, including
/// SQL or path fragments, is refused at the door with exit 2 and nothing is written.
#[test]
fn injection_through_dates_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let attempts = [
        "2025-06-30' OR '1'='1",
        "2025-06-30; DROP TABLE orders",
        "2025-06-30 00:00:00",
        "../2025-06-30",
        "2025-06-30/../../etc",
        "2025-13-01",
        "2025-02-30",
        "20250630",
        "",
    ];
    for bin in ["extract", "build-features", "train", "calibrate", "score"] {
        for bad in attempts {
            let out = run(bin, &["--run-date", bad, "--data-root", &root], &[]);
            assert_eq!(out.status.code(), Some(2), "{bin} --run-date {bad:?}");
            assert!(
                stderr(&out).contains("--run-date") || stderr(&out).contains("run date"),
                "{bin} --run-date {bad:?}: {}",
                stderr(&out)
            );
        }
    }
    for bad in ["2025-06-30' --", "latest"] {
        let out = run(
            "score",
            &[
                "--run-date",
                "2025-06-30",
                "--model-date",
                bad,
                "--data-root",
                &root,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "--model-date {bad:?}");
    }
    // The environment variable is held to the same rule.
    let out = run(
        "extract",
        &["--data-root", &root],
        &[("REPURCHASE_RUN_DATE", "2025-06-30' OR 1=1 --")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing may be written for a refused run date"
    );
}

/// A booster setting that would fit a constant model is refused by the flag parser: exit 2, the
/// flag and its range on stderr, nothing written.
#[test]
fn train_refuses_meaningless_booster_settings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let out = run(
        "train",
        &[
            "--run-date",
            "2025-06-30",
            "--data-root",
            &root,
            "--subsample",
            "0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--subsample") && stderr(&out).contains("(0, 1]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_file_where_a_folder_belongs_is_bad_input_not_transient() {
    // Exit 75 would have the DAG retry a typo for ever; a file given as the data root or as the
    // source is a configuration error (2), named as such.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let file = file.to_string_lossy().into_owned();
    let lake = dir.path().join("lake").to_string_lossy().into_owned();
    for (source, root) in [
        (file.as_str(), lake.as_str()),
        (lake.as_str(), file.as_str()),
    ] {
        let out = run(
            "extract",
            &[
                "--run-date",
                "2025-06-30",
                "--source",
                source,
                "--data-root",
                root,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("it is a file"), "{}", stderr(&out));
    }
}
