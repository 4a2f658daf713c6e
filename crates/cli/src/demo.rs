//! `repurchase demo`: generate TheLook-like data and run the five stages on local disk, then
//! summarise what came out — the quickest way to see the whole product work.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use repurchase_contracts::monitoring::read_report;
use repurchase_core::{DataRoot, RunDate, StoreConfig};
use repurchase_datagen::{GenConfig, OutputFormat, Profile};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::BoosterParams;
use repurchase_model::drift::{Comparison, Level};

use crate::error::Result;
use crate::oracle;

/// What `repurchase demo` generates and runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Customers generated.
    pub users: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// The day every worker runs for (the generated data ends on it).
    pub run_date: RunDate,
    /// TheLook-like or planted-signal data.
    pub profile: Profile,
    /// Which completed orders are anchors.
    pub anchor: AnchorMode,
    /// Holds `source/` (the generated export) and `lake/` (the data root).
    pub dir: PathBuf,
    /// Format of the generated export.
    pub format: OutputFormat,
    /// `train --valid-days`.
    pub valid_days: u32,
    /// `train --test-days`.
    pub test_days: u32,
}

/// One line of the demo's summary.
#[derive(Debug, Clone)]
pub struct StageLine {
    /// `generate` or a worker.
    pub stage: &'static str,
    /// Rows it wrote.
    pub rows: u64,
    /// What else is worth a glance (trees, calibration method, …).
    pub detail: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What `repurchase demo` prints.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// One line per stage, in order.
    pub stages: Vec<StageLine>,
    /// The served model.
    pub model_version: String,
    /// Anchors of the held-out test window.
    pub test_rows: u64,
    /// Calibrated ROC-AUC on it.
    pub test_auc: Option<f64>,
    /// Its bootstrap 95% interval.
    pub test_auc_ci: Option<(f64, f64)>,
    /// ROC-AUC of the generator's true probabilities on the same anchors (generated data only).
    pub oracle_auc: Option<f64>,
    /// Repurchase rate of the test window.
    pub base_rate: f64,
    /// Repurchase rate of its top decile by probability.
    pub top_decile_rate: f64,
    /// Brier score on the test window.
    pub brier: f64,
    /// Expected calibration error on the test window.
    pub ece: f64,
    /// The calibration method chosen.
    pub calibration: &'static str,
    /// The data root the workers wrote.
    pub lake: String,
    /// Where the run's HTML report is (a URL of the data root).
    pub report: String,
    /// Where the business diagnostics page is (`repurchase diagnose`).
    pub diagnostics: String,
    /// The open customer with the highest probability, and why.
    pub top_customer: Option<TopCustomer>,
    /// The scoring run's drift report (`monitoring/`), when the model had a reference.
    pub drift: Option<Comparison>,
    /// Wall-clock seconds of the whole demo.
    pub total_seconds: f64,
}

/// The highest-scored open customer of the run and the reasons `score` published for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopCustomer {
    /// The customer.
    pub user_id: i64,
    /// Its probability of a repurchase in the rest of the window.
    pub probability: f64,
    /// Reasons up, then the reason down: feature, the customer's value, log-odds.
    pub up: Vec<(String, Option<String>, f64)>,
    /// The strongest push down, if any.
    pub down: Option<(String, Option<String>, f64)>,
}

/// The open customer with the highest probability in the scores of `d` (ties: the lowest anchor
/// order), with its reasons.
async fn top_customer(lake: &DataRoot, d: RunDate) -> Result<Option<TopCustomer>> {
    use arrow::array::{Array, Float64Array, Int64Array, StringArray};
    use repurchase_core::CoreError;
    let ctx = datafusion::prelude::SessionContext::new();
    repurchase_core::parquet_io::register_partition(
        &ctx,
        lake,
        repurchase_core::layout::Dataset::Scores,
        d,
        "scores",
    )
    .await?;
    let batches = ctx
        .sql(
            "SELECT * FROM scores WHERE status = 'open' \
             ORDER BY probability DESC, anchor_order_id LIMIT 1",
        )
        .await
        .map_err(|e| CoreError::query("read scores", e))?
        .collect()
        .await
        .map_err(|e| CoreError::query("read scores", e))?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    // DataFusion may read text as Utf8View.
    let text = |name: &str| {
        let c = arrow::compute::cast(b.column_by_name(name)?, &arrow::datatypes::DataType::Utf8)
            .ok()?;
        let a = c.as_any().downcast_ref::<StringArray>()?;
        a.is_valid(0).then(|| a.value(0).to_string())
    };
    let number = |name: &str| {
        b.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .filter(|a| a.is_valid(0))
            .map(|a| a.value(0))
    };
    let reason = |slot: &str| {
        Some((
            text(slot)?,
            text(&format!("{slot}_value")),
            number(&format!("{slot}_log_odds"))?,
        ))
    };
    let user_id = b
        .column_by_name("user_id")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .map(|a| a.value(0))
        .ok_or_else(|| CoreError::BadTable {
            table: "scores".into(),
            message: "no integer column user_id".into(),
        })?;
    // The slots up, then the one down.
    let (down, up) = repurchase_score::REASON_SLOTS
        .split_last()
        .expect("reason slots");
    Ok(Some(TopCustomer {
        user_id,
        probability: number("probability").unwrap_or(f64::NAN),
        up: up.iter().filter_map(|s| reason(s)).collect(),
        down: reason(down),
    }))
}

