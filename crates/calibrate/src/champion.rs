//! Champion/challenger: which calibrated model `score` serves.
//!
//! Every calibration decides, in its `promotion.json`, which model is champion from its run date
//! on. Procedures are compared, each through its evaluated model (the served models are refitted
//! on every labelled anchor, so no labelled row is unseen by them): the challenger's calibrated
//! test-window predictions against each of the last N champions' on the same rows, the
//! challenger's test window restricted to anchors that champion never saw (at or after the start
//! of its own test window, so neither its trees, its early stopping nor its calibrator were
//! fitted on them). The challenger replaces the current champion only if
//!
//! - its held-out AUC is not below an absolute floor (the upper end of its bootstrap interval
//!   reaches the floor), and
//! - against none of those champions it is shown worse, by a paired bootstrap interval
//!   (customers resampled, both models scored on each resample): worse in AUC when the
//!   difference's interval lies below 0 and reaches below `−margin`, worse in calibration when
//!   the Brier difference's interval lies above 0 and reaches above `brier_margin` × the
//!   champion's Brier. Within the margins is non-inferior; an interval that reaches beyond its
//!   margin and across 0 is inconclusive, and the fresher model is served unless
//!   `keep_when_inconclusive` asks for non-inferiority to be shown. On TheLook-scale first-order
//!   data (about 70 repurchases per test window) the AUC interval spans ±0.05: strict
//!   non-inferiority at 0.02 kept one champion for five weeks while the repurchase rate rose, and
//!   the served probabilities fell to 0.72× the observed rate (rolling backtest, 2025-06-30).
//!
//! Comparing with several past champions, not only the current one, means a chain of slightly
//! worse challengers cannot walk the served quality down one margin at a time: it is kept out
//! once its loss against one of them is shown (on data too thin to show it, the chain is as
//! good as the data can tell). A champion that
//! cannot score the current features stops the decision (exit 2) unless that is accepted
//! explicitly. The report and the decision say why.
//!
//! The current champion is the one named by the latest calibration before the run date (or by an
//! explicitly given one). Decisions chain, so calibrations must run in date order; the DAG's
//! `max_active_runs=1` keeps them so, and a backfill that runs dates concurrently can pin the
//! predecessor with `--champion-from`.

use repurchase_core::layout::Dataset;
use repurchase_core::manifest::InputRef;
use repurchase_core::{CoreError, DataRoot, RunDate};

use crate::{CalibrateError, Result};
use repurchase_contracts::card::read_card;
use repurchase_contracts::champion::{decision_at, latest_calibration, model_dates_newest_first};
use repurchase_contracts::{Comparison, ModelRef, Promotion, Verdict, files};
use repurchase_model::ModelArtifact;
use repurchase_model::calibration::Calibrator;
use repurchase_model::io::{read_artifact, read_json_artifact};
use repurchase_model::metrics::{brier, paired_bootstrap, roc_auc};
use repurchase_model::table::FeatureTable;

/// Default margin in AUC: a challenger whose paired interval against a champion lies below 0 and
/// reaches below −0.02 is shown worse and kept out. On a test window of a few hundred anchors the
/// paired interval of two retrains of the same procedure spans about ±0.03 (the gate test); on
/// TheLook-scale first orders (about 70 repurchases per window) about ±0.05.
pub const DEFAULT_MARGIN: f64 = 0.02;
/// Default Brier allowance, as a share of the champion's Brier score.
pub const DEFAULT_BRIER_MARGIN: f64 = 0.05;
/// Default number of past champions compared with.
pub const DEFAULT_HISTORY: u32 = 4;
/// Default absolute floor of the held-out AUC: it refuses a model that ranks no better than
/// chance (a constant model scores 0.5), not a weak one: on TheLook-like data, where the best
/// possible AUC is about 0.7, honest models measured 0.549 on one test window.
pub const DEFAULT_AUC_FLOOR: f64 = 0.52;

