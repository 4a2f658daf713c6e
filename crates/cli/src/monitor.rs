//! `repurchase monitor`: the drift reports of the last N run dates on one page.
//!
//! Reads every published `monitoring/run_date=D/drift.json` in `(run date − days, run date]` and
//! publishes `monitoring_pages/run_date=D/monitoring.html`: the score's PSI against the served
//! model's reference and against the previous run, the rows scored, the alerts per day, and the
//! features that moved most in the window, each plotted over the run dates with its thresholds
//! ([`repurchase_model::report::timeline`]); tables of the latest day's alerts and largest PSI.
//! Where a calibration in the window recorded the served model's realised performance
//! (`calibration/realised.json`), its ROC-AUC and its mean probability against the observed rate
//! are plotted at the calibration date, and a table names the day scored.
//! The page depends only on the published reports it lists as inputs, so a rerun gives the same
//! bytes.

use std::collections::BTreeMap;

use repurchase_contracts::backtest::Backtest;
use repurchase_contracts::calibration::read_realised;
use repurchase_contracts::monitoring::{DriftReport, read_report};
use repurchase_contracts::params::to_value;
use repurchase_core::layout::Dataset;
use repurchase_core::manifest::Manifest;
use repurchase_core::publish::{PartitionWriter, Provenance};
use repurchase_core::{DataRoot, RunDate};
use repurchase_model::drift::{HistogramDrift, Level, SCORE};
use repurchase_model::report::timeline::{Panel, Role, Series, Table, TimelineInput, render};
use serde::Serialize;

use crate::error::{CliError, Result};

/// The page's file name in its partition.
pub const PAGE_FILE: &str = "monitoring.html";
/// Features with a panel of their own: those whose PSI against the reference peaked highest.
const FEATURE_PANELS: usize = 6;

/// What `repurchase monitor` published.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorOutcome {
    /// Run dates with a drift report in the window.
    pub days: usize,
    /// Alerts of the latest report.
    pub latest_alerts: usize,
    /// Where the page is.
    pub page: String,
}

/// The manifest parameters of a monitoring page.
#[derive(Debug, Serialize)]
struct PageParams {
    days: u32,
    first: RunDate,
    last: RunDate,
}

/// Publishes the monitoring page of the `days` run dates ending at `run_date`.
pub async fn monitor(root: &DataRoot, run_date: RunDate, days: u32) -> Result<MonitorOutcome> {
    let first = run_date.plus_days(1 - i64::from(days));
    let dates: Vec<RunDate> = Manifest::published_dates(root, Dataset::Monitoring)
        .await?
        .into_iter()
        .filter(|d| (first..=run_date).contains(d))
        .collect();
    if dates.is_empty() {
        return Err(CliError::Monitor(format!(
            "no drift report (monitoring/run_date=D/) from {first} to {run_date}: score publishes one per run"
        )));
    }
    let mut reports = Vec::new();
    let mut inputs = Vec::new();
    for d in dates {
        let (r, input) = read_report(root, d).await?;
        reports.push(r);
        inputs.push(input);
    }
    // The realised performance that the window's calibrations recorded.
    let mut realised = Vec::new();
    for d in Manifest::published_dates(root, Dataset::Calibration).await? {
        if !(first..=run_date).contains(&d) {
            continue;
        }
        if let Some((r, input)) = read_realised(root, d).await? {
            realised.push((d, r));
            inputs.push(input);
        }
    }
    let html = page(&reports, &realised, days);
    let latest_alerts = reports.last().map_or(0, |r| r.comparison.alerts.len());
    let mut w = PartitionWriter::begin(root, Dataset::MonitoringPage, run_date).await?;
    w.write_bytes(PAGE_FILE, html.into_bytes().into()).await?;
    w.commit(Provenance {
        stage: "monitor",
        parameters: to_value(&PageParams {
            days,
            first,
            last: run_date,
        })?,
        schema: None,
        inputs,
        counters: BTreeMap::from([
            ("days".to_string(), reports.len() as u64),
            ("latest_alerts".to_string(), latest_alerts as u64),
            ("realised".to_string(), realised.len() as u64),
        ]),
    })
    .await?;
    Ok(MonitorOutcome {
        days: reports.len(),
        latest_alerts,
        page: root.url(&format!(
            "{}/{PAGE_FILE}",
            Dataset::MonitoringPage.partition(run_date)
        )),
    })
}

