//! MLflow tracking against a real `mlflow server` (started by scripts/test on 127.0.0.1 with a
//! SQLite backend and its artefact proxy): what `repurchase_tracking::track` logs is read back
//! through MLflow's own REST API — params, tags, metrics with their steps, artefacts byte for
//! byte, registry versions and the champion alias, which moves only on a promotion; a rerun finds
//! the same run and version; an unreachable server and one that never answers give `NotTracked`
//! with the reason, the silent one within the configured bound.

use std::time::{Duration, Instant};

use bytes::Bytes;
use repurchase_tracking::{Metric, Registration, RunLog, Tracking, TrackingConfig, track};
use serde_json::Value;

/// The tracking server scripts/test starts. Tests that need it fail, rather than skip, without it.
fn mlflow_uri() -> String {
    std::env::var("REPURCHASE_TEST_MLFLOW_URI").unwrap_or_else(|_| {
        panic!(
            "REPURCHASE_TEST_MLFLOW_URI is not set: run the tests with scripts/test, which starts \
             `mlflow server` from ~/.cache/repurchase/mlflow-venv on 127.0.0.1 (or start one and \
             export REPURCHASE_TEST_MLFLOW_URI=http://127.0.0.1:PORT)"
        )
    })
}

async fn get(url: &str) -> Value {
    let resp = reqwest::get(url).await.expect("MLflow answers");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["key"].as_str().unwrap().to_string(),
                        p["value"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn log(model_version: &str, auc: f64) -> RunLog {
    RunLog {
        model_version: model_version.into(),
        time_ms: 1_751_328_000_000,
        tags: vec![("repurchase.run_date".into(), "2025-06-30".into())],
        params: vec![
            ("max_depth".into(), "3".into()),
            ("valid_days".into(), "240".into()),
        ],
        metrics: vec![
            Metric {
                key: "test_roc_auc".into(),
                value: auc,
                step: 0,
            },
            Metric {
                key: "candidate_validation_log_loss".into(),
                value: 0.31,
                step: 2,
            },
            Metric {
                key: "candidate_validation_log_loss".into(),
                value: 0.30,
                step: 3,
            },
            // Not finite: not sent.
            Metric {
                key: "undefined".into(),
                value: f64::NAN,
                step: 0,
            },
        ],
        artifacts: vec![
            (
                "model_card.json".into(),
                Bytes::from(format!("{{\"model_version\":\"{model_version}\"}}")),
            ),
            (
                "model/model.json".into(),
                Bytes::from_static(b"{\"trees\":[]}"),
            ),
        ],
    }
}

fn calibration(promoted: bool) -> Registration {
    Registration {
        tags: vec![("repurchase.promoted".into(), promoted.to_string())],
        source_path: "model".into(),
        promoted,
    }
}

fn tracked(t: &Tracking) -> (String, String, Option<String>, Option<bool>) {
    match t {
        Tracking::Tracked {
            experiment_id,
            run_id,
            model_version,
            champion,
            ..
        } => (
            experiment_id.clone(),
            run_id.clone(),
            model_version.clone(),
            *champion,
        ),
        Tracking::NotTracked { reason, .. } => panic!("not tracked: {reason}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_metrics_artefacts_and_the_champion_alias_read_back_through_mlflows_api() {
    let uri = mlflow_uri();
    // Names of their own, so reruns against one server start from nothing.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let cfg = TrackingConfig {
        uri: uri.clone(),
        experiment: format!("test-{n}"),
        registered_model: format!("test-model-{n}"),
        timeout: Duration::from_secs(60),
    };

    // train: the run with params, tags, metrics and artefacts.
    let (experiment, run_a, version, champion) =
        tracked(&track(&cfg, &log("m-a", 0.75), None).await);
    assert_eq!((version, champion), (None, None));
    let run = get(&format!("{uri}/api/2.0/mlflow/runs/get?run_id={run_a}")).await;
    assert_eq!(run["run"]["info"]["status"], "FINISHED");
    assert_eq!(run["run"]["info"]["run_name"], "m-a");
    assert_eq!(
        pairs(&run["run"]["data"]["params"]),
        vec![
            ("max_depth".to_string(), "3".to_string()),
            ("valid_days".into(), "240".into())
        ]
    );
    let tags = pairs(&run["run"]["data"]["tags"]);
    assert!(tags.contains(&("repurchase.model_version".into(), "m-a".into())));
    assert!(tags.contains(&("repurchase.run_date".into(), "2025-06-30".into())));
    let metrics: Vec<(String, f64)> = run["run"]["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_string(),
                m["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        metrics.contains(&("test_roc_auc".into(), 0.75)),
        "{metrics:?}"
    );
    assert!(!metrics.iter().any(|(k, _)| k == "undefined"));
    let history = get(&format!(
        "{uri}/api/2.0/mlflow/metrics/get-history?run_id={run_a}&metric_key=candidate_validation_log_loss"
    ))
    .await;
    let mut steps: Vec<(i64, f64)> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["step"].as_i64().unwrap_or(0),
                m["value"].as_f64().unwrap(),
            )
        })
        .collect();
    steps.sort_by_key(|s| s.0);
    assert_eq!(steps, vec![(2, 0.31), (3, 0.30)]);
    let card = reqwest::get(format!(
        "{uri}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_a}/artifacts/model_card.json"
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert_eq!(&card[..], b"{\"model_version\":\"m-a\"}");
    let listed = get(&format!(
        "{uri}/api/2.0/mlflow/artifacts/list?run_id={run_a}&path=model"
    ))
    .await;
    assert_eq!(listed["files"][0]["path"], "model/model.json");

    // calibrate, promoted: the same run, version 1, the alias on it; a rerun changes nothing.
    for _ in 0..2 {
        let (_, run, version, champion) =
            tracked(&track(&cfg, &log("m-a", 0.75), Some(&calibration(true))).await);
        assert_eq!(
            (run.as_str(), version.as_deref(), champion),
            (run_a.as_str(), Some("1"), Some(true))
        );
    }
    // A second model not promoted: version 2, the alias stays on 1.
    let (_, run_b, version, champion) =
        tracked(&track(&cfg, &log("m-b", 0.70), Some(&calibration(false))).await);
    assert_ne!(run_b, run_a);
    assert_eq!((version.as_deref(), champion), (Some("2"), Some(false)));
    let alias = |cfg: TrackingConfig| {
        let uri = uri.clone();
        async move {
            get(&format!(
                "{uri}/api/2.0/mlflow/registered-models/alias?name={}&alias=champion",
                cfg.registered_model
            ))
            .await["model_version"]["version"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(alias(cfg.clone()).await, "1");
    // A registered model whose first version is not promoted has no champion yet.
    let fresh = TrackingConfig {
        registered_model: format!("test-unpromoted-{n}"),
        ..cfg.clone()
    };
    let (_, _, version, champion) =
        tracked(&track(&fresh, &log("m-b", 0.70), Some(&calibration(false))).await);
    assert_eq!((version.as_deref(), champion), (Some("1"), Some(false)));
    // A third, promoted: version 3 and the alias moves to it.
    let (_, _, version, champion) =
        tracked(&track(&cfg, &log("m-c", 0.78), Some(&calibration(true))).await);
    assert_eq!((version.as_deref(), champion), (Some("3"), Some(true)));
    assert_eq!(alias(cfg.clone()).await, "3");
    let versions = get(&format!(
        "{uri}/api/2.0/mlflow/model-versions/search?filter=name%3D%27{}%27",
        cfg.registered_model
    ))
    .await;
    let mut seen: Vec<(String, String)> = versions["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_string(),
                v["tags"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["key"] == "repurchase.promoted"))
                    .map(|t| t["value"].as_str().unwrap().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("1".to_string(), "true".to_string()),
            ("2".into(), "false".into()),
            ("3".into(), "true".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_silent_server_is_recorded_as_not_tracked_within_the_bound() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = TrackingConfig {
        uri: format!("http://user:secret@127.0.0.1:{port}"),
        experiment: "e".into(),
        registered_model: "m".into(),
        timeout: Duration::from_secs(5),
    };
    match track(&cfg, &log("m", 0.7), None).await {
        Tracking::NotTracked { server, reason } => {
            assert_eq!(
                server,
                format!("http://127.0.0.1:{port}"),
                "no credentials recorded"
            );
            assert!(reason.contains("experiments/get-by-name"), "{reason}");
        }
        t => panic!("{t:?}"),
    }

    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let cfg = TrackingConfig {
        uri: format!("http://{addr}"),
        timeout: Duration::from_secs(2),
        ..cfg
    };
    let started = Instant::now();
    let t = track(&cfg, &log("m", 0.7), Some(&calibration(true))).await;
    let took = started.elapsed();
    assert!(matches!(t, Tracking::NotTracked { .. }), "{t:?}");
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} with a 2 s bound"
    );
}
