//! The HTML pages in a real browser (the model report and the backtest's timeline page; the
//! rolling backtest's own page is loaded by `rolling.rs` with the helpers here): headless
//! Chromium (the Debian `chromium` package, installed by `scripts/setup-test-deps`) loads the
//! rendered page, and each test checks
//! that it exits cleanly, logs no console message, makes no network request, and that every plot
//! reached the DOM with its marks. A screenshot is kept for a human to look at.
//!
//! How problems are detected:
//! - Console: with `--enable-logging=stderr`, Chromium prints every console message of the page
//!   (any level, and uncaught exceptions) on stderr as `[…:INFO:CONSOLE:<line>] "<message>",
//!   source: <url> (<line>)`. The report has no script, so any such line is a failure.
//! - Network: `--log-net-log` writes every URL request as JSON. Requests made on behalf of the
//!   page carry the page's `file://` site in their network isolation key; the browser's own
//!   background traffic (update checks, network time) does not, and is ignored.
//!
//! One test renders a deliberately bad page and asserts that both detectors flag it, so a
//! silently broken detector cannot make the others pass.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use repurchase_core::hash::SplitMix64;
use repurchase_model::calibration::Calibrator;
use repurchase_model::explain::FeatureEffect;
use repurchase_model::metrics;
use repurchase_model::report::timeline::{self, Panel, Role, Series, Table, TimelineInput};
use repurchase_model::report::{PLOT_IDS, ReportInput, render};

/// A hung browser is killed after this long, so it cannot hang CI.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

const CURVE_PLOTS: [&str; 5] = ["roc", "pr", "reliability", "gains", "score-distribution"];

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir; kept after the test so the screenshot can be
/// inspected.
pub(crate) fn work_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "repurchase-{tag}-{}-{nanos}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// `REPURCHASE_CHROMIUM`, else `chromium` on PATH. Missing is a failure, not a skip.
fn chromium() -> PathBuf {
    const HELP: &str = "run scripts/setup-test-deps (installs the Debian package `chromium`) or \
                        set REPURCHASE_CHROMIUM to a Chromium binary";
    if let Some(path) = std::env::var_os("REPURCHASE_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "REPURCHASE_CHROMIUM={} does not exist: {HELP}",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no `chromium` on PATH: {HELP}"))
}

pub(crate) struct BrowserRun {
    pub(crate) status: ExitStatus,
    /// stdout: the serialised DOM after load (preceded by Chromium's screenshot notice).
    pub(crate) dom: String,
    pub(crate) stderr: String,
    pub(crate) netlog: String,
    pub(crate) screenshot: PathBuf,
}

/// Loads `page` in headless Chromium once: dumps the DOM, takes a 1000×4000 screenshot and
/// records the net log. Output goes to files (not pipes) so a large DOM cannot block the browser
/// while we poll it for the timeout.
pub(crate) fn run_browser(page: &Path, dir: &Path) -> BrowserRun {
    let screenshot = dir.join("screenshot.png");
    let netlog = dir.join("netlog.json");
    let stdout_path = dir.join("dom.html");
    let stderr_path = dir.join("stderr.log");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--window-size=1000,4000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start chromium ({e}); run scripts/setup-test-deps to install it")
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The browser profile is a few MB of caches nobody needs; the outputs stay.
    let _ = std::fs::remove_dir_all(dir.join("profile"));
    BrowserRun {
        status,
        dom: std::fs::read_to_string(&stdout_path).expect("read dom"),
        stderr: std::fs::read_to_string(&stderr_path).expect("read stderr"),
        netlog: std::fs::read_to_string(&netlog).unwrap_or_default(),
        screenshot,
    }
}