/// The histogram of `name` in a report (`score` for the score).
fn histogram<'r>(r: &'r DriftReport, name: &str) -> Option<&'r HistogramDrift> {
    let c = &r.comparison;
    if name == SCORE {
        return Some(&c.score);
    }
    c.features.iter().find(|h| h.name == name)
}

/// One panel of a histogram's PSI against the reference and the previous run, with the
/// thresholds each day was judged with.
fn psi_panel(reports: &[DriftReport], name: &str, title: &str, caption: &str) -> Panel {
    let values = |f: &dyn Fn(&HistogramDrift) -> Option<f64>| -> Vec<Option<f64>> {
        reports
            .iter()
            .map(|r| histogram(r, name).and_then(f))
            .collect()
    };
    // A threshold set to `off` (the largest number) is not drawn.
    let threshold = |f: &dyn Fn(&DriftReport) -> f64| -> Vec<Option<f64>> {
        reports
            .iter()
            .map(|r| Some(f(r)).filter(|t| *t < f64::MAX))
            .collect()
    };
    Panel {
        id: format!("psi-{}", name.replace('_', "-")),
        title: title.to_string(),
        y_title: "PSI".into(),
        percent: false,
        from_zero: true,
        series: vec![
            Series {
                name: "against the reference".into(),
                role: Role::Model,
                values: values(&|h| h.psi),
            },
            Series {
                name: "against the previous run".into(),
                role: Role::Baseline,
                values: values(&|h| h.psi_previous),
            },
            Series {
                name: "sampling alone (0.1% bound)".into(),
                role: Role::Oracle,
                values: values(&|h| h.psi_noise),
            },
            Series {
                name: "warn threshold".into(),
                role: Role::Observed,
                values: threshold(&|r| r.thresholds.psi_warn),
            },
            Series {
                name: "fail threshold".into(),
                role: Role::Other,
                values: threshold(&|r| r.thresholds.psi_fail),
            },
        ],
        caption: caption.to_string(),
    }
}

/// The realised performance at the calibration dates that are also report dates: the served
/// scores' AUC, and their mean probability against the observed rate.
fn realised_panels(reports: &[DriftReport], realised: &[(RunDate, Backtest)]) -> Vec<Panel> {
    let at = |f: &dyn Fn(&Backtest) -> Option<f64>| -> Vec<Option<f64>> {
        reports
            .iter()
            .map(|r| {
                realised
                    .iter()
                    .find(|(d, _)| *d == r.run_date)
                    .and_then(|(_, b)| f(b))
            })
            .collect()
    };
    vec![
        Panel {
            id: "realised-auc".into(),
            title: "Realised ROC-AUC of the served scores".into(),
            y_title: "ROC-AUC".into(),
            percent: false,
            from_zero: false,
            series: vec![Series {
                name: "realised ROC-AUC".into(),
                role: Role::Model,
                values: at(&|b| b.probability.roc_auc),
            }],
            caption:
                "At each calibration date, calibrate judges the latest scores whose windows have \
                      closed (the horizon plus the settling days earlier) against the outcomes; \
                      the table below names the day scored."
                    .into(),
        },
        Panel {
            id: "realised-calibration".into(),
            title: "Realised calibration of the served scores".into(),
            y_title: "repurchase".into(),
            percent: true,
            from_zero: true,
            series: vec![
                Series {
                    name: "mean probability served".into(),
                    role: Role::Model,
                    values: at(&|b| Some(b.mean_probability)),
                },
                Series {
                    name: "observed rate".into(),
                    role: Role::Observed,
                    values: at(&|b| Some(b.probability.positive_rate)),
                },
            ],
            caption: "The probability served against the share that repurchased, over the \
                      resolved customers of the day scored."
                .into(),
        },
    ]
}