/// How a calibration decides promotion.
#[derive(Debug, Clone, PartialEq)]
pub struct ChampionPolicy {
    /// Largest AUC loss against a champion that the bootstrap interval may reach.
    pub margin: f64,
    /// Largest Brier increase the interval may reach, as a share of the champion's Brier.
    pub brier_margin: f64,
    /// Past champions compared with (the current one and those before it).
    pub history: usize,
    /// Held-out AUC a challenger needs at least.
    pub auc_floor: f64,
    /// Go on when a past champion cannot score the current features (skipping it).
    pub accept_incomparable: bool,
    /// Keep the champion when a comparison is [`Verdict::Inconclusive`] (strict
    /// non-inferiority: it must be shown).
    pub keep_when_inconclusive: bool,
    /// Calibration whose decision names the current champion; default the latest one before
    /// the run date.
    pub champion_from: Option<RunDate>,
}

impl Default for ChampionPolicy {
    fn default() -> Self {
        ChampionPolicy {
            margin: DEFAULT_MARGIN,
            brier_margin: DEFAULT_BRIER_MARGIN,
            history: DEFAULT_HISTORY as usize,
            auc_floor: DEFAULT_AUC_FLOOR,
            accept_incomparable: false,
            keep_when_inconclusive: false,
            champion_from: None,
        }
    }
}

/// The champion a calibration of `run_date` competes against, and the manifest naming it.
pub async fn current_champion(
    root: &DataRoot,
    run_date: RunDate,
    policy: &ChampionPolicy,
) -> Result<Option<(RunDate, ModelRef, InputRef)>> {
    let decided = match policy.champion_from {
        Some(d) if d >= run_date => {
            return Err(CalibrateError::ChampionFromTheFuture {
                champion_from: d,
                run_date,
            });
        }
        Some(d) => Some(d),
        None => latest_calibration(root, run_date, false).await?,
    };
    let Some(decided) = decided else {
        return Ok(None);
    };
    let (champion, input) = decision_at(root, decided).await?;
    Ok(Some((decided, champion, input)))
}

/// The challenger's calibrated test-window predictions, for the comparison.
pub struct Challenger<'a> {
    /// The model calibrated today.
    pub model: ModelRef,
    /// The test window's anchors.
    pub test: &'a FeatureTable,
    /// Its calibrated probabilities for them.
    pub probs: &'a [f64],
    /// Their outcomes.
    pub labels: &'a [bool],
    /// Bootstrap 95% interval of the held-out AUC, customers resampled (`metrics.json`'s).
    pub auc_ci: Option<(f64, f64)>,
}

/// Fewest shared rows and repurchases for a comparison with one champion to count.
const MIN_COMPARED_ROWS: usize = 100;
const MIN_COMPARED_POSITIVES: usize = 10;
const BOOTSTRAP_RESAMPLES: usize = 1000;

/// The champions of the last `history` decisions before the run date, newest first, each with
/// the date of the decision that named it (distinct models only).
async fn recent_champions(
    root: &DataRoot,
    current: (RunDate, ModelRef, InputRef),
    history: usize,
) -> Result<Vec<(RunDate, ModelRef, InputRef)>> {
    let dates = model_dates_newest_first(root, current.0, false).await?;
    let mut out = vec![current];
    for d in dates {
        if out.len() >= history {
            break;
        }
        if !root.exists(&Dataset::Calibration.manifest_path(d)).await? {
            continue;
        }
        let (champion, input) = decision_at(root, d).await?;
        if out.iter().all(|(_, c, _)| *c != champion) {
            out.push((d, champion, input));
        }
    }
    Ok(out)
}

/// The champion's evaluated model and its calibrator (what its procedure was measured with),
/// with the manifests read.
async fn evaluated_model(
    root: &DataRoot,
    champion: &ModelRef,
) -> Result<(ModelArtifact, Calibrator, i64, Vec<InputRef>)> {
    let card = read_card(root, champion.model_date).await?;
    let (model_bytes, _, model_input) = read_artifact(
        root,
        Dataset::Model,
        champion.model_date,
        files::EVALUATION_MODEL,
    )
    .await?;
    let (cal, cal_input) = read_json_artifact(
        root,
        Dataset::Calibration,
        champion.model_date,
        files::EVALUATION_CALIBRATOR,
    )
    .await?;
    Ok((
        ModelArtifact::from_bytes(&model_bytes)?,
        cal,
        card.windows.test_start_us,
        vec![model_input, cal_input],
    ))
}

