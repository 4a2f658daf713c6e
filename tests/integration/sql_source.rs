//! One source for the feature SQL: `sql/features/anchors.sql` (with `anchor_set.sql` and
//! `anchor_items.sql`, DataFusion) is the only hand-written version of the feature logic.
//! `scripts/gen-sql` generates from it the Athena query (`sql/features/anchors_athena.sql`), the
//! DuckDB benchmark peer (`bench/duckdb/anchors.sql`) and the column lists of
//! `sql/ddl/features_{train,score}.sql`, all checked in.
//!
//! Here `scripts/gen-sql --check` regenerates them in memory with the test venv's Python (sqlglot
//! pinned in tests/requirements.txt) and fails, with the script's output naming each file and its
//! diff, when one differs: a feature edited in one place only, or a generated file edited by hand.
//! The generated SQL's meaning is tested elsewhere (features_athena.rs runs the Athena SQL and
//! compares it with DataFusion; bench/duckdb/check.py does the same for DuckDB's).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::venv_python;

const GENERATED: [&str; 4] = [
    "sql/features/anchors_athena.sql",
    "bench/duckdb/anchors.sql",
    "sql/ddl/features_train.sql",
    "sql/ddl/features_score.sql",
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `<root>/scripts/gen-sql --check` with the test venv's Python.
fn gen_sql_check(root: &Path) -> Output {
    Command::new(venv_python())
        .arg(root.join("scripts/gen-sql"))
        .arg("--check")
        .current_dir(root)
        .output()
        .expect("run scripts/gen-sql")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn generated_sql_is_up_to_date_with_its_source() {
    let out = gen_sql_check(&workspace());
    assert!(
        out.status.success(),
        "the generated SQL differs from what scripts/gen-sql makes of sql/features/anchors.sql; \
         run scripts/gen-sql and commit its output:\n{}",
        text(&out)
    );
}

/// The check can fail: in a copy of the sources the generator reads, with the files it writes
/// there, a hand edit of two generated files and a removed third make it exit 1 naming exactly
/// those; before the edits it passes. (Independent of the workspace's generated files, which the
/// test above checks.)
#[test]
fn the_check_names_each_file_that_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut inputs = vec![
        "scripts/gen-sql".to_string(),
        "tests/requirements.txt".to_string(),
    ];
    for dir in ["sql/features", "sql/ddl"] {
        for e in std::fs::read_dir(workspace().join(dir)).unwrap() {
            let rel = format!("{dir}/{}", e.unwrap().file_name().to_string_lossy());
            if !GENERATED.contains(&rel.as_str()) {
                inputs.push(rel);
            }
        }
    }
    for rel in inputs.iter().map(String::as_str).chain(GENERATED) {
        std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
    }
    for rel in &inputs {
        std::fs::copy(workspace().join(rel), root.join(rel)).unwrap();
    }
    let wrote = Command::new(venv_python())
        .arg(root.join("scripts/gen-sql"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(wrote.status.success(), "{}", text(&wrote));
    for rel in GENERATED {
        assert!(text(&wrote).contains(&format!("wrote {rel}")), "{rel}");
    }
    let clean = gen_sql_check(root);
    assert!(clean.status.success(), "{}", text(&clean));

    let athena = root.join(GENERATED[0]);
    let sql = std::fs::read_to_string(&athena).unwrap();
    let edited = sql.replacen(
        "DAY_OF_WEEK(a.anchor_time) % 7",
        "DAY_OF_WEEK(a.anchor_time)",
        1,
    );
    assert_ne!(edited, sql);
    std::fs::write(&athena, edited).unwrap();
    let ddl = root.join(GENERATED[2]);
    let sql = std::fs::read_to_string(&ddl).unwrap();
    std::fs::write(&ddl, sql.replacen("`age`", "`age_years`", 1)).unwrap();
    std::fs::remove_file(root.join(GENERATED[1])).unwrap();

    let out = gen_sql_check(root);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    for rel in [GENERATED[0], GENERATED[1], GENERATED[2]] {
        assert!(
            report.contains(&format!("{rel}: differs")),
            "{rel}: {report}"
        );
    }
    assert!(!report.contains(GENERATED[3]), "{report}");
    assert!(
        report.contains("-  CAST(DAY_OF_WEEK(a.anchor_time) AS DOUBLE)"),
        "{report}"
    );
}
