//! The gradient-boosted trees (forust-ml) and the saved model artefact.
//!
//! forust-ml was chosen by measurement (see docs/MODEL.md): pure Rust, JSON models, NaN as missing,
//! AUC within a few thousandths of LightGBM on this task. The artefact bundles everything needed to
//! score a feature partition: the feature list (in matrix order), the categorical encoders and the
//! booster itself, so `score` can never apply a model to differently prepared columns.

use std::collections::{BTreeMap, HashMap};

use crate::error::ModelError;
use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringViewArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Schema};
use foldhash::fast::FixedState;
use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::gradientbooster::ImportanceMethod;
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use serde::{Deserialize, Serialize};

use crate::encoding::{EncoderLookup, TargetEncoder, out_of_fold_weighted};
use crate::explain::Contributions;
use crate::forest::{Forest, sigmoid};
use crate::table::{FeatureKind, FeatureSpec, FeatureTable, is_identifier};

/// Version of the saved [`ModelArtifact`] layout; [`ModelArtifact::from_bytes`] refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// Settings of the booster (forust-ml) and of the categorical target encoders fitted with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoosterParams {
    /// Most trees grown; with early stopping, fewer may be kept. A fixed fit grows exactly this.
    pub max_iterations: usize,
    /// Shrinkage applied to each tree's contribution (log-odds scale).
    pub learning_rate: f32,
    /// Deepest a tree may grow (splits from root to leaf).
    pub max_depth: usize,
    /// Least total hessian (sum of row weight × p(1−p)) a leaf must hold for a split.
    pub min_leaf_weight: f32,
    /// L2 penalty on leaf values.
    pub l2: f32,
    /// Histogram bins per numeric feature when searching splits.
    pub nbins: u16,
    /// Rounds without a better validation log loss after which fitting stops.
    pub early_stopping_rounds: usize,
    /// Share of rows each tree sees (1.0: all); seeded, so fits repeat.
    pub subsample: f32,
    /// Share of columns each tree sees (1.0: all); seeded, so fits repeat.
    pub colsample_bytree: f64,
    /// Seed of row and column sampling.
    pub seed: u64,
    /// Target-encoding smoothing (pseudo-rows of the prior).
    pub encoding_smoothing: f64,
    /// Target-encoding rare-category threshold: categories seen fewer times share one code.
    pub encoding_min_count: u64,
}

impl Default for BoosterParams {
    fn default() -> Self {
        BoosterParams {
            max_iterations: 1000,
            learning_rate: 0.05,
            max_depth: 4,
            min_leaf_weight: 5.0,
            l2: 1.0,
            nbins: 256,
            early_stopping_rounds: 50,
            subsample: 1.0,
            colsample_bytree: 1.0,
            seed: 0,
            encoding_smoothing: 20.0,
            encoding_min_count: 30,
        }
    }
}

/// The saved model: everything needed to score a feature partition the way it was trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Layout version, [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The features, in feature-matrix column order.
    pub features: Vec<FeatureSpec>,
    /// Target encoder of each categorical feature, by feature name, fitted on the training window.
    pub encoders: BTreeMap<String, TargetEncoder>,
    /// The parameters the model was fitted with.
    pub params: BoosterParams,
    /// Trees used for prediction (best validation iteration).
    pub iterations: usize,
    /// forust-ml's own JSON model.
    pub booster: serde_json::Value,
}

impl ModelArtifact {
    /// Fits encoders on `train` and the booster on `train`, early-stopping on `valid`.
    pub fn fit(
        train: &FeatureTable,
        valid: &FeatureTable,
        params: &BoosterParams,
    ) -> Result<ModelArtifact, ModelError> {
        ModelArtifact::fit_weighted(train, valid, params, None)
    }

    /// [`ModelArtifact::fit`] with a weight per training row (`None`: all 1), used by the booster's
    /// loss and by the target encoders. Weights of `1/rate` on negatives kept at `rate` keep the
    /// fitted scores on the unsampled base rate. Validation rows always weigh 1.
    pub fn fit_weighted(
        train: &FeatureTable,
        valid: &FeatureTable,
        params: &BoosterParams,
        train_weights: Option<&[f64]>,
    ) -> Result<ModelArtifact, ModelError> {
        let prepared = ModelArtifact::prepare(train, Some(valid), params, train_weights)?;
        ModelArtifact::fit_prepared(&prepared, params, true)
    }