/// Compares the challenger with one champion on the challenger's test rows that the champion's
/// evaluated model never saw in any fitting step (at or after its own test window's start).
fn compare(
    policy: &ChampionPolicy,
    challenger: &Challenger<'_>,
    champion: &ModelRef,
    decided_by: RunDate,
    (model, cal, test_start_us): (&ModelArtifact, &Calibrator, i64),
) -> std::result::Result<Comparison, String> {
    let unseen: Vec<usize> = (0..challenger.test.len())
        .filter(|&i| challenger.test.anchor_us[i] >= test_start_us)
        .collect();
    let rows = challenger.test.take(&unseen);
    let labels: Vec<bool> = unseen.iter().map(|&i| challenger.labels[i]).collect();
    let ours: Vec<f64> = unseen.iter().map(|&i| challenger.probs[i]).collect();
    let theirs = cal.predict_all(&model.predict(&rows).map_err(|e| e.to_string())?);
    Ok(judge(
        policy,
        champion,
        decided_by,
        Shared {
            customers: &rows.user_id,
            labels: &labels,
            ours: &ours,
            theirs: &theirs,
        },
    ))
}

/// The rows a challenger and a champion are compared on, with both models' probabilities.
pub struct Shared<'a> {
    /// Each row's customer: the bootstrap draws customers.
    pub customers: &'a [i64],
    /// The outcomes.
    pub labels: &'a [bool],
    /// The challenger's probabilities.
    pub ours: &'a [f64],
    /// The champion's probabilities.
    pub theirs: &'a [f64],
}

/// The verdict of one comparison (see [`decide`]).
pub fn judge(
    policy: &ChampionPolicy,
    champion: &ModelRef,
    decided_by: RunDate,
    shared: Shared<'_>,
) -> Comparison {
    let Shared {
        customers,
        labels,
        ours,
        theirs,
    } = shared;
    let positives = labels.iter().filter(|y| **y).count();
    let mut c = Comparison {
        champion: champion.clone(),
        decided_by,
        rows: labels.len() as u64,
        positives: positives as u64,
        challenger_auc: roc_auc(ours, labels),
        champion_auc: roc_auc(theirs, labels),
        challenger_brier: brier(ours, labels),
        champion_brier: brier(theirs, labels),
        delta: None,
        verdict: Verdict::NonInferior,
        reason: String::new(),
    };
    if labels.len() < MIN_COMPARED_ROWS
        || positives < MIN_COMPARED_POSITIVES
        || positives == labels.len()
    {
        c.verdict = Verdict::NotComparable;
        c.reason = format!(
            "only {} shared anchors ({positives} repurchased); at least {MIN_COMPARED_ROWS} with {MIN_COMPARED_POSITIVES} repurchases are needed",
            labels.len()
        );
        return c;
    }
    let delta = paired_bootstrap(ours, theirs, labels, customers, BOOTSTRAP_RESAMPLES, 0);
    let brier_allowed = policy.brier_margin * c.champion_brier;
    c.reason = match (delta.auc, delta.brier) {
        (Some((auc_lo, auc_hi)), Some((brier_lo, brier_hi))) => {
            let auc_text = format!("AUC difference 95% CI [{auc_lo:+.4}, {auc_hi:+.4}]");
            let brier_text = format!(
                "Brier difference 95% CI [{brier_lo:+.5}, {brier_hi:+.5}] (allowed +{brier_allowed:.5})"
            );
            let auc_beyond = auc_lo < -policy.margin;
            let brier_beyond = brier_hi > brier_allowed;
            if auc_beyond && auc_hi < 0.0 {
                c.verdict = Verdict::Inferior;
                format!("{auc_text} is below 0 and reaches below -{}", policy.margin)
            } else if brier_beyond && brier_lo > 0.0 {
                c.verdict = Verdict::Inferior;
                format!("{brier_text} is above 0 and reaches above the allowance")
            } else if auc_beyond || brier_beyond {
                c.verdict = Verdict::Inconclusive;
                format!(
                    "inconclusive: {auc_text}, {brier_text}: an interval reaches beyond its \
                     margin and across 0"
                )
            } else {
                format!("{auc_text}, {brier_text}")
            }
        }
        _ => {
            c.verdict = Verdict::NotComparable;
            "no bootstrap resample held both classes".into()
        }
    };
    c.delta = Some(delta);
    c
}