/// Generates the data, runs the five workers in order on local disk and summarises the run.
pub async fn run_demo(cfg: &DemoConfig) -> Result<DemoReport> {
    let started = Instant::now();
    let store_cfg = StoreConfig::default();
    let src_dir = cfg.dir.join("source");
    let lake_dir = cfg.dir.join("lake");
    let source = DataRoot::open(&src_dir.to_string_lossy(), &store_cfg)?;
    let lake = DataRoot::open(&lake_dir.to_string_lossy(), &store_cfg)?;
    let mut stages = Vec::new();
    let d = cfg.run_date;

    let t = Instant::now();
    let gen_cfg = GenConfig::new(cfg.users, cfg.seed, d.date(), cfg.profile);
    // A bad config is refused before the old export is cleared.
    gen_cfg.validate()?;
    source.delete_prefix("").await?;
    let written = repurchase_datagen::generate_into(&source, &gen_cfg, cfg.format).await?;
    let gen_rows: u64 = written.rows.iter().map(|(_, r)| r).sum();
    stages.push(StageLine {
        stage: "generate",
        rows: gen_rows,
        detail: format!("{} users, {} profile", cfg.users, cfg.profile),
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let ex = repurchase_extract::extract(&lake, d, &Source::Files(source.clone())).await?;
    let ex_rows: u64 = ex.tables.values().sum();
    let detail = format!(
        "events {}, orders {}",
        ex.tables.get("events").copied().unwrap_or(0),
        ex.tables.get("orders").copied().unwrap_or(0)
    );
    stages.push(StageLine {
        stage: "extract",
        rows: ex_rows,
        detail,
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let f = repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions::new(cfg.anchor, 60),
    )
    .await?;
    let detail = format!(
        "{} labelled ({} repurchased), {} open",
        f.train_rows, f.train_positives, f.score_rows
    );
    stages.push(StageLine {
        stage: "build-features",
        rows: f.anchors,
        detail,
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let tr = repurchase_train::train(
        &lake,
        d,
        &repurchase_train::TrainConfig {
            depths: repurchase_train::DEPTH_CANDIDATES.to_vec(),
            ..repurchase_train::TrainConfig::new(
                cfg.valid_days,
                cfg.test_days,
                &BoosterParams::default(),
            )
        },
    )
    .await?;
    stages.push(StageLine {
        stage: "train",
        rows: tr.train_rows,
        detail: format!("{} trees", tr.iterations),
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let cal = repurchase_calibrate::calibrate(
        &lake,
        d,
        &repurchase_calibrate::champion::ChampionPolicy::default(),
    )
    .await?;
    let (_, metrics, _) = repurchase_contracts::calibration::read_calibration(&lake, d).await?;
    stages.push(StageLine {
        stage: "calibrate",
        rows: metrics.test.rows,
        detail: format!("{} calibration", cal.method),
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let sc = repurchase_score::score(&lake, d, &repurchase_score::ScoreOptions::default()).await?;
    stages.push(StageLine {
        stage: "score",
        rows: sc.scored,
        detail: format!(
            "{} already repurchased, {} pending",
            sc.already_repurchased, sc.repurchase_pending
        ),
        seconds: t.elapsed().as_secs_f64(),
    });

    let t = Instant::now();
    let diag = crate::diagnose::diagnose(&lake, d, crate::diagnose::DEFAULT_HORIZON_DAYS).await?;
    stages.push(StageLine {
        stage: "diagnose",
        rows: diag.closed_customers,
        detail: format!(
            "{} months; repurchase {} of first buyers",
            diag.months,
            diag.repurchase_rate
                .map_or("n/a".to_string(), |r| format!("{:.1}%", r * 100.0))
        ),
        seconds: t.elapsed().as_secs_f64(),
    });

    let top = top_customer(&lake, d).await?;
    let drift = match sc.drift {
        Some(_) => Some(read_report(&lake, d).await?.0.comparison),
        None => None,
    };
    let oracle_auc = if cfg.profile == Profile::Signal {
        let truth = oracle::read_truth(&source).await?;
        oracle::oracle_test_auc(&lake, d, &truth).await?.0
    } else {
        None
    };
    Ok(DemoReport {
        stages,
        model_version: sc.model_version,
        test_rows: metrics.test.rows,
        test_auc: metrics.test.roc_auc,
        test_auc_ci: metrics.test_auc_ci,
        oracle_auc,
        base_rate: metrics.test.positive_rate,
        top_decile_rate: metrics.test_deciles.first().map(|r| r.rate).unwrap_or(0.0),
        brier: metrics.test.brier,
        ece: metrics.test.ece,
        calibration: cal.method,
        lake: lake.to_string(),
        report: lake.url(&format!(
            "{}/report.html",
            repurchase_core::layout::Dataset::Calibration.partition(d)
        )),
        diagnostics: diag.page,
        top_customer: top,
        drift,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

/// A reason's value as the summary shows it: numbers to two decimals (whole ones without), text
/// as it is, "missing" for none. The scores keep the exact value.
fn readable(value: &Option<String>) -> String {
    match value.as_deref().map(|v| (v, v.parse::<f64>())) {
        None => "missing".to_string(),
        Some((_, Ok(x))) if x.is_finite() && x.fract() == 0.0 => format!("{x:.0}"),
        Some((_, Ok(x))) if x.is_finite() => format!("{x:.2}"),
        Some((v, _)) => v.to_string(),
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nrepurchase demo — {}", self.model_version)?;
        writeln!(f, "{:<16} {:>12} {:>9}", "stage", "rows", "seconds")?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<16} {:>12} {:>9.2}  {}",
                s.stage, s.rows, s.seconds, s.detail
            )?;
        }
        let show = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
        writeln!(
            f,
            "\nheld-out test window: {} anchors, repurchase rate {:.1}%",
            self.test_rows,
            100.0 * self.base_rate
        )?;
        let ci = self.test_auc_ci.map_or(String::new(), |(lo, hi)| {
            format!("   (95% CI {lo:.3}–{hi:.3})")
        });
        writeln!(f, "  ROC-AUC (model)        {}{ci}", show(self.test_auc))?;
        writeln!(
            f,
            "  ROC-AUC (oracle)       {}   (the generator's true probabilities on the same anchors)",
            show(self.oracle_auc)
        )?;
        if let (Some(m), Some(o)) = (self.test_auc, self.oracle_auc) {
            writeln!(f, "  model / oracle         {:.3}", m / o)?;
        }
        writeln!(
            f,
            "  top decile observed    {:.1}%   (lift {:.2})",
            100.0 * self.top_decile_rate,
            if self.base_rate > 0.0 {
                self.top_decile_rate / self.base_rate
            } else {
                0.0
            }
        )?;
        writeln!(
            f,
            "  Brier {:.4}, ECE {:.4}, calibration: {}",
            self.brier, self.ece, self.calibration
        )?;
        if let Some(t) = &self.top_customer {
            let list = |rs: &[&(String, Option<String>, f64)]| {
                rs.iter()
                    .map(|(name, value, l)| format!("{name} = {} ({l:+.2})", readable(value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(
                f,
                "\nhighest-scored open customer: user {}, probability {:.1}%",
                t.user_id,
                100.0 * t.probability
            )?;
            writeln!(
                f,
                "  raised by    {}",
                list(&t.up.iter().collect::<Vec<_>>())
            )?;
            if let Some(d) = &t.down {
                writeln!(f, "  lowered by   {}", list(&[d]))?;
            }
            writeln!(
                f,
                "  (Shapley values in log-odds; every customer's are in the reason_* columns of scores/)"
            )?;
        }
        if let Some(c) = &self.drift {
            let level = match (c.judged, c.level) {
                (false, _) => "not judged",
                (true, Level::Ok) => "ok",
                (true, Level::Warn) => "warn",
                (true, Level::Fail) => "fail",
            };
            writeln!(
                f,
                "\ndrift against the served model's reference: {level} ({} anchors, reference {})",
                c.rows, c.reference_rows
            )?;
            let judged = c.features.iter().chain([&c.score]).filter(|h| !h.exempt);
            if let Some(h) =
                judged.max_by(|a, b| a.psi.unwrap_or(0.0).total_cmp(&b.psi.unwrap_or(0.0)))
            {
                writeln!(
                    f,
                    "  largest PSI  {} {:.3} (sampling alone: up to {:.3})",
                    h.name,
                    h.psi.unwrap_or(0.0),
                    h.psi_noise.unwrap_or(0.0)
                )?;
            }
            for a in &c.alerts {
                writeln!(f, "  {:<12} {a}", format!("{:?}", a.level).to_lowercase())?;
            }
        }
        writeln!(
            f,
            "\noutputs under {} (scores/, models/, features/, raw/, monitoring/, diagnostics/); total {:.1} s",
            self.lake, self.total_seconds
        )?;
        writeln!(f, "report: {}", self.report)?;
        writeln!(f, "diagnostics: {}", self.diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_values_read_as_short_numbers_or_text() {
        let r = |v: Option<&str>| readable(&v.map(str::to_string));
        assert_eq!(r(Some("10.003101842037037")), "10.00");
        assert_eq!(r(Some("7.0")), "7");
        assert_eq!(r(Some("Sleep & Lounge")), "Sleep & Lounge");
        assert_eq!(r(None), "missing");
    }
}