    /// Fits the encoders on `train` and the booster with exactly `params.max_iterations` trees,
    /// without a validation window: the refit of a configuration already chosen (the served
    /// model, the cross-fitting folds).
    pub fn fit_fixed(
        train: &FeatureTable,
        params: &BoosterParams,
        train_weights: Option<&[f64]>,
        parallel: bool,
    ) -> Result<ModelArtifact, ModelError> {
        let prepared = ModelArtifact::prepare(train, None, params, train_weights)?;
        ModelArtifact::fit_prepared(&prepared, params, parallel)
    }

    /// Fits the encoders and encodes the training window and, when given, the validation window
    /// early stopping watches: everything fits of other booster parameters (tree depths) share.
    /// `params` gives the encoding settings.
    pub fn prepare(
        train: &FeatureTable,
        valid: Option<&FeatureTable>,
        params: &BoosterParams,
        train_weights: Option<&[f64]>,
    ) -> Result<Prepared, ModelError> {
        if let Some(w) = train_weights {
            if w.len() != train.len() {
                return Err(ModelError::model(format!(
                    "{} training weights for {} training rows",
                    w.len(),
                    train.len()
                )));
            }
            if w.iter().any(|v| !v.is_finite() || *v <= 0.0) {
                return Err(ModelError::model(
                    "training weights must be finite and positive",
                ));
            }
        }
        for spec in &train.specs {
            if is_identifier(&spec.name) {
                return Err(ModelError::model(format!(
                    "refusing identifier column {:?} as a feature",
                    spec.name
                )));
            }
        }
        let y_train = train.labels()?;
        let mut encoders = BTreeMap::new();
        for spec in train
            .specs
            .iter()
            .filter(|s| s.kind == FeatureKind::Categorical)
        {
            let values = &train.categorical[&spec.name];
            encoders.insert(
                spec.name.clone(),
                TargetEncoder::fit_weighted(
                    values,
                    y_train,
                    train_weights,
                    params.encoding_smoothing,
                    params.encoding_min_count,
                ),
            );
        }
        let artifact = ModelArtifact {
            format_version: FORMAT_VERSION,
            features: train.specs.clone(),
            encoders,
            params: params.clone(),
            iterations: 0,
            booster: serde_json::Value::Null,
        };
        let x_train = artifact.matrix_out_of_fold(train, y_train, train_weights)?;
        let label =
            |y: &[bool]| -> Vec<f64> { y.iter().map(|b| f64::from(u8::from(*b))).collect() };
        let valid = match valid {
            Some(v) => Some((artifact.matrix(v)?, label(v.labels()?))),
            None => None,
        };
        Ok(Prepared {
            x_train,
            valid,
            y_train: label(y_train),
            w_train: train_weights.map_or_else(|| vec![1.0; train.len()], <[f64]>::to_vec),
            features: artifact.features,
            encoders: artifact.encoders,
            encoding: (params.encoding_smoothing, params.encoding_min_count),
        })
    }