/// Whether a comparison with this verdict keeps the champion.
fn keeps_champion(policy: &ChampionPolicy, verdict: Verdict) -> bool {
    match verdict {
        Verdict::Inferior => true,
        Verdict::Inconclusive => policy.keep_when_inconclusive,
        Verdict::NonInferior | Verdict::NotComparable => false,
    }
}

/// Decides promotion; returns the decision and the inputs it read (the champions' model and
/// calibration manifests) for the calibration's manifest.
///
/// The challenger is promoted when its held-out AUC's interval reaches the floor and it is
/// non-inferior to each of the last `history` champions it can be compared with: the lower end of
/// the paired bootstrap interval of the AUC difference above `−margin`, and the upper end of the
/// Brier difference below `brier_margin` × the champion's Brier. A champion that cannot score the
/// current features stops the decision (exit 2) unless `accept_incomparable`.
pub async fn decide(
    root: &DataRoot,
    challenger: Challenger<'_>,
    previous: Option<(RunDate, ModelRef, InputRef)>,
    policy: &ChampionPolicy,
) -> Result<(Promotion, Vec<InputRef>)> {
    let auc_all = roc_auc(challenger.probs, challenger.labels);
    let positives_all = challenger.labels.iter().filter(|y| **y).count() as u64;
    // Below the floor when even the interval's upper end is: on a test window with a few dozen
    // repurchases the point estimate of an honest weak model falls under 0.52 by chance (TheLook
    // first orders, 67 repurchases: 0.490, interval about ±0.07), and refusing it would leave
    // nothing served.
    let below_floor = match (auc_all, challenger.auc_ci) {
        (None, _) => true,
        (Some(_), Some((_, upper))) => upper < policy.auc_floor,
        (Some(a), None) => a < policy.auc_floor,
    };
    let floor_text = format!(
        "held-out AUC {}{} on {} anchors ({positives_all} repurchased), floor {} (refused when \
         the whole interval is below it)",
        auc_all.map_or("undefined".to_string(), |a| format!("{a:.4}")),
        challenger.auc_ci.map_or(String::new(), |(lo, hi)| format!(
            " (95% interval {lo:.4}–{hi:.4})"
        )),
        challenger.labels.len(),
        policy.auc_floor
    );
    let Some(current) = previous else {
        if below_floor {
            return Err(CalibrateError::Core(CoreError::QualityGate {
                stage: "calibrate",
                run_date: challenger.model.model_date.to_string(),
                context: "AUC floor, --promotion-auc-floor; no champion to keep serving".into(),
                failures: vec![format!(
                    "the first model {} is below the AUC floor ({floor_text}): check the features \
                     and the training data, or lower --promotion-auc-floor",
                    challenger.model.model_version
                )],
            }));
        }
        return Ok((
            Promotion {
                challenger: challenger.model.clone(),
                previous_champion: None,
                previous_decision: None,
                margin: policy.margin,
                compared_rows: challenger.labels.len() as u64,
                compared_positives: positives_all,
                challenger_auc: auc_all,
                champion_auc: None,
                comparisons: vec![],
                promoted: true,
                champion: challenger.model,
                reason: format!(
                    "first calibrated model: no champion to compare with; {floor_text}"
                ),
            },
            vec![],
        ));
    };
    let (decided, champion, _) = current.clone();
    let mut inputs = Vec::new();
    let mut comparisons = Vec::new();
    let mut skipped = Vec::new();
    for (decided_by, past, decision_input) in
        recent_champions(root, current, policy.history.max(1)).await?
    {
        if !inputs.contains(&decision_input) {
            inputs.push(decision_input);
        }
        let (model, cal, test_start, read) = evaluated_model(root, &past).await?;
        for i in read {
            if !inputs.contains(&i) {
                inputs.push(i);
            }
        }
        match compare(
            policy,
            &challenger,
            &past,
            decided_by,
            (&model, &cal, test_start),
        ) {
            Ok(c) => comparisons.push(c),
            Err(e) if policy.accept_incomparable => {
                skipped.push(format!(
                    "{} cannot score the current features ({e}); accepted",
                    past.model_version
                ));
            }
            Err(e) => {
                return Err(CalibrateError::IncomparableChampion {
                    champion: past.model_version.clone(),
                    decided_by,
                    run_date: challenger.model.model_date,
                    reason: e,
                });
            }
        }
    }
    let current_cmp = comparisons.iter().find(|c| c.champion == champion);
    let inferior: Vec<&Comparison> = comparisons
        .iter()
        .filter(|c| keeps_champion(policy, c.verdict))
        .collect();
    let inconclusive = comparisons
        .iter()
        .filter(|c| c.verdict == Verdict::Inconclusive)
        .count();
    let compared = comparisons
        .iter()
        .filter(|c| c.verdict != Verdict::NotComparable)
        .count();
    let promoted = !below_floor && inferior.is_empty();
    let mut reason = if below_floor {
        format!(
            "kept champion {}: the challenger is below the floor: {floor_text}",
            champion.model_version
        )
    } else if let Some(worst) = inferior.first() {
        format!(
            "kept champion {}: the challenger is worse than champion {} (decided by {}) on {} shared anchors ({} repurchased): {}",
            champion.model_version,
            worst.champion.model_version,
            worst.decided_by,
            worst.rows,
            worst.positives,
            worst.reason
        )
    } else {
        format!(
            "promoted: not worse than any of the last {} champions ({} shown non-inferior, \
             {inconclusive} inconclusive; margin {} AUC, {}× Brier); {floor_text}",
            comparisons.len() + skipped.len(),
            compared - inconclusive,
            policy.margin,
            policy.brier_margin
        )
    };
    for s in &skipped {
        reason.push_str(&format!("; {s}"));
    }
    Ok((
        Promotion {
            challenger: challenger.model.clone(),
            previous_champion: Some(champion.clone()),
            previous_decision: Some(decided),
            margin: policy.margin,
            compared_rows: current_cmp.map_or(0, |c| c.rows),
            compared_positives: current_cmp.map_or(0, |c| c.positives),
            challenger_auc: current_cmp.map_or(auc_all, |c| c.challenger_auc),
            champion_auc: current_cmp.and_then(|c| c.champion_auc),
            comparisons,
            promoted,
            champion: if promoted { challenger.model } else { champion },
            reason,
        },
        inputs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_core::hash::mix64;

    /// Uniform in [0, 1) from a key: the test's only randomness.
    fn u(key: u64) -> f64 {
        (mix64(key) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` customers with a true probability each and an outcome drawn from it.
    fn population(n: usize) -> (Vec<f64>, Vec<bool>, Vec<i64>) {
        let truth: Vec<f64> = (0..n).map(|i| 0.02 + 0.4 * u(i as u64).powi(3)).collect();
        let labels = truth
            .iter()
            .enumerate()
            .map(|(i, p)| u(1_000_000 + i as u64) < *p)
            .collect();
        (truth, labels, (0..n as i64).collect())
    }

    /// The truth blurred on the log-odds scale by noise of size `sd` (seeded by `seed`):
    /// more noise, worse ranking; the same noise, the same model.
    fn blurred(truth: &[f64], sd: f64, seed: u64) -> Vec<f64> {
        truth
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let logit = (p / (1.0 - p)).ln();
                let z = (u(seed * 7_919 + i as u64) - 0.5) * 3.46 * sd;
                1.0 / (1.0 + (-(logit + z)).exp())
            })
            .collect()
    }

    fn model(d: &str) -> ModelRef {
        ModelRef {
            model_date: d.parse().unwrap(),
            model_version: format!("{d}-x"),
        }
    }

    fn verdict(
        policy: &ChampionPolicy,
        ours: &[f64],
        theirs: &[f64],
        data: &(Vec<f64>, Vec<bool>, Vec<i64>),
    ) -> Comparison {
        judge(
            policy,
            &model("2025-01-01"),
            "2025-01-01".parse().unwrap(),
            Shared {
                customers: &data.2,
                labels: &data.1,
                ours,
                theirs,
            },
        )
    }

    #[test]
    fn a_chain_of_slightly_worse_models_cannot_walk_the_quality_down() {
        let data = population(20_000);
        let policy = ChampionPolicy {
            margin: 0.025,
            ..ChampionPolicy::default()
        };
        // A, then B a little worse than A, then C a little worse than B.
        let a = blurred(&data.0, 0.3, 1);
        let b = blurred(&data.0, 0.5, 1);
        let c = blurred(&data.0, 0.7, 1);
        let auc = |p: &[f64]| roc_auc(p, &data.1).unwrap();
        eprintln!("AUC A {:.4}, B {:.4}, C {:.4}", auc(&a), auc(&b), auc(&c));
        assert!(auc(&a) - auc(&b) < 0.02 && auc(&b) - auc(&c) < 0.02);
        assert!(auc(&a) - auc(&c) > 0.025);
        // Each step alone is within the margin: compared with its predecessor only (the old
        // gate), C is promoted.
        let brier_ok = ChampionPolicy {
            brier_margin: 1.0,
            ..policy.clone()
        };
        assert_eq!(
            verdict(&brier_ok, &b, &a, &data).verdict,
            Verdict::NonInferior
        );
        assert_eq!(
            verdict(&brier_ok, &c, &b, &data).verdict,
            Verdict::NonInferior
        );
        // Against the champion before it, the loss adds up and C is kept out.
        let vs_a = verdict(&brier_ok, &c, &a, &data);
        assert_eq!(vs_a.verdict, Verdict::Inferior, "{}", vs_a.reason);
    }

    #[test]
    fn a_point_difference_inside_the_noise_is_not_a_verdict() {
        // Two models of the same quality (independent noise), on few customers: the point
        // difference may exceed the margin either way, the interval says it is noise.
        let data = population(1_500);
        let policy = ChampionPolicy::default();
        let ours = blurred(&data.0, 0.8, 2);
        let theirs = blurred(&data.0, 0.8, 3);
        let c = verdict(&policy, &ours, &theirs, &data);
        let (lo, hi) = c.delta.as_ref().unwrap().auc.unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
        // Not shown worse: never a reason to keep the champion. Beyond the margin but across 0
        // is inconclusive, which keeps the champion only under strict non-inferiority.
        assert_ne!(c.verdict, Verdict::Inferior, "{}", c.reason);
        let brier_beyond =
            c.delta.as_ref().unwrap().brier.unwrap().1 > policy.brier_margin * c.champion_brier;
        assert_eq!(
            c.verdict == Verdict::Inconclusive,
            lo < -policy.margin || brier_beyond,
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_worse_calibration_is_caught_even_when_the_ranking_is_as_good() {
        let data = population(20_000);
        let theirs = blurred(&data.0, 0.3, 4);
        // The same ranking (a monotone transform), every probability pushed up.
        let ours: Vec<f64> = theirs.iter().map(|p| p.powf(0.6)).collect();
        let c = verdict(&ChampionPolicy::default(), &ours, &theirs, &data);
        assert_eq!(c.verdict, Verdict::Inferior);
        assert!(c.reason.contains("Brier"), "{}", c.reason);
        assert_eq!(c.challenger_auc, c.champion_auc);
    }

    #[test]
    fn only_a_shown_loss_keeps_the_champion_unless_strict() {
        let lenient = ChampionPolicy::default();
        let strict = ChampionPolicy {
            keep_when_inconclusive: true,
            ..ChampionPolicy::default()
        };
        for (verdict, by_default, strictly) in [
            (Verdict::Inferior, true, true),
            (Verdict::Inconclusive, false, true),
            (Verdict::NonInferior, false, false),
            (Verdict::NotComparable, false, false),
        ] {
            assert_eq!(keeps_champion(&lenient, verdict), by_default, "{verdict:?}");
            assert_eq!(keeps_champion(&strict, verdict), strictly, "{verdict:?}");
        }
        // A clear loss on few customers: the interval lies below 0 although it is wide.
        let data = population(1_500);
        let theirs = blurred(&data.0, 0.2, 6);
        let ours = blurred(&data.0, 2.5, 6);
        let c = verdict(&lenient, &ours, &theirs, &data);
        let (lo, hi) = c.delta.as_ref().unwrap().auc.unwrap();
        assert!(hi < 0.0 && lo < -lenient.margin, "[{lo}, {hi}]");
        assert_eq!(c.verdict, Verdict::Inferior, "{}", c.reason);
    }

    #[test]
    fn too_few_shared_rows_compare_nothing() {
        let data = population(60);
        let p = blurred(&data.0, 0.5, 5);
        let c = verdict(&ChampionPolicy::default(), &p, &p, &data);
        assert_eq!(c.verdict, Verdict::NotComparable);
    }
}