/// Console output of the page (messages of any level and uncaught exceptions).
pub(crate) fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// URLs the page itself requested, from Chromium's net log.
pub(crate) fn page_requests(netlog: &str) -> Vec<String> {
    let log: serde_json::Value = serde_json::from_str(netlog).unwrap_or_else(|e| {
        panic!(
            "net log is not JSON ({e}); first bytes: {:?}",
            &netlog[..netlog.len().min(200)]
        )
    });
    let mut urls: Vec<String> = log["events"]
        .as_array()
        .expect("net log has events")
        .iter()
        .filter_map(|event| {
            let params = &event["params"];
            let url = params["url"].as_str()?;
            let nik = params["network_isolation_key"].as_str().unwrap_or("");
            let site = params["site_for_cookies"].as_str().unwrap_or("");
            (nik.starts_with("file://") || site.contains("site=file://")).then(|| url.to_string())
        })
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

/// Loads `page` once with [`run_browser`] and asserts that it ran clean: Chromium exited
/// successfully, and the page (`what`, for the messages) wrote nothing to the console and requested
/// nothing.
pub(crate) fn run_clean(page: &Path, dir: &Path, what: &str) -> BrowserRun {
    let run = run_browser(page, dir);
    assert!(
        run.status.success(),
        "chromium exited with {}; stderr:\n{}",
        run.status,
        run.stderr
    );
    let console = console_lines(&run.stderr);
    assert!(
        console.is_empty(),
        "console output from {what}:\n{}",
        console.join("\n")
    );
    let requests = page_requests(&run.netlog);
    assert!(
        requests.is_empty(),
        "{what} made network requests: {requests:?}"
    );
    run
}

/// The markup of one `<svg id=…>` element in the dumped DOM.
pub(crate) fn svg_element<'d>(dom: &'d str, id: &str) -> &'d str {
    let start = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("svg #{id} missing from the rendered DOM"));
    let len = dom[start..].find("</svg>").expect("svg element closed");
    &dom[start..start + len]
}

