//! Drift of the scored population from the served model's training reference.
//!
//! `train` summarises a **reference**: the newest cross-fitting fold's anchors (the last
//! `horizon_days` of labelled anchors, the open windows of a day `settle_days` past the labelled
//! end). Each model feature and the served model's uncalibrated probability of those anchors get
//! a [`Histogram`] over fixed bins:
//!
//! - a number: right-closed intervals split at the reference's deciles (ties merged, so a mass at
//!   0 is one bin), then a bin for missing values;
//! - a category: the (at most [`TOP_CATEGORIES`]) categories the served model knows with the most
//!   reference rows, the other categories it knows, the values it does not know (unseen in
//!   training, or rarer than its encoder's `min_count`: the model gives them all one value), and
//!   missing.
//!
//! `score` counts its population into the same bins ([`Population`]) and [`compare`]s: the
//! population stability index of every histogram against the reference and against the previous
//! run, and for categories the rise in the share the model does not know. Levels come from
//! [`Thresholds`]; only the comparison with the reference can fail a run, because the previous run
//! may itself have drifted.
//!
//! A figure alerts only when it also exceeds what sampling alone would give one time in a
//! thousand (two samples of these sizes from one distribution: PSI is then about
//! `(1/n₁ + 1/n₂)·χ²(bins − 1)`; a share's rise about normal), and nothing is judged when either
//! side has fewer than [`Thresholds::min_rows`] rows: on a few hundred rows a PSI of 0.25 is noise.
//!
//! PSI is computed as `evidently` (0.4–0.7) computes it once bins are given: shares of each
//! side's rows, a zero share replaced by `0.0001` (or by a millionth of the side's smallest
//! non-zero share when that is at most `0.0001`), then `Σ (ref − cur) · ln(ref / cur)`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use crate::encoding::{MISSING, OTHER, TargetEncoder};
use crate::error::ModelError;
use crate::table::{FeatureKind, FeatureSpec, FeatureTable};

/// Most categories of a feature that keep a bin of their own (the rest share one): more bins on a
/// day's few thousand rows would measure sampling noise.
pub const TOP_CATEGORIES: usize = 10;
/// Quantile bins of a number (before ties merge).
pub const QUANTILE_BINS: usize = 10;
/// Name of the histogram of the model's uncalibrated probability.
pub const SCORE: &str = "score";

const OTHER_KNOWN: &str = "(other known)";
const UNKNOWN: &str = "(unknown to the model)";
const MISSING_BIN: &str = "(missing)";

/// How values fall into bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Bins {
    /// Bins `(-inf, e0], (e0, e1], …, (e_last, +inf)`, then missing (null or NaN).
    Numeric {
        /// Increasing split points.
        edges: Vec<f64>,
    },
    /// One bin per listed category, then the model's other known categories, the values it does
    /// not know, and missing.
    Categorical {
        /// Categories with a bin of their own, most reference rows first.
        top: Vec<String>,
    },
}

impl Bins {
    /// Number of bins, the missing bin included.
    pub fn len(&self) -> usize {
        match self {
            Bins::Numeric { edges } => edges.len() + 2,
            Bins::Categorical { top } => top.len() + 3,
        }
    }

    /// Never true: there is always at least the missing bin.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// A readable label per bin.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Bins::Numeric { edges } => {
                let mut labels = Vec::with_capacity(edges.len() + 2);
                match edges.first() {
                    None => labels.push("any value".to_string()),
                    Some(e) => labels.push(format!("≤ {}", num(*e))),
                }
                for w in edges.windows(2) {
                    labels.push(format!("({}, {}]", num(w[0]), num(w[1])));
                }
                if let Some(e) = edges.last() {
                    labels.push(format!("> {}", num(*e)));
                }
                labels.push(MISSING_BIN.to_string());
                labels
            }
            Bins::Categorical { top } => {
                let mut labels = top.clone();
                labels.extend([OTHER_KNOWN, UNKNOWN, MISSING_BIN].map(str::to_string));
                labels
            }
        }
    }
}

/// A short rendering of a bin edge (edges are data values).
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{}", (v * 1e4).round() / 1e4)
    }
}

/// One feature's (or the score's) counts over its bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Feature name, or [`SCORE`].
    pub name: String,
    /// The bins.
    pub bins: Bins,
    /// Rows per bin, in [`Bins::labels`] order.
    pub counts: Vec<u64>,
}

