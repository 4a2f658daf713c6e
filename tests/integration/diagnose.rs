//! `repurchase diagnose`: the business figures of a run date's raw partitions, as the command
//! publishes them, against DuckDB recomputing every count from the same Parquet
//! (`tests/diagnose_check.py`, its own queries); the page in headless Chromium; a rerun byte for
//! byte; a run date without raw data refused with the partition named.

use std::collections::BTreeMap;
use std::process::Command;

use repurchase_cli::diagnose::{Diagnostics, PAGE_FILE, REPORT_FILE};
use repurchase_core::layout::Dataset;
use repurchase_core::schema::Table;
use repurchase_core::{DataRoot, StoreConfig};
use repurchase_datagen::{GenConfig, OutputFormat, Profile};
use repurchase_extract::Source;
use serde_json::Value;

use crate::report::{assert_screenshot, run_clean, svg_element, work_dir};
use crate::support::{binary, date, venv_python};

/// (month or year, key, counts…) rows of one DuckDB table, as strings and integers.
fn duck_rows(v: &Value, table: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = v[table]
        .as_array()
        .unwrap_or_else(|| panic!("DuckDB gave no {table}"))
        .iter()
        .map(|r| {
            fields
                .iter()
                .map(|f| match &r[*f] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("{table}.{f}: {other}"),
                })
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnostics_equal_duckdb_on_the_same_parquet_and_render_in_chromium() {
    let dir = work_dir("diagnose");
    let d = date("2025-06-30");
    let source = DataRoot::open(
        dir.join("source").to_str().unwrap(),
        &StoreConfig::default(),
    )
    .unwrap();
    let cfg = GenConfig::new(3_000, 17, d.date(), Profile::Signal);
    repurchase_datagen::generate_into(&source, &cfg, OutputFormat::Parquet)
        .await
        .unwrap();
    let lake_dir = dir.join("lake");
    let lake = DataRoot::open(lake_dir.to_str().unwrap(), &StoreConfig::default()).unwrap();
    repurchase_extract::extract(&lake, d, &Source::Files(source.clone()))
        .await
        .unwrap();

    // The command as a person runs it.
    let out = Command::new(binary("repurchase"))
        .args(["diagnose", "--run-date", "2025-06-30", "--data-root"])
        .arg(&lake_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let part = lake_dir.join(Dataset::Diagnostics.partition(d));
    let report: Diagnostics =
        serde_json::from_slice(&std::fs::read(part.join(REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(
        printed["closed_customers"],
        report.repurchase_overall.closed
    );

    // DuckDB, from the same files.
    let out = Command::new(venv_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/diagnose_check.py"
        ))
        .arg(&lake_dir)
        .args(["2025-06-30", "60"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck: Value = serde_json::from_slice(&out.stdout).unwrap();

    let months = sorted(
        report
            .months
            .iter()
            .map(|m| {
                vec![
                    m.month.clone(),
                    m.orders.to_string(),
                    m.customers.to_string(),
                    m.items.to_string(),
                    m.cents.to_string(),
                ]
            })
            .collect(),
    );
    assert_eq!(
        months,
        duck_rows(
            &duck,
            "months",
            &["month", "orders", "customers", "items", "cents"]
        )
    );
    // Every order of the raw partition is in a month.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(lake_dir.join(Dataset::Raw(Table::Orders).manifest_path(d))).unwrap(),
    )
    .unwrap();
    let raw_orders = manifest["row_count"].as_u64().unwrap();
    assert!(raw_orders > 1_000, "{raw_orders} orders");
    assert_eq!(
        report.months.iter().map(|m| m.orders).sum::<u64>(),
        raw_orders
    );
    assert!(report.months.len() > 24, "{} months", report.months.len());

    for (table, shares) in [
        ("status_mix", &report.status_mix),
        ("sessions_by_source", &report.sessions_by_source),
        ("first_orders_by_source", &report.first_orders_by_source),
    ] {
        let ours = sorted(
            shares
                .iter()
                .map(|s| vec![s.month.clone(), s.key.clone(), s.count.to_string()])
                .collect(),
        );
        assert_eq!(
            ours,
            duck_rows(&duck, table, &["month", "key", "count"]),
            "{table}"
        );
        let mut per_month: BTreeMap<&str, f64> = BTreeMap::new();
        for s in shares {
            *per_month.entry(&s.month).or_default() += s.share;
        }
        assert!(
            per_month.values().all(|t| (t - 1.0).abs() < 1e-12),
            "{table}: shares of a month do not sum to 1"
        );
    }
    // First orders are attributed to a session, not left unknown.
    assert!(
        report
            .first_orders_by_source
            .iter()
            .all(|s| s.key != "(no purchase session)"),
        "a first order without its purchase session"
    );

    let funnel = sorted(
        report
            .funnel
            .iter()
            .map(|f| {
                vec![
                    f.year.to_string(),
                    f.sessions.to_string(),
                    f.browse.to_string(),
                    f.cart.to_string(),
                    f.purchase.to_string(),
                ]
            })
            .collect(),
    );
    assert_eq!(
        funnel,
        duck_rows(
            &duck,
            "funnel",
            &["year", "sessions", "browse", "cart", "purchase"]
        )
    );
    assert!(
        report
            .funnel
            .iter()
            .all(|f| f.browse >= f.cart && f.cart >= f.purchase)
    );

    let cohort = sorted(
        report
            .repurchase_by_month
            .iter()
            .map(|c| {
                vec![
                    c.month.clone(),
                    c.first_orders.to_string(),
                    c.closed.to_string(),
                    c.repurchased.to_string(),
                ]
            })
            .collect(),
    );
    assert_eq!(
        cohort,
        duck_rows(
            &duck,
            "repurchase_by_month",
            &["month", "first_orders", "closed", "repurchased"]
        )
    );
    let segments = sorted(
        report
            .segments
            .iter()
            .map(|s| {
                vec![
                    s.dimension.clone(),
                    s.value.clone(),
                    s.closed.to_string(),
                    s.repurchased.to_string(),
                ]
            })
            .collect(),
    );
    assert_eq!(
        segments,
        duck_rows(
            &duck,
            "segments",
            &["dimension", "value", "closed", "repurchased"]
        )
    );
    // Each dimension splits the same closed customers; some repurchased, not all.
    let overall = &report.repurchase_overall;
    assert!(
        overall.closed > 500 && overall.repurchased > 20,
        "{overall:?}"
    );
    assert!(overall.repurchased < overall.closed);
    for dim in ["sign-up channel", "category of first purchase", "age band"] {
        let (c, r) = report
            .segments
            .iter()
            .filter(|s| s.dimension == dim)
            .fold((0, 0), |(c, r), s| (c + s.closed, r + s.repurchased));
        assert_eq!((c, r), (overall.closed, overall.repurchased), "{dim}");
    }
    for s in &report.segments {
        let i = s.rate.unwrap();
        assert!(i.low <= i.rate && i.rate <= i.high, "{s:?}");
    }
    assert_eq!(
        report.trend_windows,
        ["2023-07", "2024-06", "2024-07", "2025-06"]
    );
    assert!(
        report
            .trends
            .iter()
            .any(|t| t.figure.starts_with("share of sessions: ")),
        "{:?}",
        report.trends
    );

    // The page in a real browser: every panel drawn, the tables there.
    let browser_dir = work_dir("diagnose-page");
    let page = browser_dir.join(PAGE_FILE);
    std::fs::copy(part.join(PAGE_FILE), &page).unwrap();
    let run = run_clean(&page, &browser_dir, "the diagnostics page");
    for id in [
        "orders",
        "repurchase-rate",
        "status-mix",
        "sessions-by-source",
        "first-orders-by-source",
        "items-per-order",
        "basket-value",
    ] {
        assert!(svg_element(&run.dom, id).contains("<polyline"), "{id}");
    }
    let latest = report.months.last().unwrap();
    assert!(
        svg_element(&run.dom, "orders").contains(&format!("orders, {}", latest.month)),
        "no point for the latest month"
    );
    for heading in [
        "Browse → cart → purchase",
        "Repurchase within 60 days by sign-up channel",
        "Repurchase within 60 days by category of first purchase",
        "Repurchase within 60 days by age band",
        "The latest 12 complete months",
    ] {
        assert!(run.dom.contains(heading), "no table “{heading}”");
    }
    assert_screenshot(&run, "diagnostics page");

    // A rerun gives the same bytes.
    let (json, html) = (
        std::fs::read(part.join(REPORT_FILE)).unwrap(),
        std::fs::read(part.join(PAGE_FILE)).unwrap(),
    );
    repurchase_cli::diagnose::diagnose(&lake, d, 60)
        .await
        .unwrap();
    assert!(std::fs::read(part.join(REPORT_FILE)).unwrap() == json);
    assert!(std::fs::read(part.join(PAGE_FILE)).unwrap() == html);

    // A day without raw data: exit 2, naming the partition; nothing published.
    let out = Command::new(binary("repurchase"))
        .args(["diagnose", "--run-date", "2025-07-01", "--data-root"])
        .arg(&lake_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("raw/orders/run_date=2025-07-01"),
        "{stderr}"
    );
    assert!(
        !lake_dir
            .join(Dataset::Diagnostics.partition(date("2025-07-01")))
            .exists()
    );
}
