//! Labels on hand-built fixtures equal an independent computation, in both anchor modes:
//! an order exactly 60 days later, one a second too late, a cancelled order in between, two
//! orders on the same day, two at the same instant, open windows and already-repurchased anchors.

use std::collections::BTreeMap;

use repurchase_core::layout::Dataset;
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::io::load_features;

use crate::fixtures::{Fixture, Order, ts};
use crate::support::{date, memory_root};

const DAY: i64 = 86_400_000_000;

fn fixture() -> Fixture {
    let signup = ts("2023-01-01 00:00:00");
    let o = |id, user, status, created: &str| Order {
        id,
        user,
        status,
        created: ts(created),
    };
    Fixture {
        users: (1..=8).map(|u| (u, signup)).collect(),
        orders: vec![
            o(11, 1, "Complete", "2024-01-01 10:00:00"),
            o(12, 1, "Complete", "2024-03-01 10:00:00"), // exactly 60 days later (2024 is a leap year)
            o(21, 2, "Complete", "2024-01-01 10:00:00"),
            o(22, 2, "Complete", "2024-03-01 10:00:01"), // 60 days and one second
            o(31, 3, "Complete", "2024-02-01 08:00:00"),
            o(32, 3, "Cancelled", "2024-02-10 08:00:00"), // cancelled in between: not a repurchase
            o(33, 3, "Complete", "2024-06-01 08:00:00"),
            o(41, 4, "Complete", "2024-03-01 09:00:00"),
            o(42, 4, "Complete", "2024-03-01 18:00:00"), // same day, later
            o(51, 5, "Complete", "2024-04-01 12:00:00"),
            o(52, 5, "Complete", "2024-04-01 12:00:00"), // same instant: not strictly after
            o(61, 6, "Returned", "2024-01-05 12:00:00"),
            o(62, 6, "Complete", "2024-01-20 12:00:00"),
            o(63, 6, "Processing", "2024-02-01 12:00:00"),
            o(71, 7, "Complete", "2024-11-15 12:00:00"), // window open at the run date
            o(72, 7, "Complete", "2024-11-20 12:00:00"), // ... already repurchased inside it
            o(81, 8, "Complete", "2024-11-01 10:00:00"), // window closes 2024-12-31 10:00, before run end
            o(82, 8, "Complete", "2025-01-05 10:00:00"), // after the run date: never seen
        ],
        events: Vec::new(),
    }
}

/// The label definition written out plainly, independent of the SQL.
fn expected(f: &Fixture, every: bool, run_end: i64) -> (BTreeMap<i64, bool>, BTreeMap<i64, bool>) {
    let visible: Vec<&Order> = f.orders.iter().filter(|o| o.created < run_end).collect();
    let mut closed = BTreeMap::new();
    let mut open = BTreeMap::new();
    for (user, _) in &f.users {
        let mut complete: Vec<&&Order> = visible
            .iter()
            .filter(|o| o.user == *user && o.status == "Complete")
            .collect();
        complete.sort_by_key(|o| (o.created, o.id));
        let anchors: Vec<&&Order> = if every {
            complete.clone()
        } else {
            complete.iter().take(1).copied().collect()
        };
        for a in anchors {
            let label = complete.iter().any(|c| {
                c.id != a.id && c.created > a.created && c.created <= a.created + 60 * DAY
            });
            if a.created + 60 * DAY < run_end {
                closed.insert(a.id, label);
            } else {
                open.insert(a.id, label);
            }
        }
    }
    (closed, open)
}

async fn computed(mode: AnchorMode) -> (BTreeMap<i64, bool>, BTreeMap<i64, bool>, u64) {
    let source = memory_root("labels-src");
    fixture().write(&source).await;
    let lake = memory_root("labels-lake");
    let d = date("2024-12-31");
    let ex = repurchase_extract::extract(&lake, d, &Source::Files(source))
        .await
        .expect("extract");
    assert_eq!(
        ex.tables["orders"], 17,
        "the order after the run date is not extracted"
    );
    repurchase_features::build(&lake, d, mode, 60)
        .await
        .expect("features");
    let (train, _, _) = load_features(&lake, Dataset::FeaturesTrain, d)
        .await
        .expect("train features");
    let (score, manifest, _) = load_features(&lake, Dataset::FeaturesScore, d)
        .await
        .expect("score features");
    let closed = train
        .order_id
        .iter()
        .zip(train.labels().unwrap())
        .map(|(o, l)| (*o, *l))
        .collect();
    let open = score
        .order_id
        .iter()
        .zip(score.repurchased_so_far.as_ref().unwrap())
        .map(|(o, l)| (*o, *l))
        .collect();
    (closed, open, manifest.counters["already_repurchased"])
}

#[tokio::test]
async fn first_order_labels_match_independent_computation() {
    let run_end = date("2024-12-31").end_exclusive_micros();
    let (closed, open) = expected(&fixture(), false, run_end);
    let (got_closed, got_open, already) = computed(AnchorMode::FirstOrder).await;
    assert_eq!(got_closed, closed);
    assert_eq!(got_open, open);
    // Spot-check the edge cases against the definition, not just against each other.
    assert!(closed[&11], "exactly 60 days later is within the window");
    assert!(!closed[&21], "60 days and a second is outside");
    assert!(!closed[&31], "a cancelled order is not a repurchase");
    assert!(closed[&41], "same day, later is a repurchase");
    assert!(!closed[&51], "same instant is not strictly after");
    assert!(
        !closed.contains_key(&52),
        "first order picks the lower id at a tie"
    );
    assert!(
        closed.contains_key(&62) && !closed[&62],
        "first completed order after a return; processing does not count"
    );
    assert!(
        closed.contains_key(&81),
        "window closing before the run end is labelled"
    );
    assert_eq!(
        open.get(&71),
        Some(&true),
        "open window, already repurchased"
    );
    assert_eq!(already, 1);
}

#[tokio::test]
async fn every_order_labels_match_independent_computation() {
    let run_end = date("2024-12-31").end_exclusive_micros();
    let (closed, open) = expected(&fixture(), true, run_end);
    let (got_closed, got_open, _) = computed(AnchorMode::EveryOrder).await;
    assert_eq!(got_closed, closed);
    assert_eq!(got_open, open);
    assert!(closed.contains_key(&12) && closed.contains_key(&52) && closed.contains_key(&42));
    assert!(!closed[&42], "nothing after the same-day second order");
    assert_eq!(open.get(&72), Some(&false));
}
