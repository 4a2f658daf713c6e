//! Quality gates: plausibility checks on the feature table before anything is published.
//!
//! Schema and row validation happen in `extract`; these catch data that is well-formed but wrong
//! as a whole, the kind that would silently train and serve a bad model: an upstream export that
//! lost most of its rows, a label rate no real store has, or a feature suddenly missing for a
//! large share of customers (a join key renamed upstream, a table left empty). They compare the
//! run with the latest earlier published `features/train` partition, through the counters its
//! manifest records, so no earlier data has to be read. A failure is bad input (exit 2): the DAG
//! does not retry it, and nothing is written.
//!
//! Rates are only judged on at least `min_rows` rows, so small lakes (tests, the first weeks of a
//! store) pass the rate gates by construction rather than by luck.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use clap::Args as ClapArgs;
use repurchase_core::RunDate;

/// Manifest counter prefix holding each column's null count over all anchors.
pub const NULL_COUNTER_PREFIX: &str = "nulls:";

/// Null-rate failures named in full; the rest are listed by name.
const MAX_NAMED_COLUMNS: usize = 3;

/// Columns that are not features (identifiers, times, the label) are not null-rate gated.
const NOT_FEATURES: [&str; 7] = [
    "user_id",
    "order_id",
    "anchor_time",
    "window_closed",
    "label",
    "days_to_repurchase",
    "repurchase_pending",
];

#[allow(missing_docs)] // clap reads doc comments here as --help text: the flags carry theirs
#[derive(Debug, Clone, PartialEq, ClapArgs)]
pub struct GateConfig {
    /// Fail when the number of anchors falls by more than this share from the previous run.
    #[arg(long = "gate-max-row-drop", env = "REPURCHASE_GATE_MAX_ROW_DROP", default_value_t = 0.5, value_parser = share)]
    pub max_row_drop: f64,

    /// Fail when the share of labelled anchors that repurchased is below this.
    #[arg(long = "gate-label-rate-min", env = "REPURCHASE_GATE_LABEL_RATE_MIN", default_value_t = 0.002, value_parser = share)]
    pub label_rate_min: f64,

    /// Fail when the share of labelled anchors that repurchased is above this.
    #[arg(long = "gate-label-rate-max", env = "REPURCHASE_GATE_LABEL_RATE_MAX", default_value_t = 0.5, value_parser = share)]
    pub label_rate_max: f64,

    /// Fail when a feature's share of missing values rises by more than this (absolute) from
    /// the previous run.
    #[arg(long = "gate-max-null-increase", env = "REPURCHASE_GATE_MAX_NULL_INCREASE", default_value_t = 0.2, value_parser = share)]
    pub max_null_increase: f64,

    /// Rates are judged only on at least this many rows.
    #[arg(
        long = "gate-min-rows",
        env = "REPURCHASE_GATE_MIN_ROWS",
        default_value_t = 1000
    )]
    pub min_rows: u64,

    /// Publish even if a gate fails (after a deliberate, understood change in the data).
    #[arg(long = "skip-quality-gates", env = "REPURCHASE_SKIP_QUALITY_GATES")]
    pub skip: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_row_drop: 0.5,
            label_rate_min: 0.002,
            label_rate_max: 0.5,
            max_null_increase: 0.2,
            min_rows: 1000,
            skip: false,
        }
    }
}

fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

/// What the gates look at in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// Anchors of the run (labelled, open and unsettled).
    pub anchors: u64,
    /// Labelled anchors.
    pub labelled: u64,
    /// Labelled anchors followed by a repurchase.
    pub positives: u64,
    /// Null count of every feature column, over all anchors.
    pub nulls: BTreeMap<String, u64>,
}

impl RunFigures {
    /// Null counts of the feature columns of the query output.
    pub fn null_counts(batches: &[RecordBatch]) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for b in batches {
            for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                if !NOT_FEATURES.contains(&field.name().as_str()) {
                    *out.entry(field.name().clone()).or_insert(0) += col.null_count() as u64;
                }
            }
        }
        out
    }

    /// Manifest counters recording the null counts, for the next run's gates.
    pub fn null_counters(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.nulls
            .iter()
            .map(|(c, n)| (format!("{NULL_COUNTER_PREFIX}{c}"), *n))
    }

    /// The figures of an earlier run, from its `features/train` manifest counters.
    pub fn from_counters(counters: &BTreeMap<String, u64>) -> RunFigures {
        let get = |k: &str| counters.get(k).copied().unwrap_or(0);
        RunFigures {
            anchors: get("anchors"),
            labelled: get("anchors_labelled"),
            positives: get("positives"),
            nulls: counters
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(NULL_COUNTER_PREFIX)?.to_string(), *v)))
                .collect(),
        }
    }
}