    /// Fits the booster with `params` on prepared windows, early-stopping on validation when it
    /// was prepared (otherwise exactly `params.max_iterations` trees).
    /// `parallel`: spread each tree's histograms over the cores (off when the caller fits several
    /// boosters at once, one per core; the model is the same either way).
    pub fn fit_prepared(
        prepared: &Prepared,
        params: &BoosterParams,
        parallel: bool,
    ) -> Result<ModelArtifact, ModelError> {
        if (params.encoding_smoothing, params.encoding_min_count) != prepared.encoding {
            return Err(ModelError::model(
                "the windows were encoded with other encoding settings than these parameters",
            ));
        }
        let p = prepared.features.len();
        let n_train = prepared.y_train.len();
        let early_stopping = prepared.valid.is_some();
        let booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_iterations(params.max_iterations)
            .set_learning_rate(params.learning_rate)
            .set_max_depth(params.max_depth)
            .set_min_leaf_weight(params.min_leaf_weight)
            .set_l2(params.l2)
            .set_nbins(params.nbins)
            .set_subsample(params.subsample)
            .set_sample_method(if params.subsample < 1.0 {
                SampleMethod::Random
            } else {
                SampleMethod::None
            })
            .set_colsample_bytree(params.colsample_bytree)
            .set_seed(params.seed)
            .set_evaluation_metric(early_stopping.then_some(Metric::LogLoss))
            .set_early_stopping_rounds(early_stopping.then_some(params.early_stopping_rounds));
        let mut booster = booster.set_parallel(parallel).set_tiled_histograms(true);
        let train_m = Matrix::new(&prepared.x_train, n_train, p);
        let w_valid = prepared
            .valid
            .as_ref()
            .map_or_else(Vec::new, |(_, y)| vec![1.0; y.len()]);
        let eval = prepared
            .valid
            .as_ref()
            .map(|(x, y)| vec![(Matrix::new(x, y.len(), p), y.as_slice(), w_valid.as_slice())]);
        booster
            .fit(&train_m, &prepared.y_train, &prepared.w_train, eval)
            .map_err(|e| ModelError::model(format!("training failed: {e}")))?;
        // The saved model does not depend on how it was fitted.
        let booster = booster.set_parallel(true);
        let json = booster.json_dump().map_err(ModelError::model)?;
        Ok(ModelArtifact {
            format_version: FORMAT_VERSION,
            features: prepared.features.clone(),
            encoders: prepared.encoders.clone(),
            params: params.clone(),
            iterations: booster.prediction_iteration.unwrap_or(booster.trees.len()),
            booster: serde_json::from_str(&json).map_err(ModelError::model)?,
        })
    }

    fn booster(&self) -> Result<GradientBooster, ModelError> {
        GradientBooster::from_json(&self.booster.to_string()).map_err(ModelError::model)
    }

    /// Column-major feature matrix with encoders applied (NaN = missing).
    pub fn matrix(&self, t: &FeatureTable) -> Result<Vec<f64>, ModelError> {
        self.build_matrix(t, None)
    }

    fn matrix_out_of_fold(
        &self,
        t: &FeatureTable,
        labels: &[bool],
        weights: Option<&[f64]>,
    ) -> Result<Vec<f64>, ModelError> {
        self.build_matrix(t, Some((labels, weights)))
    }

    fn build_matrix(
        &self,
        t: &FeatureTable,
        oof_labels: Option<(&[bool], Option<&[f64]>)>,
    ) -> Result<Vec<f64>, ModelError> {
        let n = t.len();
        let mut x = Vec::with_capacity(n * self.features.len());
        for spec in &self.features {
            match spec.kind {
                FeatureKind::Numeric => {
                    let col = t.numeric.get(&spec.name).ok_or_else(|| {
                        ModelError::model(format!("feature {:?} missing from input", spec.name))
                    })?;
                    x.extend(col.iter().copied());
                }
                FeatureKind::Categorical => {
                    let col = t.categorical.get(&spec.name).ok_or_else(|| {
                        ModelError::model(format!("feature {:?} missing from input", spec.name))
                    })?;
                    let enc = &self.encoders[&spec.name];
                    match oof_labels {
                        Some((labels, weights)) => x.extend(out_of_fold_weighted(
                            col,
                            labels,
                            weights,
                            enc.smoothing,
                            enc.min_count,
                            5,
                        )),
                        None => x.extend(enc.transform(col)),
                    }
                }
            }
        }
        Ok(x)
    }

    /// The booster's prediction trees, compiled ([`Forest`]).
    pub fn forest(&self) -> Result<Forest, ModelError> {
        Forest::compile(&self.booster()?, self.features.len())
    }

    /// The compiled trees with the artefact's encoders, for scoring many batches.
    pub fn predictor(&self) -> Result<Predictor, ModelError> {
        let (forest, used) = self.forest()?.compact();
        Ok(Predictor {
            features: self.features.clone(),
            used: used.iter().map(|&i| self.features[i].clone()).collect(),
            used_index: used,
            forest,
            lookups: self
                .encoders
                .iter()
                .map(|(k, e)| (k.clone(), e.lookup()))
                .collect(),
        })
    }