/// `reference.json`: the served model's reference population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// First anchor time of the reference (inclusive), ISO 8601 UTC.
    pub start: String,
    /// Last anchor time of the reference (exclusive).
    pub end: String,
    /// Anchors in the reference.
    pub rows: u64,
    /// One histogram per model feature, in the model's feature order.
    pub features: Vec<Histogram>,
    /// The served model's uncalibrated probabilities of the reference anchors.
    pub score: Histogram,
}

/// The categories a served model knows for each categorical feature: its encoder's own values.
pub fn known_categories(
    encoders: &BTreeMap<String, TargetEncoder>,
) -> BTreeMap<String, Arc<HashSet<String>>> {
    encoders
        .iter()
        .map(|(name, e)| {
            let known = e
                .values
                .keys()
                .filter(|k| k.as_str() != OTHER && k.as_str() != MISSING)
                .cloned()
                .collect();
            (name.clone(), Arc::new(known))
        })
        .collect()
}

/// Decile split points of `values` (NaN ignored): data values, so they survive a JSON round
/// trip, merged where they tie.
pub fn quantile_edges(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mut edges: Vec<f64> = Vec::new();
    for k in 1..QUANTILE_BINS {
        // Nearest rank: the smallest value with at least k/10 of the values at or below it.
        let rank = (k * n).div_ceil(QUANTILE_BINS).max(1);
        let e = v[rank - 1];
        if e.is_finite() && edges.last().is_none_or(|last| *last < e) {
            edges.push(e);
        }
    }
    // The top bin must hold something: an edge at the maximum leaves it empty by construction.
    if edges.last() == v.last() {
        edges.pop();
    }
    edges
}

/// The bin of a number: right-closed intervals, then missing.
fn numeric_bin(edges: &[f64], v: Option<f64>) -> usize {
    match v {
        Some(v) if !v.is_nan() => edges.partition_point(|e| *e < v),
        _ => edges.len() + 1,
    }
}

/// Builds the reference from the rows `rows` of `table`, the served model's features and
/// encoders, and the served model's uncalibrated probabilities of those rows (`scores[i]` for
/// `rows[i]`).
pub fn reference(
    table: &FeatureTable,
    rows: &[usize],
    features: &[FeatureSpec],
    encoders: &BTreeMap<String, TargetEncoder>,
    scores: &[f64],
    (start, end): (String, String),
) -> Result<Reference, ModelError> {
    let known = known_categories(encoders);
    let mut histograms = Vec::with_capacity(features.len());
    for spec in features {
        let h = match spec.kind {
            FeatureKind::Numeric => {
                let col = table.numeric.get(&spec.name).ok_or_else(|| {
                    ModelError::table(format!("reference: numeric feature {} missing", spec.name))
                })?;
                let values: Vec<f64> = rows.iter().map(|&i| col[i]).collect();
                numeric_histogram(&spec.name, &values)
            }
            FeatureKind::Categorical => {
                let col = table.categorical.get(&spec.name).ok_or_else(|| {
                    ModelError::table(format!(
                        "reference: categorical feature {} missing",
                        spec.name
                    ))
                })?;
                let known = known.get(&spec.name).cloned().unwrap_or_default();
                let mut by_category: BTreeMap<&str, u64> = BTreeMap::new();
                for &i in rows {
                    if let Some(c) = col[i].as_deref().filter(|c| known.contains(*c)) {
                        *by_category.entry(c).or_default() += 1;
                    }
                }
                let mut ranked: Vec<(&str, u64)> = by_category.into_iter().collect();
                // Most rows first, then by name: the same bins whatever the row order.
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let top = ranked
                    .into_iter()
                    .take(TOP_CATEGORIES)
                    .map(|(c, _)| c.to_string())
                    .collect();
                let mut counter = Counter::new(Bins::Categorical { top }, Some(known));
                for &i in rows {
                    counter.add_category(col[i].as_deref());
                }
                counter.finish(&spec.name)
            }
        };
        histograms.push(h);
    }
    Ok(Reference {
        start,
        end,
        rows: rows.len() as u64,
        features: histograms,
        score: numeric_histogram(SCORE, scores),
    })
}

fn numeric_histogram(name: &str, values: &[f64]) -> Histogram {
    let mut counter = Counter::new(
        Bins::Numeric {
            edges: quantile_edges(values),
        },
        None,
    );
    for v in values {
        counter.add_number(Some(*v));
    }
    counter.finish(name)
}

/// Counts values into one histogram's bins.
#[derive(Debug, Clone)]
struct Counter {
    bins: Bins,
    counts: Vec<u64>,
    /// Category → bin, for the top categories.
    top: HashMap<String, usize>,
    /// Every category the model knows (categorical features only), shared by the batches'
    /// counters.
    known: Arc<HashSet<String>>,
}