/// One row per calibration of the window that recorded a realised performance.
fn realised_table(realised: &[(RunDate, Backtest)]) -> Table {
    Table {
        caption: "Realised performance recorded by calibrate".into(),
        header: [
            "calibration date",
            "scores of",
            "model",
            "resolved",
            "ROC-AUC",
            "mean probability",
            "observed rate",
            "ECE",
            "flag precision",
            "flag recall",
        ]
        .map(String::from)
        .to_vec(),
        rows: realised
            .iter()
            .map(|(d, b)| {
                vec![
                    d.to_string(),
                    b.score_date.to_string(),
                    b.model_version.clone(),
                    b.resolved.to_string(),
                    fmt(b.probability.roc_auc),
                    format!("{:.1}%", 100.0 * b.mean_probability),
                    format!("{:.1}%", 100.0 * b.probability.positive_rate),
                    format!("{:.3}", b.probability.ece),
                    format!("{:.3}", b.flag.precision),
                    format!("{:.3}", b.flag.recall),
                ]
            })
            .collect(),
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

/// The page of `reports` (ascending run dates, at least one) and of the realised performance
/// the calibrations of the window recorded (by calibration date, ascending).
pub fn page(reports: &[DriftReport], realised: &[(RunDate, Backtest)], days: u32) -> String {
    let x_labels: Vec<String> = reports.iter().map(|r| r.run_date.to_string()).collect();
    let count = |level: Level| -> Vec<Option<f64>> {
        reports
            .iter()
            .map(|r| {
                Some(
                    r.comparison
                        .alerts
                        .iter()
                        .filter(|a| a.level == level)
                        .count() as f64,
                )
            })
            .collect()
    };
    let mut panels = vec![
        psi_panel(
            reports,
            SCORE,
            "Drift of the score (the served model's uncalibrated probability)",
            "PSI of the day's scores over the reference's decile bins. A collapse of the scores, or \
             a model fed inputs it was not trained on, shows here first.",
        ),
        Panel {
            id: "rows".into(),
            title: "Anchors compared".into(),
            y_title: "anchors".into(),
            percent: false,
            from_zero: true,
            series: vec![
                Series {
                    name: "scored that day".into(),
                    role: Role::Model,
                    values: reports
                        .iter()
                        .map(|r| Some(r.comparison.rows as f64))
                        .collect(),
                },
                Series {
                    name: "reference".into(),
                    role: Role::Baseline,
                    values: reports
                        .iter()
                        .map(|r| Some(r.comparison.reference_rows as f64))
                        .collect(),
                },
            ],
            caption: "Figures are judged only when both sides hold the minimum rows \
                      (--drift-min-rows)."
                .into(),
        },
        Panel {
            id: "alerts".into(),
            title: "Figures past a threshold".into(),
            y_title: "figures".into(),
            percent: false,
            from_zero: true,
            series: vec![
                Series {
                    name: "failed (run refused)".into(),
                    role: Role::Model,
                    values: count(Level::Fail),
                },
                Series {
                    name: "warned".into(),
                    role: Role::Baseline,
                    values: count(Level::Warn),
                },
            ],
            caption: "A day with a failure published no scores.".into(),
        },
    ];
    if !realised.is_empty() {
        panels.extend(realised_panels(reports, realised));
    }
    // The features whose PSI against the reference peaked highest in the window, judged ones
    // first (an exempt feature moves by construction).
    let latest = reports.last().expect("at least one report");
    let mut peaks: Vec<(bool, f64, &str)> = latest
        .comparison
        .features
        .iter()
        .map(|h| {
            let peak = reports
                .iter()
                .filter_map(|r| histogram(r, &h.name).and_then(|x| x.psi))
                .fold(0.0, f64::max);
            (h.exempt, peak, h.name.as_str())
        })
        .collect();
    peaks.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(b.2)));
    for (_, peak, name) in peaks.iter().filter(|p| !p.0).take(FEATURE_PANELS) {
        panels.push(psi_panel(
            reports,
            name,
            &format!("Drift of {name}"),
            &format!("Highest PSI against the reference in the window: {peak:.3}."),
        ));
    }
    let alerts = Table {
        caption: format!("Alerts of {}", latest.run_date),
        header: ["feature", "measure", "value", "threshold", "level"]
            .map(String::from)
            .to_vec(),
        rows: latest
            .comparison
            .alerts
            .iter()
            .map(|a| {
                vec![
                    a.feature.clone(),
                    a.measure.clone(),
                    format!("{:.3}", a.value),
                    a.threshold.to_string(),
                    format!("{:?}", a.level).to_lowercase(),
                ]
            })
            .collect(),
    };
    let mut largest: Vec<&HistogramDrift> = latest
        .comparison
        .features
        .iter()
        .chain([&latest.comparison.score])
        .collect();
    largest.sort_by(|a, b| {
        b.psi
            .unwrap_or(0.0)
            .total_cmp(&a.psi.unwrap_or(0.0))
            .then(a.name.cmp(&b.name))
    });
    let psi_table = Table {
        caption: format!("Largest PSI on {}", latest.run_date),
        header: [
            "feature",
            "PSI",
            "sampling alone",
            "against the previous run",
            "unknown to the model (reference → day)",
            "judged",
        ]
        .map(String::from)
        .to_vec(),
        rows: largest
            .iter()
            .take(15)
            .map(|h| {
                vec![
                    h.name.clone(),
                    fmt(h.psi),
                    fmt(h.psi_noise),
                    fmt(h.psi_previous),
                    match (h.reference_unknown_share, h.unknown_share) {
                        (Some(r), Some(u)) => format!("{:.1}% → {:.1}%", 100.0 * r, 100.0 * u),
                        _ => "–".into(),
                    },
                    if h.exempt { "exempt" } else { "yes" }.into(),
                ]
            })
            .collect(),
    };
    let models: Vec<&str> = {
        let mut v: Vec<&str> = reports.iter().map(|r| r.model_version.as_str()).collect();
        v.dedup();
        v
    };
    let t = &latest.thresholds;
    render(&TimelineInput {
        title: format!("Drift monitoring, {} days to {}", days, latest.run_date),
        points: "run dates".into(),
        facts_heading: "Monitoring".into(),
        facts: vec![
            ("latest run date".into(), latest.run_date.to_string()),
            (
                "run dates with a report".into(),
                format!("{} of the last {days}", reports.len()),
            ),
            ("models served".into(), models.join(", ")),
            (
                "latest reference".into(),
                format!(
                    "{} to {}, {} anchors",
                    latest.reference_start, latest.reference_end, latest.comparison.reference_rows
                ),
            ),
            (
                "thresholds (latest)".into(),
                format!(
                    "PSI warn {} / fail {}; unknown share rise warn {} / fail {}; at least {} rows; exempt: {}",
                    t.psi_warn,
                    t.psi_fail,
                    t.unknown_warn,
                    t.unknown_fail,
                    t.min_rows,
                    t.exempt.join(", ")
                ),
            ),
        ],
        x_title: "run date".into(),
        x_labels,
        panels,
        tables: if realised.is_empty() {
            vec![alerts, psi_table]
        } else {
            vec![alerts, psi_table, realised_table(realised)]
        },
        notes: vec![
            "PSI (population stability index) compares a day's share of anchors in each bin with \
             the reference's: under 0.1 little has moved, 0.1–0.25 some, above 0.25 a lot. Bins are \
             the reference's deciles for numbers and its most frequent categories for text; see \
             docs/MODEL.md, Drift monitoring."
                .into(),
            "Every point's value is in its tooltip; a gap is a day whose report lacks the figure \
             (no previous run, or another model's bins)."
                .into(),
        ],
    })
}