    /// Uncalibrated probabilities for every row of `t`.
    pub fn predict(&self, t: &FeatureTable) -> Result<Vec<f64>, ModelError> {
        if t.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.matrix(t)?;
        Ok(self
            .forest()?
            .predict_column_major(&x, t.len())
            .into_iter()
            .map(sigmoid)
            .collect())
    }

    /// Exact tree Shapley values of every row of `t` ([`Forest::contributions_blocks`]), with the
    /// column-major matrix they were computed from (categories encoded).
    pub fn contributions(&self, t: &FeatureTable) -> Result<(Contributions, Vec<f64>), ModelError> {
        let p = self.features.len();
        if t.is_empty() {
            return Ok((Contributions::new(p, Vec::new()), Vec::new()));
        }
        let x = self.matrix(t)?;
        let values = self.forest()?.contributions_column_major(&x, t.len());
        Ok((Contributions::new(p, values), x))
    }

    /// The model's feature names, in the order of its matrices and [`Contributions::row`].
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// Total gain per feature, normalised to sum to 1, highest first.
    pub fn importance(&self) -> Result<Vec<(String, f64)>, ModelError> {
        let booster = self.booster()?;
        let imp = booster.calculate_feature_importance(ImportanceMethod::TotalGain, true);
        let mut out: Vec<(String, f64)> = self
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    f.name.clone(),
                    f64::from(imp.get(&i).copied().unwrap_or(0.0)),
                )
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// The artefact as JSON bytes, as saved.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("model serialises")
    }

    /// Reads an artefact saved by [`ModelArtifact::to_bytes`]; refuses another [`FORMAT_VERSION`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ModelArtifact, ModelError> {
        let m: ModelArtifact = serde_json::from_slice(bytes)
            .map_err(|e| ModelError::model(format!("unreadable model file: {e}")))?;
        if m.format_version != FORMAT_VERSION {
            return Err(ModelError::model(format!(
                "model format {} is not {FORMAT_VERSION}",
                m.format_version
            )));
        }
        Ok(m)
    }
}

/// The encoded training and validation windows ([`ModelArtifact::prepare`]).
pub struct Prepared {
    features: Vec<FeatureSpec>,
    encoders: BTreeMap<String, TargetEncoder>,
    /// Smoothing and rare-category threshold the encoders were fitted with.
    encoding: (f64, u64),
    /// Column-major, as forust reads them.
    x_train: Vec<f64>,
    y_train: Vec<f64>,
    w_train: Vec<f64>,
    /// The validation window (matrix, labels) early stopping watches, when there is one.
    valid: Option<(Vec<f64>, Vec<f64>)>,
}

/// Scores Arrow batches of a feature partition directly: the trees are compiled once and each
/// batch becomes a row-major matrix of the features the trees use, without an intermediate
/// [`FeatureTable`] (no per-value `String`s), which keeps `score`'s memory at one batch whatever
/// the population. Gives exactly [`ModelArtifact::predict`]'s numbers for the same rows.
pub struct Predictor {
    /// The model's features, all of which the input must have.
    features: Vec<FeatureSpec>,
    /// Those the trees split on, in the compacted forest's column order.
    used: Vec<FeatureSpec>,
    /// Where each of `used` stands in `features`.
    used_index: Vec<usize>,
    forest: Forest,
    lookups: BTreeMap<String, EncoderLookup>,
}

impl Predictor {
    /// Refuses input lacking a model feature (a partition of another schema), even one no tree
    /// splits on.
    pub fn check_schema(&self, schema: &Schema) -> Result<(), ModelError> {
        match self
            .features
            .iter()
            .find(|f| schema.field_with_name(&f.name).is_err())
        {
            Some(f) => Err(ModelError::model(format!(
                "feature {:?} missing from input",
                f.name
            ))),
            None => Ok(()),
        }
    }

    /// The feature columns prediction reads.
    pub fn input_columns(&self) -> impl Iterator<Item = &str> {
        self.used.iter().map(|f| f.name.as_str())
    }