impl Counter {
    fn new(bins: Bins, known: Option<Arc<HashSet<String>>>) -> Counter {
        let top = match &bins {
            Bins::Categorical { top } => top.iter().cloned().zip(0..).collect(),
            Bins::Numeric { .. } => HashMap::new(),
        };
        Counter {
            counts: vec![0; bins.len()],
            bins,
            top,
            known: known.unwrap_or_default(),
        }
    }

    fn add_number(&mut self, v: Option<f64>) {
        if let Bins::Numeric { edges } = &self.bins {
            self.counts[numeric_bin(edges, v)] += 1;
        }
    }

    fn add_category(&mut self, v: Option<&str>) {
        let n = self.counts.len();
        let bin = match v {
            None => n - 1,
            Some(c) => match self.top.get(c) {
                Some(&b) => b,
                None if self.known.contains(c) => n - 3,
                None => n - 2,
            },
        };
        self.counts[bin] += 1;
    }

    fn add_array(&mut self, name: &str, col: &ArrayRef) -> Result<(), ModelError> {
        match (&self.bins, col.data_type()) {
            (Bins::Numeric { .. }, DataType::Float64) => {
                let a = downcast::<Float64Array>(name, col)?;
                for v in a.iter() {
                    self.add_number(v);
                }
            }
            (Bins::Numeric { .. }, DataType::Int64) => {
                let a = downcast::<Int64Array>(name, col)?;
                for v in a.iter() {
                    self.add_number(v.map(|v| v as f64));
                }
            }
            (
                Bins::Categorical { .. },
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8,
            ) => {
                let text = arrow::compute::cast(col, &DataType::Utf8)
                    .map_err(|e| ModelError::table(format!("feature {name}: {e}")))?;
                let a = downcast::<StringArray>(name, &text)?;
                for v in a.iter() {
                    self.add_category(v);
                }
            }
            (_, other) => {
                return Err(ModelError::table(format!(
                    "feature {name} has type {other}, which its drift reference does not bin"
                )));
            }
        }
        Ok(())
    }

    fn finish(self, name: &str) -> Histogram {
        Histogram {
            name: name.to_string(),
            bins: self.bins,
            counts: self.counts,
        }
    }
}

fn downcast<'a, T: 'static>(name: &str, col: &'a ArrayRef) -> Result<&'a T, ModelError> {
    col.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| ModelError::table(format!("feature {name}: unexpected array type")))
}

/// A scored population counted into the reference's bins, batch by batch. Counts add up, so
/// shards counted apart and summed ([`Population::merge`]) equal the whole counted at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    /// Rows counted.
    pub rows: u64,
    /// One histogram per reference feature, in its order.
    pub features: Vec<Histogram>,
    /// The served model's uncalibrated probability.
    pub score: Histogram,
}

/// Counts batches of the scored population into a reference's bins.
#[derive(Debug, Clone)]
pub struct PopulationCounter {
    rows: u64,
    features: Vec<Counter>,
    score: Counter,
}

impl PopulationCounter {
    /// An empty count over `reference`'s bins; `encoders` are the served model's (which
    /// categories it knows).
    pub fn new(
        reference: &Reference,
        encoders: &BTreeMap<String, TargetEncoder>,
    ) -> PopulationCounter {
        let known = known_categories(encoders);
        PopulationCounter {
            rows: 0,
            features: reference
                .features
                .iter()
                .map(|h| Counter::new(h.bins.clone(), known.get(&h.name).cloned()))
                .collect(),
            score: Counter::new(reference.score.bins.clone(), None),
        }
    }

