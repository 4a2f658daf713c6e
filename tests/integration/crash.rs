//! Crash safety: workers killed with SIGKILL at random points never leave a visible partial partition.
//!
//! Also: several run dates running at once on one data root give the same bytes as one by one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use repurchase_calibrate::champion::ChampionPolicy;
use repurchase_core::hash::SplitMix64;
use repurchase_core::manifest::sha256_hex;
use repurchase_core::schema::Table;
use repurchase_core::{CoreError, DataRoot, Dataset, Manifest, RunDate, StoreConfig};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::BoosterParams;

use crate::support::{binary, date, signal_source};

/// Every file under `dir`, by path relative to it. Files whose name holds `#` are the local
/// store's staging files of an interrupted upload: never listed by a manifest, never read; they
/// are returned apart. The stage locks under `_locks/` are not data and are left out: a killed
/// worker leaves its lock behind until its lease ends or its retry (same owner) takes it over.
fn snapshot(dir: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut staged = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel.starts_with("_locks/") {
                    continue;
                }
                if rel.contains('#') {
                    staged.push(rel);
                } else {
                    files.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    (files, staged)
}

fn restore(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    for (rel, bytes) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// The dataset and run date of a partition folder (relative to the data root), if it is one.
fn partition_of(rel: &str) -> Option<(Dataset, RunDate)> {
    let parts: Vec<&str> = rel.split('/').collect();
    let d = |s: &str| Dataset::parse_partition_dir(s);
    match parts.as_slice() {
        ["raw", t, p] => Some((Dataset::Raw(t.parse::<Table>().ok()?), d(p)?)),
        ["features", "train", p] => Some((Dataset::FeaturesTrain, d(p)?)),
        ["features", "score", p] => Some((Dataset::FeaturesScore, d(p)?)),
        ["models", p] => Some((Dataset::Model, d(p)?)),
        ["models", p, "calibration"] => Some((Dataset::Calibration, d(p)?)),
        ["scores", p] => Some((Dataset::Scores, d(p)?)),
        ["monitoring", p] => Some((Dataset::Monitoring, d(p)?)),
        _ => None,
    }
}

/// Every partition folder under `dir` is either published with every listed file present, of the
/// listed size and checksum, or unpublished and refused by readers. Returns (published,
/// unpublished) partition counts.
async fn assert_no_partial_partition(dir: &Path, context: &str) -> (usize, usize) {
    let root = DataRoot::open(&dir.to_string_lossy(), &StoreConfig::default()).unwrap();
    let mut dirs = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                stack.push(p);
            }
        }
    }
    let (mut published, mut unpublished) = (0, 0);
    for rel in dirs {
        let Some((dataset, run_date)) = partition_of(&rel) else {
            continue;
        };
        let manifest_file = dir.join(&rel).join("_manifest.json");
        match Manifest::read(&root, dataset, run_date).await {
            Ok((m, _)) => {
                assert!(manifest_file.exists(), "{context}: {rel}");
                for f in &m.files {
                    let p = dir.join(&rel).join(&f.name);
                    let bytes = std::fs::read(&p).unwrap_or_else(|e| {
                        panic!("{context}: {rel} lists {} which is missing: {e}", f.name)
                    });
                    assert_eq!(
                        bytes.len() as u64,
                        f.bytes,
                        "{context}: {rel}/{} size",
                        f.name
                    );
                    assert_eq!(
                        sha256_hex(&bytes),
                        f.sha256,
                        "{context}: {rel}/{} sha256",
                        f.name
                    );
                }
                published += 1;
            }
            Err(CoreError::NotPublished { .. }) => {
                assert!(!manifest_file.exists(), "{context}: {rel}");
                unpublished += 1;
            }
            Err(e) => panic!("{context}: {rel}: manifest unreadable: {e}"),
        }
    }
    (published, unpublished)
}