/// Every gate that fails, as readable sentences naming the figure, the limit and its flag.
pub fn check(
    cfg: &GateConfig,
    now: &RunFigures,
    previous: Option<(RunDate, &RunFigures)>,
) -> Vec<String> {
    let mut failures = Vec::new();
    if now.labelled >= cfg.min_rows {
        let rate = now.positives as f64 / now.labelled as f64;
        if rate < cfg.label_rate_min || rate > cfg.label_rate_max {
            failures.push(format!(
                "label rate {rate:.4} ({} of {} labelled anchors repurchased) is outside [{}, {}] \
                 (--gate-label-rate-min/--gate-label-rate-max)",
                now.positives, now.labelled, cfg.label_rate_min, cfg.label_rate_max
            ));
        }
    }
    let Some((date, prev)) = previous else {
        return failures;
    };
    if prev.anchors >= cfg.min_rows {
        let floor = (1.0 - cfg.max_row_drop) * prev.anchors as f64;
        if (now.anchors as f64) < floor {
            failures.push(format!(
                "{} anchors is {:.0}% fewer than the {} of run date {date} (--gate-max-row-drop {})",
                now.anchors,
                100.0 * (1.0 - now.anchors as f64 / prev.anchors as f64),
                prev.anchors,
                cfg.max_row_drop
            ));
        }
    }
    if now.anchors >= cfg.min_rows && prev.anchors >= cfg.min_rows && !prev.nulls.is_empty() {
        let mut jumps: Vec<(f64, &str, f64, f64)> = Vec::new();
        for (column, &nulls) in &now.nulls {
            let rate = nulls as f64 / now.anchors as f64;
            let before = prev.nulls.get(column).copied().unwrap_or(0) as f64 / prev.anchors as f64;
            if rate - before > cfg.max_null_increase {
                jumps.push((rate - before, column, rate, before));
            }
        }
        // Largest jumps first; a lost join empties many columns at once, so name a few.
        jumps.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        for (_, column, rate, before) in jumps.iter().take(MAX_NAMED_COLUMNS) {
            failures.push(format!(
                "column {column}: {:.1}% of anchors are null, {:.1}% in run date {date} \
                 (--gate-max-null-increase {})",
                100.0 * rate,
                100.0 * before,
                cfg.max_null_increase
            ));
        }
        if jumps.len() > MAX_NAMED_COLUMNS {
            let rest: Vec<&str> = jumps[MAX_NAMED_COLUMNS..].iter().map(|j| j.1).collect();
            failures.push(format!(
                "and {} more columns: {}",
                rest.len(),
                rest.join(", ")
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(anchors: u64, labelled: u64, positives: u64, nulls: &[(&str, u64)]) -> RunFigures {
        RunFigures {
            anchors,
            labelled,
            positives,
            nulls: nulls.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        }
    }

    fn date(s: &str) -> RunDate {
        s.parse().unwrap()
    }

    #[test]
    fn plausible_runs_pass_and_each_gate_fires_on_its_own() {
        let cfg = GateConfig::default();
        let prev = figures(10_000, 8_000, 800, &[("tenure_days", 0), ("city", 500)]);
        let d = date("2025-06-29");
        let ok = figures(10_100, 8_050, 790, &[("tenure_days", 10), ("city", 520)]);
        assert!(check(&cfg, &ok, Some((d, &prev))).is_empty());

        let collapsed = figures(4_000, 3_000, 300, &[("tenure_days", 0), ("city", 200)]);
        let f = check(&cfg, &collapsed, Some((d, &prev)));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("4000 anchors is 60% fewer than the 10000 of run date 2025-06-29"));

        let all_positive = figures(10_000, 8_000, 6_000, &[("tenure_days", 0), ("city", 500)]);
        let f = check(&cfg, &all_positive, Some((d, &prev)));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("label rate 0.7500 (6000 of 8000"), "{f:?}");
        let none_positive = figures(10_000, 8_000, 0, &[]);
        assert!(check(&cfg, &none_positive, None)[0].starts_with("label rate 0.0000"));

        let nulls = figures(10_000, 8_000, 800, &[("tenure_days", 3_000), ("city", 500)]);
        let f = check(&cfg, &nulls, Some((d, &prev)));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("column tenure_days: 30.0% of anchors are null, 0.0% in run date")
        );
    }

    #[test]
    fn small_runs_and_runs_without_history_are_not_judged_on_rates() {
        let cfg = GateConfig::default();
        // 900 labelled anchors, all positive: below min_rows, not judged.
        let small = figures(1_200, 900, 900, &[("tenure_days", 1_200)]);
        assert!(check(&cfg, &small, None).is_empty());
        let prev_small = figures(900, 800, 80, &[("tenure_days", 0)]);
        assert!(check(&cfg, &small, Some((date("2025-01-01"), &prev_small))).is_empty());
        // An earlier manifest without null counters: the null gate has nothing to compare with.
        let prev_old = figures(1_300, 1_000, 100, &[]);
        assert!(check(&cfg, &small, Some((date("2025-01-01"), &prev_old))).is_empty());
        // Thresholds are configurable.
        let strict = GateConfig {
            max_row_drop: 0.05,
            ..GateConfig::default()
        };
        let f = check(&strict, &small, Some((date("2025-01-01"), &prev_old)));
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn counters_round_trip() {
        let now = figures(10, 8, 1, &[("a", 2), ("b", 0)]);
        let mut counters: BTreeMap<String, u64> = now.null_counters().collect();
        counters.insert("anchors".into(), 10);
        counters.insert("anchors_labelled".into(), 8);
        counters.insert("positives".into(), 1);
        assert_eq!(RunFigures::from_counters(&counters), now);
    }
}