    /// Counts one batch: its feature columns (by the reference's names) and the model's
    /// uncalibrated probability of each of its rows.
    pub fn add(
        &mut self,
        names: &[String],
        batch: &RecordBatch,
        scores: &[f64],
    ) -> Result<(), ModelError> {
        if scores.len() != batch.num_rows() {
            return Err(ModelError::model(format!(
                "drift: {} scores for {} rows",
                scores.len(),
                batch.num_rows()
            )));
        }
        for (counter, name) in self.features.iter_mut().zip(names) {
            let col = batch.column_by_name(name).ok_or_else(|| {
                ModelError::table(format!("feature {name} missing from the scored batch"))
            })?;
            counter.add_array(name, col)?;
        }
        for v in scores {
            self.score.add_number(Some(*v));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Adds another counter of the same reference (a batch counted on another thread).
    pub fn absorb(&mut self, other: PopulationCounter) {
        self.rows += other.rows;
        for (a, b) in self.features.iter_mut().zip(other.features) {
            add_counts(&mut a.counts, &b.counts);
        }
        add_counts(&mut self.score.counts, &other.score.counts);
    }

    /// The counts, with the reference's feature names.
    pub fn finish(self, reference: &Reference) -> Population {
        Population {
            rows: self.rows,
            features: self
                .features
                .into_iter()
                .zip(&reference.features)
                .map(|(c, h)| c.finish(&h.name))
                .collect(),
            score: self.score.finish(SCORE),
        }
    }
}

fn add_counts(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

impl Population {
    /// Sums shards' populations counted over the same bins.
    pub fn merge(parts: &[Population]) -> Result<Population, ModelError> {
        let Some((first, rest)) = parts.split_first() else {
            return Err(ModelError::model("drift: no populations to merge"));
        };
        let mut total = first.clone();
        for p in rest {
            let same = p.features.len() == total.features.len()
                && p.features
                    .iter()
                    .zip(&total.features)
                    .all(|(a, b)| a.name == b.name && a.bins == b.bins)
                && p.score.bins == total.score.bins;
            if !same {
                return Err(ModelError::model(
                    "drift: the shards' populations were counted over different bins",
                ));
            }
            total.rows += p.rows;
            for (a, b) in total.features.iter_mut().zip(&p.features) {
                add_counts(&mut a.counts, &b.counts);
            }
            add_counts(&mut total.score.counts, &p.score.counts);
        }
        Ok(total)
    }
}

/// Shares of `counts`, with evidently's zero fill: `None` when there are no rows.
fn filled_shares(counts: &[u64]) -> Option<Vec<f64>> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let mut shares: Vec<f64> = counts.iter().map(|c| *c as f64 / total as f64).collect();
    let smallest = shares
        .iter()
        .copied()
        .filter(|s| *s != 0.0)
        .fold(f64::INFINITY, f64::min);
    let eps = if smallest <= 1e-4 {
        smallest / 1e6
    } else {
        1e-4
    };
    for s in &mut shares {
        if *s == 0.0 {
            *s = eps;
        }
    }
    Some(shares)
}

/// Population stability index of `current` against `reference` over the same bins; `None` when
/// either side has no rows or the bin counts differ.
pub fn psi(reference: &[u64], current: &[u64]) -> Option<f64> {
    if reference.len() != current.len() {
        return None;
    }
    let (r, c) = (filled_shares(reference)?, filled_shares(current)?);
    Some(r.iter().zip(&c).map(|(r, c)| (r - c) * (r / c).ln()).sum())
}

/// Upper 0.1% point of χ² with `df` degrees of freedom (Wilson–Hilferty; 3% high at 1 df,
/// closer as `df` grows).
fn chi2_999(df: f64) -> f64 {
    const Z: f64 = 3.090_232_306_167_813; // upper 0.1% point of the standard normal
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + Z * a.sqrt()).powi(3)
}

/// The PSI two samples of these sizes from one distribution exceed one time in a thousand: PSI is
/// the symmetric Kullback–Leibler divergence, which is then about `(1/n₁ + 1/n₂)·χ²(k − 1)` over
/// the `k` bins either sample fills.
fn psi_noise(a: &[u64], b: &[u64]) -> Option<f64> {
    let (na, nb): (u64, u64) = (a.iter().sum(), b.iter().sum());
    if na == 0 || nb == 0 || a.len() != b.len() {
        return None;
    }
    let filled = a.iter().zip(b).filter(|(x, y)| **x + **y > 0).count();
    let df = filled.saturating_sub(1).max(1) as f64;
    Some((1.0 / na as f64 + 1.0 / nb as f64) * chi2_999(df))
}

/// Whether a share rising from `p_r` (of `n_r` rows) to `p_c` (of `n_c`) is more than sampling
/// gives one time in a thousand (one-sided two-proportion z-test).
fn share_rise_is_significant(p_r: f64, p_c: f64, n_r: u64, n_c: u64) -> bool {
    const Z: f64 = 3.090_232_306_167_813;
    let (n_r, n_c) = (n_r as f64, n_c as f64);
    let pooled = (p_r * n_r + p_c * n_c) / (n_r + n_c);
    let se = (pooled * (1.0 - pooled) * (1.0 / n_r + 1.0 / n_c)).sqrt();
    p_c - p_r > Z * se
}

/// Share of a categorical histogram's rows in the "unknown to the model" bin.
fn unknown_share(h: &Histogram) -> Option<f64> {
    match h.bins {
        Bins::Categorical { .. } => {
            let total: u64 = h.counts.iter().sum();
            (total > 0).then(|| h.counts[h.counts.len() - 2] as f64 / total as f64)
        }
        Bins::Numeric { .. } => None,
    }
}

/// How far a figure has moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Within the warning thresholds.
    Ok,
    /// At or past a warning threshold: worth a look.
    Warn,
    /// At or past a failing threshold against the reference: the run is refused.
    Fail,
}