/// Writes a generated source of `users` users from `seed`, ending at `end_date`, into `out`
/// through the `repurchase generate` binary.
fn generate_with_cli(users: &str, seed: &str, end_date: &str, out: &Path) {
    let generated = Command::new(binary("repurchase"))
        .args([
            "generate",
            "--users",
            users,
            "--seed",
            seed,
            "--end-date",
            end_date,
        ])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "generate: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
}

fn worker(name: &str, args: &[String], lake: &Path, run_date: &str) -> Command {
    let mut cmd = Command::new(binary(name));
    cmd.args(args)
        .args(["--run-date", run_date, "--data-root"])
        .arg(lake)
        .env_remove("RUST_LOG")
        .env("REPURCHASE_LOG_FORMAT", "json")
        // One owner for a worker and its reruns, as the DAG passes one per task instance: a rerun
        // takes over the lock its killed predecessor left.
        .env("REPURCHASE_LOCK_OWNER", format!("crash-test/{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn run_to_completion(name: &str, args: &[String], lake: &Path, run_date: &str) -> Duration {
    let t = Instant::now();
    let out = worker(name, args, lake, run_date).output().unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

#[tokio::test]
async fn sigkill_at_random_points_never_exposes_a_partial_partition() {
    const RUN_DATE: &str = "2025-06-30";
    const TRIALS_PER_WORKER: u64 = 8;
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source");
    let lake = tmp.path().join("lake");
    generate_with_cli("4000", "23", RUN_DATE, &src);
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let stages: Vec<(&str, Vec<String>)> = vec![
        ("extract", s(&["--source", src.to_str().unwrap()])),
        ("build-features", vec![]),
        ("train", s(&["--valid-days", "180", "--test-days", "180"])),
        ("calibrate", vec![]),
        ("score", vec![]),
    ];

    // Reference: the chain run once cleanly; `states[i]` is the data root before stage i.
    std::fs::create_dir_all(&lake).unwrap();
    let mut states = vec![snapshot(&lake).0];
    let mut durations = Vec::new();
    for (name, args) in &stages {
        durations.push(run_to_completion(name, args, &lake, RUN_DATE));
        let (files, staged) = snapshot(&lake);
        assert!(
            staged.is_empty(),
            "clean run left staging files: {staged:?}"
        );
        states.push(files);
    }
    assert_no_partial_partition(&lake, "reference").await;

    // Each worker is killed (a) writing its partitions fresh, from the state before it, and (b)
    // rerunning over a date whose whole chain is published (it unpublishes and replaces its own
    // partitions; a rerun of train also removes the calibration nested under its folder).
    let last = states.last().unwrap().clone();
    let mut rng = SplitMix64::new(0x5eed_c0de);
    let (mut before, mut mid, mut after, mut unpublished, mut leftover_staged) = (0, 0, 0, 0, 0);
    let mut trials = 0;
    let mut staged_after_rerun = Vec::new();
    for (i, (name, args)) in stages.iter().enumerate() {
        // Folders of the partitions this worker writes.
        let outputs: Vec<String> = states[i + 1]
            .keys()
            .filter(|k| k.ends_with("/_manifest.json") && !states[i].contains_key(*k))
            .map(|k| k.trim_end_matches("/_manifest.json").to_string())
            .collect();
        assert!(!outputs.is_empty(), "{name} wrote no partition");
        let owned = |k: &str| outputs.iter().any(|o| k.starts_with(&format!("{o}/")));
        let fresh_expected = states[i + 1].clone();
        let replace_expected: BTreeMap<String, Vec<u8>> = last
            .iter()
            .filter(|(k, _)| !owned(k) || fresh_expected.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let scenarios = [
            ("fresh", &states[i], &fresh_expected),
            ("replace", &last, &replace_expected),
        ];
        // Kill points are drawn between the latest kill that found nothing changed yet and the
        // earliest one that came after the worker had exited (at first: 0 and the clean duration,
        // process start-up included), so the trials close in on the window where partitions are
        // being replaced and published.
        let (mut lo_us, mut hi_us) = (0, durations[i].as_micros() as u64);
        for trial in 0..TRIALS_PER_WORKER {
            trials += 1;
            let (scenario, upstream, expected) = scenarios[(trial % 3 == 2) as usize];
            restore(&lake, upstream);
            if lo_us + 1_000 >= hi_us {
                lo_us = hi_us / 2;
            }
            let delay = Duration::from_micros(lo_us + rng.next_u64() % (hi_us - lo_us).max(1));
            let mut child = worker(name, args, &lake, RUN_DATE).spawn().unwrap();
            std::thread::sleep(delay);
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            let context = format!("{name} trial {trial} ({scenario}) killed after {delay:?}");

            let (files, staged) = snapshot(&lake);
            leftover_staged += staged.len();
            // Exited before the kill; killed with nothing changed yet (or, when the rerun writes
            // the same bytes, with all of it rewritten); killed with its partitions in between.
            if status.success() {
                after += 1;
                hi_us = hi_us.min(delay.as_micros() as u64);
            } else if files == *upstream && staged.is_empty() {
                before += 1;
                lo_us = lo_us.max(delay.as_micros() as u64);
            } else {
                mid += 1;
                if outputs
                    .iter()
                    .any(|o| !files.contains_key(&format!("{o}/_manifest.json")))
                {
                    unpublished += 1;
                }
            }
            assert_no_partial_partition(&lake, &context).await;
            // Partitions of other workers are never touched.
            for (k, v) in upstream.iter().filter(|(k, _)| !owned(k)) {
                assert!(files.get(k) == Some(v), "{context}: {k} changed");
            }

            // A rerun succeeds and writes exactly the reference bytes.
            run_to_completion(name, args, &lake, RUN_DATE);
            let (files, staged) = snapshot(&lake);
            staged_after_rerun.extend(staged);
            assert_eq!(
                files.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "{context}: files after rerun"
            );
            for (k, v) in expected {
                assert!(files[k] == *v, "{context}: {k} differs after rerun");
            }
            assert_no_partial_partition(&lake, &context).await;
        }
    }
    let durations: Vec<String> = stages
        .iter()
        .zip(&durations)
        .map(|((n, _), d)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    println!(
        "crash: {trials} SIGKILL trials ({before} killed before changing anything, {mid} killed mid-way \
         ({unpublished} leaving an output unpublished), {after} exited before the kill); \
         {leftover_staged} interrupted-upload staging files seen, still there after the rerun: \
         {staged_after_rerun:?}; clean run {}; total {:.1}s",
        durations.join(", "),
        started.elapsed().as_secs_f64()
    );
    assert!(trials >= 20);
}

/// extract → build-features → train → calibrate → score for one run date, scoring with the model
/// of `model_date`.
async fn run_date_chain(source: DataRoot, lake: DataRoot, d: RunDate, model_date: RunDate) {
    repurchase_extract::extract(&lake, d, &Source::Files(source))
        .await
        .expect("extract");
    repurchase_features::build(
        &lake,
        d,
        &repurchase_features::BuildOptions::new(AnchorMode::FirstOrder, 60),
    )
    .await
    .expect("build-features");
    repurchase_train::train(
        &lake,
        d,
        &repurchase_train::TrainConfig::new(180, 180, &BoosterParams::default()),
    )
    .await
    .expect("train");
    // Each date competes with the champion named by model_date's calibration, not with whichever
    // of its neighbours happened to publish first: the decision must not depend on timing.
    let policy = ChampionPolicy {
        champion_from: (d > model_date).then_some(model_date),
        ..ChampionPolicy::default()
    };
    repurchase_calibrate::calibrate(&lake, d, &policy)
        .await
        .expect("calibrate");
    repurchase_score::score(
        &lake,
        d,
        &repurchase_score::ScoreOptions {
            model_date: Some(model_date),
            // The same for the drift report's previous run.
            drift: repurchase_score::DriftOptions {
                previous: (d > model_date).then_some(model_date),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("score");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seven_run_dates_in_parallel_match_one_by_one() {
    let started = Instant::now();
    let source = signal_source(5000, 31, "2025-06-30").await;
    let model_date = date("2025-06-16");
    let dates: Vec<RunDate> = (24..=30).map(|d| date(&format!("2025-06-{d}"))).collect();

    let tmp = tempfile::tempdir().unwrap();
    let (par_dir, seq_dir): (PathBuf, PathBuf) = (tmp.path().join("par"), tmp.path().join("seq"));
    let open = |p: &Path| DataRoot::open(&p.to_string_lossy(), &StoreConfig::default()).unwrap();
    let (par, seq) = (open(&par_dir), open(&seq_dir));

    // The model both roots score with, trained once for an earlier date.
    run_date_chain(source.clone(), seq.clone(), model_date, model_date).await;
    restore(&par_dir, &snapshot(&seq_dir).0);

    let t = Instant::now();
    let tasks: Vec<_> = dates
        .iter()
        .map(|&d| tokio::spawn(run_date_chain(source.clone(), par.clone(), d, model_date)))
        .collect();
    for task in tasks {
        task.await.expect("run date task");
    }
    let parallel = t.elapsed();
    let t = Instant::now();
    for &d in &dates {
        run_date_chain(source.clone(), seq.clone(), d, model_date).await;
    }
    let sequential = t.elapsed();

    let (par_files, par_staged) = snapshot(&par_dir);
    let (seq_files, _) = snapshot(&seq_dir);
    assert!(par_staged.is_empty(), "{par_staged:?}");
    assert_eq!(
        par_files.keys().collect::<Vec<_>>(),
        seq_files.keys().collect::<Vec<_>>()
    );
    for (k, v) in &seq_files {
        assert!(
            par_files[k] == *v,
            "{k} differs between parallel and sequential runs"
        );
    }
    for &d in &dates {
        assert!(
            par_files.contains_key(&format!("scores/run_date={d}/_manifest.json")),
            "no scores for {d}"
        );
    }
    let (published, unpublished) = assert_no_partial_partition(&par_dir, "parallel").await;
    assert_eq!(unpublished, 0);
    println!(
        "concurrency: {} run dates, {} files ({published} partitions) identical; parallel {:.2}s, \
         sequential {:.2}s, total {:.1}s",
        dates.len(),
        par_files.len(),
        parallel.as_secs_f64(),
        sequential.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// The `source` parameter of each raw manifest of `run_date`, by table.
async fn raw_sources(lake: &Path, run_date: RunDate) -> BTreeMap<String, String> {
    let root = DataRoot::open(&lake.to_string_lossy(), &StoreConfig::default()).unwrap();
    let mut out = BTreeMap::new();
    for t in Table::ALL {
        let (m, _) = Manifest::read(&root, Dataset::Raw(t), run_date)
            .await
            .unwrap();
        out.insert(t.name().to_string(), m.parameters["source"].to_string());
    }
    out
}

/// Writes a lock of `owner` for extract on `run_date` by hand, its lease ending `expires_in`
/// from now (negative: already over), as a run killed mid-way leaves it.
fn leave_lock(lake: &Path, run_date: RunDate, owner: &str, expires_in: chrono::TimeDelta) {
    let now = chrono::Utc::now();
    let record = repurchase_core::lock::LockRecord {
        name: "extract".into(),
        run_date,
        owner: owner.into(),
        token: "f".repeat(32),
        acquired_at: (now - chrono::TimeDelta::hours(1)).to_rfc3339(),
        expires_at: (now + expires_in).to_rfc3339(),
        code_version: "test".into(),
    };
    let path = lake.join(repurchase_core::lock::lock_path("extract", run_date));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

/// Issue 16 case 5: two runs of one stage for one date started together (extracts of sources A
/// and B): the second is refused with exit 75 naming the first (or, had the first already
/// finished, runs after it), never interleaved: all seven raw tables come from one source with
/// intact checksums. A lock left by a dead run of another owner refuses runs until its lease
/// ends; the same owner (a retry of the task) or any run after the lease takes it over.
#[tokio::test]
async fn two_runs_of_one_stage_for_one_date_never_interleave() {
    const RUN_DATE: &str = "2025-06-30";
    let run_date = date(RUN_DATE);
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let sources: Vec<PathBuf> = [("a", "11"), ("b", "12")]
        .iter()
        .map(|(name, seed)| {
            let dir = tmp.path().join(name);
            generate_with_cli("2000", seed, RUN_DATE, &dir);
            dir
        })
        .collect();
    let extract = |src: &Path| {
        let mut cmd = worker("extract", &[], &lake, RUN_DATE);
        cmd.arg("--source")
            .arg(src)
            .env_remove("REPURCHASE_LOCK_OWNER");
        cmd
    };
    let lock_file = lake.join(repurchase_core::lock::lock_path("extract", run_date));
    let mut refused = 0;
    for trial in 0..4 {
        let (first, second) = if trial % 2 == 0 { (0, 1) } else { (1, 0) };
        let a = extract(&sources[first]).spawn().unwrap();
        let b = extract(&sources[second]).spawn().unwrap();
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
        let context = format!("trial {trial}: exit codes {codes:?}");
        assert!(codes.contains(&Some(0)), "{context}");
        let mut winner = None;
        for (o, src) in outs.iter().zip([first, second]) {
            let err = String::from_utf8_lossy(&o.stderr);
            match o.status.code() {
                Some(0) => winner = Some(src),
                Some(75) => {
                    refused += 1;
                    assert!(
                        err.contains("another extract run for 2025-06-30 is going on")
                            && err.contains("held by")
                            && err.contains("_locks/extract/run_date=2025-06-30.json"),
                        "{context}: {err}"
                    );
                }
                _ => panic!("{context}: {err}"),
            }
        }
        assert_no_partial_partition(&lake, &context).await;
        let by_table = raw_sources(&lake, run_date).await;
        let named: std::collections::BTreeSet<&String> = by_table.values().collect();
        assert_eq!(
            named.len(),
            1,
            "{context}: tables from two runs: {by_table:?}"
        );
        if codes.contains(&Some(75)) {
            let src = sources[winner.unwrap()].to_string_lossy().into_owned();
            assert!(named.iter().next().unwrap().contains(&src), "{context}");
        }
        assert!(!lock_file.exists(), "{context}: lock left behind");
    }
    assert!(refused >= 1, "two extracts started together never met");

    // A dead run's lock with a live lease: refused, and nothing is touched.
    let before = snapshot(&lake).0;
    leave_lock(
        &lake,
        run_date,
        "airflow:dead-try",
        chrono::TimeDelta::minutes(30),
    );
    let out = extract(&sources[1]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("held by airflow:dead-try"), "{err}");
    assert!(
        snapshot(&lake).0 == before,
        "a refused run changed the lake"
    );
    // Its retry (same owner) takes it over at once.
    let out = extract(&sources[1])
        .env("REPURCHASE_LOCK_OWNER", "airflow:dead-try")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lock_file.exists());
    // A lease that has run out is taken over by anyone.
    leave_lock(
        &lake,
        run_date,
        "airflow:long-gone",
        chrono::TimeDelta::seconds(-1),
    );
    let out = extract(&sources[0]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("lock taken over") && err.contains("its lease ran out"),
        "{err}"
    );
    assert!(!lock_file.exists());
    let src = sources[0].to_string_lossy().into_owned();
    assert!(
        raw_sources(&lake, run_date)
            .await
            .values()
            .all(|s| s.contains(&src))
    );
}