    /// The model's features, in the order of [`Contributions::row`].
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Uncalibrated probabilities for every row of `batch` (null features are missing values).
    pub fn predict_batch(&self, batch: &RecordBatch) -> Result<Vec<f64>, ModelError> {
        Ok(self
            .log_odds_batch(batch)?
            .into_iter()
            .map(sigmoid)
            .collect())
    }

    /// The raw log-odds of every row of `batch`.
    pub fn log_odds_batch(&self, batch: &RecordBatch) -> Result<Vec<f64>, ModelError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(Vec::new());
        }
        let columns = self.columns(batch)?;
        Ok(self.forest.predict_blocks(n, rows_of(&columns)))
    }

    /// Exact tree Shapley values of every row of `batch` over the compiled trees, on the calling
    /// thread: each row's values and bias sum to its [`Predictor::log_odds_batch`].
    pub fn contributions_batch(&self, batch: &RecordBatch) -> Result<Contributions, ModelError> {
        let n = batch.num_rows();
        let (p, q) = (self.features.len(), self.used.len());
        let columns = self.columns(batch)?;
        let compact = self.forest.contributions_blocks(n, rows_of(&columns));
        // Back to every model feature: one no tree splits on has no value but 0.
        let mut values = vec![0.0; n * (p + 1)];
        for (row, phi) in values
            .chunks_exact_mut(p + 1)
            .zip(compact.chunks_exact(q + 1))
        {
            for (&j, v) in self.used_index.iter().zip(phi) {
                row[j] = *v;
            }
            row[p] = phi[q];
        }
        Ok(Contributions::new(p, values))
    }

    /// The column-major matrix of every model feature (categories encoded, NaN for missing) that
    /// forust's own prediction and Shapley values read for `batch`. A feature no tree splits on is
    /// never read, so it is left NaN (and `batch` need not hold it).
    pub fn feature_matrix(&self, batch: &RecordBatch) -> Result<Vec<f64>, ModelError> {
        let n = batch.num_rows();
        let columns = self.columns(batch)?;
        let mut x = vec![f64::NAN; n * self.features.len()];
        for (column, &j) in columns.iter().zip(&self.used_index) {
            column.fill(0, &mut x[j * n..][..n], 1);
        }
        Ok(x)
    }

    /// Each used column of `batch` as the trees read it; blocks of rows are copied out of these
    /// into the row-major block the forest walks.
    fn columns<'a>(&self, batch: &'a RecordBatch) -> Result<Vec<Column<'a>>, ModelError> {
        let n = batch.num_rows();
        let mut columns: Vec<Column> = Vec::with_capacity(self.used.len());
        for spec in &self.used {
            let col = batch.column_by_name(&spec.name).ok_or_else(|| {
                ModelError::model(format!("feature {:?} missing from input", spec.name))
            })?;
            columns.push(match spec.kind {
                FeatureKind::Numeric => {
                    if let Some(a) = col.as_any().downcast_ref::<Float64Array>() {
                        Column::Float(a.values(), a.nulls().filter(|b| b.null_count() > 0))
                    } else if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
                        Column::Owned(a.iter().map(|v| v.map_or(f64::NAN, |v| v as f64)).collect())
                    } else {
                        return Err(ModelError::model(format!(
                            "feature {:?} is {} where a number is expected",
                            spec.name,
                            col.data_type()
                        )));
                    }
                }
                FeatureKind::Categorical => {
                    let enc = self.lookups.get(&spec.name).ok_or_else(|| {
                        ModelError::model(format!("no encoder for feature {:?}", spec.name))
                    })?;
                    let text = arrow::compute::cast(col, &DataType::Utf8View)
                        .map_err(|e| ModelError::model(format!("{}: {e}", spec.name)))?;
                    let a = text
                        .as_any()
                        .downcast_ref::<StringViewArray>()
                        .ok_or_else(|| ModelError::model(format!("{} is not text", spec.name)))?;
                    // Within one array a view (length, prefix, buffer, offset) determines its
                    // string, and decoded dictionary pages repeat views: each distinct view is
                    // looked up once per batch instead of hashing the text of every row.
                    let views = a.views();
                    let mut seen: HashMap<u128, f64, FixedState> = HashMap::default();
                    Column::Owned(
                        (0..n)
                            .map(|i| {
                                if a.is_null(i) {
                                    enc.get(None)
                                } else {
                                    *seen
                                        .entry(views[i])
                                        .or_insert_with(|| enc.get(Some(a.value(i))))
                                }
                            })
                            .collect(),
                    )
                }
            });
        }
        Ok(columns)
    }
}