/// Asserts that the run's screenshot is a 1000×4000 PNG with more in it than a blank page, and
/// prints where it is for a look by eye.
pub(crate) fn assert_screenshot(run: &BrowserRun, what: &str) {
    let png = std::fs::read(&run.screenshot).expect("screenshot written");
    assert!(png.len() > 20_000, "screenshot is only {} bytes", png.len());
    assert_eq!(png_size(&png), (1000, 4000));
    println!("{what} screenshot: {}", run.screenshot.display());
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The project's SplitMix64, so the synthetic data does not depend on any crate's RNG.
struct Rng(SplitMix64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0.next_f64()
    }

    /// Standard normal by Box–Muller.
    fn normal(&mut self) -> f64 {
        let u = self.next_f64().max(1e-12);
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `n` anchors: true logit z ~ N(−2.4, 1.1), label ~ Bernoulli(sigmoid(z)), and an overconfident
/// raw model probability from a noisy view of z.
fn synthetic(rng: &mut Rng, n: usize) -> (Vec<f64>, Vec<bool>) {
    let mut raw = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let z = -2.4 + 1.1 * rng.normal();
        labels.push(rng.next_f64() < sigmoid(z));
        let seen = z + 0.7 * rng.normal();
        raw.push(sigmoid(1.6 * seen + 1.4));
    }
    (raw, labels)
}

const FEATURES: [&str; 30] = [
    "days_since_previous_completed_order",
    "earlier_completed_orders",
    "web_events_30d",
    "sessions_30d",
    "tenure_days",
    "basket_value",
    "web_events_14d_email",
    "cart_events_30d",
    "earlier_returned_orders",
    "basket_items",
    "age",
    "top_item_category",
    "web_events_7d",
    "traffic_source",
    "country",
    "sessions_14d",
    "basket_retail_value",
    "web_events_30d_ads",
    "order_hour",
    "earlier_cancelled_orders",
    "top_item_brand",
    "web_events_30d_social",
    "order_weekday",
    "basket_categories",
    "top_item_department",
    "web_events_30d_organic",
    "gender",
    "top_item_distribution_centre",
    "days_since_previous_order",
    "web_events_14d",
];

fn report_html() -> String {
    let mut rng = Rng(SplitMix64::new(20250630));
    let (valid_raw, valid_labels) = synthetic(&mut rng, 3_000);
    let (raw, labels) = synthetic(&mut rng, 3_000);
    let calibrator = Calibrator::fit_platt(&valid_raw, &valid_labels);
    let threshold =
        metrics::f1_optimal_threshold(&calibrator.predict_all(&valid_raw), &valid_labels).threshold;
    let probs = calibrator.predict_all(&raw);
    let keys: Vec<i64> = (0..probs.len() as i64).collect();
    let total: f64 = (1..=FEATURES.len()).map(|i| 1.0 / i as f64).sum();
    let importance: Vec<(String, f64)> = FEATURES
        .iter()
        .enumerate()
        .rev()
        .map(|(i, name)| (name.to_string(), 1.0 / (i + 1) as f64 / total))
        .collect();
    // Shapley effects: a feature's values push scores by about its importance, high values up
    // for even features and down for odd ones; one value in ten missing.
    let effects: Vec<FeatureEffect> = importance
        .iter()
        .rev()
        .enumerate()
        .map(|(i, (name, imp))| FeatureEffect {
            name: name.clone(),
            mean_abs: imp * 0.8,
            points: (0..300)
                .map(|_| {
                    let q = rng.next_f64();
                    let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                    let v = sign * (q - 0.5) * 2.0 * imp + 0.1 * imp * rng.normal();
                    (v, (rng.next_f64() > 0.1).then_some(q))
                })
                .collect(),
        })
        .collect();
    let input = ReportInput {
        title: "Repurchase model 2025-06-30-abc123".to_string(),
        facts: vec![
            ("run date".to_string(), "2025-06-30".to_string()),
            (
                "test window".to_string(),
                "2025-01-01 … 2025-05-01".to_string(),
            ),
            (
                "rows (train / valid / test)".to_string(),
                "21,000 / 3,000 / 3,000".to_string(),
            ),
            ("calibration".to_string(), calibrator.name().to_string()),
            (
                "threshold".to_string(),
                format!("{threshold:.4} (F1-optimal on validation)"),
            ),
        ],
        probs: &probs,
        raw: &raw,
        labels: &labels,
        keys: &keys,
        threshold,
        top_k_fraction: 0.10,
        importance: &importance,
        effects: &effects,
        auc_ci: metrics::bootstrap_auc_ci(&probs, &labels, &keys, 200, 7),
        notes: vec![
            "Synthetic data for the browser test: labels drawn from known probabilities, raw \
             scores deliberately overconfident so the calibration plot has something to show."
                .to_string(),
            "Characters that must be escaped: <script>alert(\"x\")</script> & 'quotes'."
                .to_string(),
        ],
    };
    render(&input)
}

#[test]
fn report_renders_in_headless_chromium_without_errors() {
    let dir = work_dir("report");
    let page = dir.join("report.html");
    std::fs::write(&page, report_html()).expect("write report");
    let run = run_clean(&page, &dir, "the report");

    for id in PLOT_IDS {
        let svg = svg_element(&run.dom, id);
        assert!(svg.contains("<title"), "svg #{id} has no <title>");
        assert!(!svg.contains("no data"), "svg #{id} shows no data");
    }
    for id in CURVE_PLOTS {
        let svg = svg_element(&run.dom, id);
        assert!(
            svg.contains("<path") || svg.contains("<polyline"),
            "svg #{id} has no curve"
        );
    }
    // The beeswarm: ten features of 300 sampled rows each, and the legend's missing dot.
    assert_eq!(
        svg_element(&run.dom, "shap-beeswarm")
            .matches("<circle")
            .count(),
        10 * 300 + 1
    );
    // The escaped note came through as text, not as an element.
    assert!(run.dom.contains("&lt;script&gt;alert"));
    assert!(!run.dom.contains("<script"));

    assert_screenshot(&run, "report");
}

#[test]
fn browser_check_flags_console_errors_and_network_requests() {
    let dir = work_dir("report-bad");
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>bad</title></head><body>\
         <script>console.error(\"report-test-console-error\")</script>\
         <script>notDefinedAnywhere()</script>\
         <img src=\"http://127.0.0.1:9/missing.png\" alt=\"\">\
         </body></html>",
    )
    .expect("write bad page");
    let run = run_browser(&page, &dir);
    assert!(run.status.success(), "stderr:\n{}", run.stderr);
    let console = console_lines(&run.stderr).join("\n");
    assert!(
        console.contains("report-test-console-error"),
        "console.error not detected; stderr:\n{}",
        run.stderr
    );
    assert!(
        console.contains("Uncaught ReferenceError"),
        "uncaught exception not detected; stderr:\n{}",
        run.stderr
    );
    assert_eq!(
        page_requests(&run.netlog),
        vec!["http://127.0.0.1:9/missing.png".to_string()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A timeline panel titled `[title, y title, caption]`, its y axis `(percent, from zero)`, with
/// series of `(name, role, values)`.
fn panel(
    id: &str,
    [title, y_title, caption]: [&str; 3],
    (percent, from_zero): (bool, bool),
    series: Vec<(&str, Role, Vec<Option<f64>>)>,
) -> Panel {
    Panel {
        id: id.to_string(),
        title: title.to_string(),
        y_title: y_title.to_string(),
        percent,
        from_zero,
        series: series
            .into_iter()
            .map(|(name, role, values)| Series {
                name: name.to_string(),
                role,
                values,
            })
            .collect(),
        caption: caption.to_string(),
    }
}

/// Twelve weekly origins, five panels of three or four series (one with a gap and a lone point),
/// a table and notes with characters that must be escaped.
fn timeline_html() -> (String, Vec<String>) {
    const N: usize = 12;
    let mut rng = Rng(SplitMix64::new(20250407));
    let x_labels: Vec<String> = (0..N)
        .map(|i| {
            let day = chrono::NaiveDate::from_ymd_opt(2025, 4, 7).expect("date")
                + chrono::Duration::weeks(i as i64);
            day.to_string()
        })
        .collect();
    // A metric around `base` that drifts a little from week to week.
    let mut walk = |base: f64, step: f64| -> Vec<Option<f64>> {
        let mut v = base;
        (0..N)
            .map(|_| {
                v += step * rng.normal();
                Some(v)
            })
            .collect()
    };
    let mut old_auc = walk(0.66, 0.01);
    // Not measured at origins 4 and 6: origin 5 stands alone between two gaps.
    old_auc[4] = None;
    old_auc[6] = None;
    let panels = vec![
        panel(
            "timeline-auc",
            [
                "ROC-AUC by origin",
                "ROC-AUC",
                "Ranking quality at each origin.",
            ],
            (false, false),
            vec![
                ("new procedure", Role::Model, walk(0.72, 0.01)),
                ("old procedure", Role::Baseline, old_auc),
                ("oracle", Role::Oracle, walk(0.80, 0.005)),
            ],
        ),
        panel(
            "timeline-rate",
            [
                "Predicted against observed rate",
                "repurchase rate",
                "Mean predicted probability and the rate that followed.",
            ],
            (true, true),
            vec![
                ("new: mean predicted", Role::Model, walk(0.10, 0.004)),
                ("old: mean predicted", Role::Baseline, walk(0.12, 0.004)),
                ("observed", Role::Observed, walk(0.10, 0.006)),
            ],
        ),
        panel(
            "timeline-ece",
            ["Expected calibration error", "ECE", "Lower is better."],
            (false, true),
            vec![
                ("new procedure", Role::Model, walk(0.010, 0.002)),
                ("old procedure", Role::Baseline, walk(0.030, 0.003)),
                ("oracle", Role::Oracle, walk(0.005, 0.001)),
            ],
        ),
        panel(
            "timeline-brier",
            [
                "Brier score",
                "Brier",
                "Mean squared error of the probability.",
            ],
            (false, false),
            vec![
                ("new procedure", Role::Model, walk(0.085, 0.002)),
                ("old procedure", Role::Baseline, walk(0.090, 0.002)),
                ("oracle", Role::Oracle, walk(0.080, 0.001)),
                ("base rate only", Role::Other, walk(0.092, 0.001)),
            ],
        ),
        panel(
            "timeline-flags",
            [
                "Flag precision and recall",
                "share",
                "Of the flagged top tenth, the share that repurchased (precision) and the \
                 share of all repurchasers flagged (recall).",
            ],
            (true, true),
            vec![
                ("new: precision", Role::Model, walk(0.30, 0.02)),
                ("old: precision", Role::Baseline, walk(0.26, 0.02)),
                ("new: recall", Role::Other, walk(0.35, 0.02)),
                ("oracle: precision", Role::Oracle, walk(0.40, 0.01)),
            ],
        ),
    ];
    let ids = panels.iter().map(|p| p.id.clone()).collect();
    let input = TimelineInput {
        title: "Rolling-origin backtest 2025-06-30".to_string(),
        points: "origins of the rolling-origin backtest".into(),
        facts_heading: "Backtest".into(),
        facts: vec![
            ("origins".to_string(), N.to_string()),
            (
                "window".to_string(),
                format!("{} … {}", x_labels[0], x_labels[N - 1]),
            ),
            ("horizon".to_string(), "60 days".to_string()),
        ],
        x_title: "origin (week start)".to_string(),
        x_labels,
        panels,
        tables: vec![Table {
            caption: "Mean over the origins <b>measured</b>".to_string(),
            header: vec![
                "metric".to_string(),
                "new".to_string(),
                "old".to_string(),
                "oracle".to_string(),
            ],
            rows: vec![
                vec![
                    "ROC-AUC".to_string(),
                    "0.721".to_string(),
                    "0.662".to_string(),
                    "0.801".to_string(),
                ],
                vec![
                    "ECE".to_string(),
                    "0.010".to_string(),
                    "0.030".to_string(),
                    "n/a".to_string(),
                ],
                vec![
                    "flag precision & recall".to_string(),
                    "30.2% / 35.1%".to_string(),
                    "26.0% / –".to_string(),
                    "<i>n/a</i>".to_string(),
                ],
            ],
        }],
        notes: vec![
            "Synthetic data for the browser test: random walks around plausible values."
                .to_string(),
            "Characters that must be escaped: <script>alert(\"x\")</script> & 'quotes'."
                .to_string(),
        ],
    };
    (timeline::render(&input), ids)
}

#[test]
fn timeline_page_renders_in_headless_chromium_without_errors() {
    let dir = work_dir("timeline");
    let page = dir.join("timeline.html");
    let (html, ids) = timeline_html();
    std::fs::write(&page, html).expect("write timeline page");
    let run = run_clean(&page, &dir, "the timeline page");

    assert_eq!(ids.len(), 5);
    for id in &ids {
        let svg = svg_element(&run.dom, id);
        assert!(svg.contains("<title"), "svg #{id} has no <title>");
        assert!(svg.contains("<polyline"), "svg #{id} has no line");
        assert!(!svg.contains("no data"), "svg #{id} shows no data");
    }
    // The gap breaks the old procedure's AUC line in two (origins 0–3 and 7–11), and the
    // origin measured alone between the gaps is still a point with its tooltip.
    let auc = svg_element(&run.dom, "timeline-auc");
    assert!(auc.contains("<title>old procedure, 2025-05-12: "));
    assert!(!auc.contains("<title>old procedure, 2025-05-05: "));
    // The escaped note and table cells came through as text, not as elements.
    assert!(run.dom.contains("&lt;script&gt;alert"));
    assert!(run.dom.contains("&lt;b&gt;measured&lt;/b&gt;"));
    assert!(!run.dom.contains("<script"));
    assert!(!run.dom.contains("<b>measured"));

    assert_screenshot(&run, "timeline");
}