/// When a drift warns and when it fails a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// PSI at or above which a histogram warns (against the reference or the previous run).
    pub psi_warn: f64,
    /// PSI against the reference at or above which the run fails.
    pub psi_fail: f64,
    /// Rise in the share of values the model does not know, over the reference's, at or above
    /// which a categorical feature warns.
    pub unknown_warn: f64,
    /// The same rise at or above which the run fails.
    pub unknown_fail: f64,
    /// Features reported but never judged: those that describe the calendar (the scored anchors
    /// are months after the reference by construction).
    pub exempt: Vec<String>,
    /// Fewest rows, on each side of a comparison, for it to be judged at all.
    pub min_rows: u64,
}

impl Default for Thresholds {
    /// PSI 0.1 / 0.25, the usual "moderate" and "significant" shift; 5 and 20 points more rows
    /// the model cannot tell apart; the anchor's month exempt.
    fn default() -> Thresholds {
        Thresholds {
            psi_warn: 0.1,
            psi_fail: 0.25,
            unknown_warn: 0.05,
            unknown_fail: 0.2,
            exempt: vec!["anchor_month".to_string()],
            min_rows: 500,
        }
    }
}

/// One histogram compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramDrift {
    /// Feature name, or [`SCORE`].
    pub name: String,
    /// The bins.
    pub bins: Bins,
    /// A readable label per bin.
    pub labels: Vec<String>,
    /// Reference rows per bin.
    pub reference: Vec<u64>,
    /// Today's rows per bin.
    pub current: Vec<u64>,
    /// PSI against the reference.
    pub psi: Option<f64>,
    /// PSI that two samples of the reference's and today's sizes from one distribution exceed one
    /// time in a thousand; a PSI below it is not judged.
    pub psi_noise: Option<f64>,
    /// PSI against the previous run, when it was counted over the same bins.
    pub psi_previous: Option<f64>,
    /// Share of the reference the model does not know (categorical features).
    pub reference_unknown_share: Option<f64>,
    /// Share of today's rows the model does not know (categorical features).
    pub unknown_share: Option<f64>,
    /// Reported but not judged ([`Thresholds::exempt`]).
    pub exempt: bool,
    /// The worst level of the figures above.
    pub level: Level,
}

/// One threshold crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Feature name, or [`SCORE`].
    pub feature: String,
    /// `psi`, `psi_previous` or `unknown_share_rise`.
    pub measure: String,
    /// The figure.
    pub value: f64,
    /// The threshold it reached.
    pub threshold: f64,
    /// Warn or fail.
    pub level: Level,
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {:.3} ≥ {}",
            self.feature, self.measure, self.value, self.threshold
        )
    }
}

/// The comparisons of one day's population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Rows of today's population.
    pub rows: u64,
    /// Rows of the reference.
    pub reference_rows: u64,
    /// Rows of the previous run compared with, when there was one.
    pub previous_rows: Option<u64>,
    /// Whether the figures were judged (both sides had [`Thresholds::min_rows`] rows).
    pub judged: bool,
    /// Every model feature, in the model's order.
    pub features: Vec<HistogramDrift>,
    /// The model's uncalibrated probability.
    pub score: HistogramDrift,
    /// Thresholds crossed, failures first, then by feature order.
    pub alerts: Vec<Alert>,
    /// The worst level.
    pub level: Level,
}

impl Comparison {
    /// Today's population as it was counted (for the next run to compare with).
    pub fn population(&self) -> Population {
        let histogram = |h: &HistogramDrift| Histogram {
            name: h.name.clone(),
            bins: h.bins.clone(),
            counts: h.current.clone(),
        };
        Population {
            rows: self.rows,
            features: self.features.iter().map(histogram).collect(),
            score: histogram(&self.score),
        }
    }
}