/// The block filler of the forest's walks: rows `first..` of `columns` into a row-major block of
/// `columns.len()` values per row.
fn rows_of<'c>(columns: &'c [Column<'_>]) -> impl FnMut(usize, &mut [f64]) + 'c {
    move |first, block| {
        for (j, column) in columns.iter().enumerate() {
            column.fill(first, &mut block[j..], columns.len());
        }
    }
}

/// One feature column of a batch, as numbers the trees compare (NaN is missing).
enum Column<'a> {
    /// A Float64 column read in place, with its validity.
    Float(&'a [f64], Option<&'a NullBuffer>),
    /// Integers converted, or categories encoded, once per batch.
    Owned(Vec<f64>),
}

impl Column<'_> {
    /// Writes rows `first..` into every `stride`-th slot of `out` (one column of a row-major
    /// block), as many as the block holds.
    fn fill(&self, first: usize, out: &mut [f64], stride: usize) {
        let slots = out.iter_mut().step_by(stride);
        match self {
            Column::Float(values, None) => {
                for (slot, v) in slots.zip(&values[first..]) {
                    *slot = *v;
                }
            }
            Column::Float(values, Some(nulls)) => {
                for (k, (slot, v)) in slots.zip(&values[first..]).enumerate() {
                    *slot = if nulls.is_valid(first + k) {
                        *v
                    } else {
                        f64::NAN
                    };
                }
            }
            Column::Owned(values) => {
                for (slot, v) in slots.zip(&values[first..]) {
                    *slot = *v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::ArrayRef;
    use std::sync::Arc;

    /// A window of `n` rows: two numeric features (one with gaps) and a categorical one, with
    /// labels that depend on all three.
    fn window(n: usize, seed: u64) -> FeatureTable {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut t = FeatureTable {
            specs: vec![
                FeatureSpec {
                    name: "age".into(),
                    kind: FeatureKind::Numeric,
                },
                FeatureSpec {
                    name: "basket_value".into(),
                    kind: FeatureKind::Numeric,
                },
                FeatureSpec {
                    name: "country".into(),
                    kind: FeatureKind::Categorical,
                },
            ],
            label: Some(Vec::new()),
            ..FeatureTable::default()
        };
        let (mut age, mut basket, mut country, mut label) = (vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let a = (18.0 + next() * 50.0).floor();
            let b = if next() < 0.1 {
                f64::NAN
            } else {
                next() * 200.0
            };
            let c = ["Brasil", "China", "Spain", "France"][(next() * 4.0) as usize];
            let z = (a - 40.0) / 20.0
                + if b.is_nan() { 0.5 } else { b / 400.0 }
                + if c == "China" { 0.4 } else { 0.0 }
                + next() * 1.5;
            t.user_id.push(i as i64);
            t.order_id.push(i as i64);
            t.anchor_us.push(i as i64);
            age.push(a);
            basket.push(b);
            country.push(Some(c.to_string()));
            label.push(z > 1.2);
        }
        t.numeric.insert("age".into(), age);
        t.numeric.insert("basket_value".into(), basket);
        t.categorical.insert("country".into(), country);
        t.label = Some(label);
        t
    }

    #[test]
    fn a_fit_on_one_core_is_the_fit_on_all_cores() {
        let (train, valid) = (window(3000, 11), window(1000, 12));
        let params = BoosterParams {
            max_iterations: 60,
            max_depth: 3,
            early_stopping_rounds: 10,
            ..BoosterParams::default()
        };
        let prepared = ModelArtifact::prepare(&train, Some(&valid), &params, None).unwrap();
        let one = ModelArtifact::fit_prepared(&prepared, &params, false).unwrap();
        let all = ModelArtifact::fit_prepared(&prepared, &params, true).unwrap();
        assert!(one.iterations > 5, "{} trees", one.iterations);
        assert_eq!(one.to_bytes(), all.to_bytes());
        assert_eq!(
            one.to_bytes(),
            ModelArtifact::fit(&train, &valid, &params)
                .unwrap()
                .to_bytes()
        );
        // Encodings belong to the prepared windows: other settings are refused.
        let other = BoosterParams {
            encoding_smoothing: 5.0,
            ..params
        };
        assert!(ModelArtifact::fit_prepared(&prepared, &other, true).is_err());
    }

    #[test]
    fn the_batch_predictor_gives_the_in_memory_numbers() {
        let train = window(3000, 11);
        let params = BoosterParams {
            max_iterations: 40,
            max_depth: 4,
            ..BoosterParams::default()
        };
        let model = ModelArtifact::fit_fixed(&train, &params, None, true).unwrap();
        // 1,000 rows: 15 full blocks and a partial one; a few countries missing.
        let mut rows = window(1000, 13);
        for (i, c) in rows
            .categorical
            .get_mut("country")
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            if i % 97 == 0 {
                *c = None;
            }
        }
        let want = model.predict(&rows).unwrap();
        // age as integers, basket_value as floats with nulls where the table has NaN, country as
        // dictionary-free text: the column types a features partition has.
        let age = Int64Array::from_iter_values(rows.numeric["age"].iter().map(|v| *v as i64));
        let basket: Float64Array = rows.numeric["basket_value"]
            .iter()
            .map(|v| (!v.is_nan()).then_some(*v))
            .collect();
        assert!(basket.null_count() > 50);
        let country = arrow::array::StringArray::from(rows.categorical["country"].clone());
        let batch = RecordBatch::try_from_iter([
            ("age", Arc::new(age) as ArrayRef),
            ("basket_value", Arc::new(basket) as ArrayRef),
            ("country", Arc::new(country) as ArrayRef),
        ])
        .unwrap();
        let predictor = model.predictor().unwrap();
        let got = predictor.predict_batch(&batch).unwrap();
        assert_eq!(got, want);
        // Shapley values: every row's sum is its log-odds; a feature no tree uses adds nothing.
        let log_odds = predictor.log_odds_batch(&batch).unwrap();
        let c = predictor.contributions_batch(&batch).unwrap();
        assert_eq!(c.rows(), 1000);
        for (i, l) in log_odds.iter().enumerate() {
            assert!((c.log_odds(i) - l).abs() < 1e-6, "row {i}");
            assert_eq!(sigmoid(*l), want[i]);
        }
        assert!((0..1000).any(|i| c.row(i).iter().all(|v| *v != 0.0)));
        // A numeric column of text is refused with its name.
        let text = RecordBatch::try_from_iter([
            (
                "age",
                Arc::new(arrow::array::StringArray::from(vec!["x"; 3])) as ArrayRef,
            ),
            (
                "basket_value",
                Arc::new(Float64Array::from(vec![1.0; 3])) as ArrayRef,
            ),
            (
                "country",
                Arc::new(arrow::array::StringArray::from(vec!["Spain"; 3])) as ArrayRef,
            ),
        ])
        .unwrap();
        let e = model.predictor().unwrap().predict_batch(&text).unwrap_err();
        assert!(e.to_string().contains("\"age\""), "{e}");
    }

    #[test]
    fn a_fixed_fit_grows_exactly_the_trees_asked_for() {
        let train = window(3000, 11);
        let params = BoosterParams {
            max_iterations: 17,
            max_depth: 3,
            ..BoosterParams::default()
        };
        let a = ModelArtifact::fit_fixed(&train, &params, None, true).unwrap();
        assert_eq!(a.iterations, 17);
        let again = ModelArtifact::fit_fixed(&train, &params, None, false).unwrap();
        assert_eq!(a.to_bytes(), again.to_bytes());
        let p = a.predict(&train).unwrap();
        assert_eq!(p.len(), train.len());
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