/// Compares `current` with `reference` and, where its bins match, with `previous` (the previous
/// run's population), and judges every figure with `thresholds`.
pub fn compare(
    reference: &Reference,
    current: &Population,
    previous: Option<&Population>,
    thresholds: &Thresholds,
) -> Comparison {
    let mut alerts = Vec::new();
    let enough = |rows: u64| rows >= thresholds.min_rows;
    let judged = enough(reference.rows) && enough(current.rows);
    let judge_previous = previous.is_some_and(|p| enough(p.rows));
    let mut judge = |r: &Histogram, c: &Histogram| -> HistogramDrift {
        let prev = previous.and_then(|p| {
            std::iter::once(&p.score)
                .chain(&p.features)
                .find(|h| h.name == c.name && h.bins == c.bins)
        });
        let psi_now = psi(&r.counts, &c.counts);
        let noise = psi_noise(&r.counts, &c.counts);
        let psi_previous = prev.and_then(|p| psi(&p.counts, &c.counts));
        let beyond_noise_previous = prev.is_some_and(|p| {
            psi_previous
                .zip(psi_noise(&p.counts, &c.counts))
                .is_some_and(|(v, n)| v > n)
        });
        let (ref_unknown, unknown) = (unknown_share(r), unknown_share(c));
        let rise = ref_unknown.zip(unknown).map(|(r, u)| u - r);
        let rise_beyond_noise = ref_unknown.zip(unknown).is_some_and(|(p_r, p_c)| {
            share_rise_is_significant(p_r, p_c, r.counts.iter().sum(), c.counts.iter().sum())
        });
        let exempt = thresholds.exempt.contains(&c.name);
        let mut level = Level::Ok;
        if !exempt && judged {
            let mut check = |measure: &str, value: Option<f64>, warn: f64, fail: Option<f64>| {
                let Some(value) = value else { return };
                let hit = match fail {
                    Some(f) if value >= f => Some((Level::Fail, f)),
                    _ if value >= warn => Some((Level::Warn, warn)),
                    _ => None,
                };
                if let Some((l, threshold)) = hit {
                    level = level.max(l);
                    alerts.push(Alert {
                        feature: c.name.clone(),
                        measure: measure.to_string(),
                        value,
                        threshold,
                        level: l,
                    });
                }
            };
            let beyond_noise = psi_now.zip(noise).is_some_and(|(v, n)| v > n);
            check(
                "psi",
                psi_now.filter(|_| beyond_noise),
                thresholds.psi_warn,
                Some(thresholds.psi_fail),
            );
            check(
                "psi_previous",
                psi_previous.filter(|_| judge_previous && beyond_noise_previous),
                thresholds.psi_warn,
                None,
            );
            check(
                "unknown_share_rise",
                rise.filter(|_| rise_beyond_noise),
                thresholds.unknown_warn,
                Some(thresholds.unknown_fail),
            );
        }
        HistogramDrift {
            name: c.name.clone(),
            bins: c.bins.clone(),
            labels: c.bins.labels(),
            reference: r.counts.clone(),
            current: c.counts.clone(),
            psi: psi_now,
            psi_noise: noise,
            psi_previous,
            reference_unknown_share: ref_unknown,
            unknown_share: unknown,
            exempt,
            level,
        }
    };
    let features: Vec<HistogramDrift> = reference
        .features
        .iter()
        .zip(&current.features)
        .map(|(r, c)| judge(r, c))
        .collect();
    let score = judge(&reference.score, &current.score);
    // Failures first; the sort is stable, so feature order holds within a level.
    alerts.sort_by_key(|a| std::cmp::Reverse(a.level));
    let level = alerts.iter().map(|a| a.level).max().unwrap_or(Level::Ok);
    Comparison {
        rows: current.rows,
        reference_rows: reference.rows,
        previous_rows: previous.map(|p| p.rows),
        judged,
        features,
        score,
        alerts,
        level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        ((a - b) / b).abs() < 1e-12
    }

    /// Values of evidently 0.7.23's `_psi` (categorical path: shares of each side, the same zero
    /// fill), on inputs whose categories map one to one onto our bins.
    #[test]
    fn psi_matches_evidently_on_the_same_bins() {
        // ref a:50 b:30 c:20, cur a:40 b:30 d:30 (bins a, b, c, d).
        assert!(close(
            psi(&[50, 30, 20, 0], &[40, 30, 0, 30]).unwrap(),
            3.9428443903321924
        ));
        // ref 1.,2.,3. ten each; cur 1.,2. five each and 4. ten (bins 1, 2, 3, 4).
        assert!(close(
            psi(&[10, 10, 10, 0], &[5, 5, 0, 10]).unwrap(),
            7.008790076758634
        ));
        // A tiny share: ref a:19999 b:1, cur a:100 c:10 (bins a, b, c); eps = 5e-5 / 1e6.
        assert!(close(
            psi(&[19999, 1, 0], &[100, 0, 10]).unwrap(),
            1.9469719856709826
        ));
        assert_eq!(psi(&[1, 2], &[0, 0]), None);
        assert_eq!(psi(&[1, 2], &[1, 2, 3]), None);
        assert_eq!(psi(&[3, 1], &[3, 1]), Some(0.0));
    }

    #[test]
    fn deciles_merge_ties_and_keep_the_top_bin() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            quantile_edges(&v),
            vec![10., 20., 30., 40., 50., 60., 70., 80., 90.]
        );
        // 70% zeros: one bin for the mass at 0.
        let mut v = vec![0.0; 70];
        v.extend((1..=30).map(f64::from));
        v.push(f64::NAN);
        let e = quantile_edges(&v);
        assert_eq!(e, vec![0., 10., 20.]);
        let mut c = Counter::new(Bins::Numeric { edges: e }, None);
        for x in &v {
            c.add_number(Some(*x));
        }
        c.add_number(None);
        assert_eq!(c.counts, vec![70, 10, 10, 10, 2]);
        // A constant: no split, everything in one bin.
        assert_eq!(quantile_edges(&[3.0; 10]), Vec::<f64>::new());
        assert_eq!(
            Bins::Numeric { edges: vec![] }.labels(),
            ["any value", "(missing)"]
        );
        assert_eq!(quantile_edges(&[]), Vec::<f64>::new());
    }

    #[test]
    fn categories_fall_into_top_known_unknown_and_missing() {
        let known: Arc<HashSet<String>> = Arc::new(["a", "b", "c"].map(String::from).into());
        let mut c = Counter::new(
            Bins::Categorical {
                top: vec!["b".into(), "a".into()],
            },
            Some(known),
        );
        for v in [Some("a"), Some("b"), Some("b"), Some("c"), Some("z"), None] {
            c.add_category(v);
        }
        assert_eq!(c.counts, vec![2, 1, 1, 1, 1]);
        assert_eq!(
            c.bins.labels(),
            [
                "b",
                "a",
                "(other known)",
                "(unknown to the model)",
                "(missing)"
            ]
        );
        let h = c.finish("x");
        assert_eq!(unknown_share(&h), Some(1.0 / 6.0));
    }

    fn table(values: &[f64], cats: &[Option<&str>]) -> FeatureTable {
        let mut t = FeatureTable {
            order_id: (0..values.len() as i64).collect(),
            ..FeatureTable::default()
        };
        t.numeric.insert("n".into(), values.to_vec());
        t.categorical.insert(
            "c".into(),
            cats.iter().map(|c| c.map(String::from)).collect(),
        );
        t
    }

    fn specs() -> Vec<FeatureSpec> {
        vec![
            FeatureSpec {
                name: "n".into(),
                kind: FeatureKind::Numeric,
            },
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical,
            },
        ]
    }

    fn encoders(known: &[&str]) -> BTreeMap<String, TargetEncoder> {
        let values: Vec<Option<String>> = known.iter().map(|k| Some(k.to_string())).collect();
        let labels = vec![false; values.len()];
        BTreeMap::from([(
            "c".to_string(),
            TargetEncoder::fit(&values, &labels, 1.0, 1),
        )])
    }

    fn population(
        r: &Reference,
        enc: &BTreeMap<String, TargetEncoder>,
        n: &[f64],
        c: &[Option<&str>],
        scores: &[f64],
    ) -> Population {
        let batch = RecordBatch::try_from_iter([
            (
                "n",
                std::sync::Arc::new(Float64Array::from(n.to_vec())) as ArrayRef,
            ),
            (
                "c",
                std::sync::Arc::new(StringArray::from(c.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut counter = PopulationCounter::new(r, enc);
        counter
            .add(&["n".into(), "c".into()], &batch, scores)
            .unwrap();
        counter.finish(r)
    }

    #[test]
    fn an_unchanged_population_raises_nothing_and_drifts_are_named() {
        let n: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        let cats: Vec<Option<&str>> = (0..1000)
            .map(|i| match i % 10 {
                0..=5 => Some("Search"),
                6..=8 => Some("Organic"),
                _ => None,
            })
            .collect();
        let scores: Vec<f64> = (0..1000).map(|i| f64::from(i % 37) / 10.0).collect();
        let enc = encoders(&["Search", "Organic", "Email"]);
        let rows: Vec<usize> = (0..1000).collect();
        let r = reference(
            &table(&n, &cats),
            &rows,
            &specs(),
            &enc,
            &scores,
            ("s".into(), "e".into()),
        )
        .unwrap();
        let t = Thresholds::default();

        let same = population(&r, &enc, &n, &cats, &scores);
        let cmp = compare(&r, &same, Some(&same), &t);
        assert_eq!(cmp.level, Level::Ok);
        assert!(cmp.alerts.is_empty());
        assert_eq!(cmp.features[0].psi, Some(0.0));
        assert_eq!(cmp.features[0].psi_previous, Some(0.0));
        assert_eq!(cmp.population(), same);

        // A shifted number, a renamed category and collapsed scores.
        let shifted: Vec<f64> = n.iter().map(|v| v + 30.0).collect();
        let renamed: Vec<Option<&str>> = cats
            .iter()
            .map(|c| {
                if *c == Some("Organic") {
                    Some("organic")
                } else {
                    *c
                }
            })
            .collect();
        let collapsed = vec![0.1; 1000];
        let drifted = population(&r, &enc, &shifted, &renamed, &collapsed);
        let cmp = compare(&r, &drifted, Some(&same), &t);
        assert_eq!(cmp.level, Level::Fail);
        let failed: Vec<(&str, &str)> = cmp
            .alerts
            .iter()
            .filter(|a| a.level == Level::Fail)
            .map(|a| (a.feature.as_str(), a.measure.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                ("n", "psi"),
                ("c", "psi"),
                ("c", "unknown_share_rise"),
                (SCORE, "psi")
            ]
        );
        assert_eq!(cmp.features[1].unknown_share, Some(0.3));
        assert_eq!(cmp.features[1].reference_unknown_share, Some(0.0));
        // The previous run only warns.
        assert!(
            cmp.alerts
                .iter()
                .any(|a| a.measure == "psi_previous" && a.level == Level::Warn)
        );

        // Too few rows: reported, not judged.
        let small = Thresholds {
            min_rows: 1001,
            ..Thresholds::default()
        };
        let cmp = compare(&r, &drifted, None, &small);
        assert!(!cmp.judged && cmp.alerts.is_empty() && cmp.level == Level::Ok);
        assert!(cmp.features[0].psi.unwrap() > 1.0);

        // Exempt features are reported, not judged.
        let t = Thresholds {
            exempt: vec!["n".into(), "c".into(), SCORE.into()],
            ..Thresholds::default()
        };
        let cmp = compare(&r, &drifted, None, &t);
        assert_eq!(cmp.level, Level::Ok);
        assert!(cmp.features[0].psi.unwrap() > 1.0 && cmp.features[0].exempt);
    }

    #[test]
    fn sampling_noise_bounds() {
        // χ²(0.999) for 1 and 9 degrees of freedom: 10.83 and 27.88.
        assert!((chi2_999(1.0) / 10.828 - 1.0).abs() < 0.035);
        assert!((chi2_999(9.0) / 27.877 - 1.0).abs() < 0.01);
        // Ten filled bins, 500 rows a side.
        let noise = psi_noise(&[50; 10], &[50; 10]).unwrap();
        assert!((noise - 0.004 * chi2_999(9.0)).abs() < 1e-12);
        // 0.30 → 0.40 of 1000 rows a side is beyond noise; of 100 a side it is not.
        assert!(share_rise_is_significant(0.3, 0.4, 1000, 1000));
        assert!(!share_rise_is_significant(0.3, 0.4, 100, 100));
        assert!(!share_rise_is_significant(0.4, 0.3, 1000, 1000));
    }

    #[test]
    fn shards_sum_to_the_whole() {
        let n: Vec<f64> = (0..200).map(f64::from).collect();
        let cats: Vec<Option<&str>> = (0..200)
            .map(|i| Some(if i % 3 == 0 { "a" } else { "b" }))
            .collect();
        let enc = encoders(&["a", "b"]);
        let rows: Vec<usize> = (0..200).collect();
        let r = reference(
            &table(&n, &cats),
            &rows,
            &specs(),
            &enc,
            &n,
            ("s".into(), "e".into()),
        )
        .unwrap();
        let whole = population(&r, &enc, &n, &cats, &n);
        let a = population(&r, &enc, &n[..77], &cats[..77], &n[..77]);
        let b = population(&r, &enc, &n[77..], &cats[77..], &n[77..]);
        assert_eq!(Population::merge(&[a, b]).unwrap(), whole);
        assert_eq!(whole.features, r.features);
    }
}
