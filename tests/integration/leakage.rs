//! Point-in-time correctness, feature by feature: adding orders, items and events at or after an
//! anchor's time, and changing the customer's later orders and items, must leave every feature
//! of that anchor unchanged (only its label may move). A control puts the same rows an hour
//! before the anchor and requires the features to move, so the check cannot pass by accident.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use bytes::Bytes;
use repurchase_core::layout::Dataset;
use repurchase_core::schema::Table;
use repurchase_core::{DataRoot, RunDate};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::FeatureTable;
use repurchase_model::io::load_features;

use crate::fixtures::{V, build, s};
use crate::support::{col, date, memory_root, parquet_batches, signal_source};

async fn read_table(root: &DataRoot, table: Table) -> Vec<RecordBatch> {
    let bytes = root
        .get(&format!("{}.parquet", table.name()))
        .await
        .expect("source table");
    parquet_batches(bytes)
}

async fn write_table(root: &DataRoot, table: Table, batches: &[RecordBatch]) {
    let bytes = repurchase_core::parquet_io::encode(&table.schema(), batches).unwrap();
    root.put(&format!("{}.parquet", table.name()), Bytes::from(bytes))
        .await
        .unwrap();
}

fn max_id(batches: &[RecordBatch], col: &str) -> i64 {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(col)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .max()
        .unwrap_or(0)
}

async fn features(source: &DataRoot, d: RunDate, mode: AnchorMode) -> FeatureTable {
    let lake = memory_root("leak-lake");
    repurchase_extract::extract(&lake, d, &Source::Files(source.clone()))
        .await
        .expect("extract");
    repurchase_features::build(&lake, d, &repurchase_features::BuildOptions::new(mode, 60))
        .await
        .expect("features");
    load_features(&lake, Dataset::FeaturesTrain, d)
        .await
        .expect("load")
        .0
}

/// Feature values of one anchor, by feature name (NaN-safe via bit patterns).
fn row(t: &FeatureTable, order_id: i64) -> BTreeMap<String, String> {
    let i = t
        .order_id
        .iter()
        .position(|o| *o == order_id)
        .expect("anchor still present");
    let mut out = BTreeMap::new();
    for (k, v) in &t.numeric {
        out.insert(k.clone(), format!("{:x}", v[i].to_bits()));
    }
    for (k, v) in &t.categorical {
        out.insert(k.clone(), format!("{:?}", v[i]));
    }
    out.insert("user_id".into(), t.user_id[i].to_string());
    out.insert("anchor_us".into(), t.anchor_us[i].to_string());
    out
}

/// New rows for (orders, order_items, events).
type ExtraRows = (Vec<Vec<V>>, Vec<Vec<V>>, Vec<Vec<V>>);

/// Rows of the chosen anchors' users dated `offset_us` from each anchor: a cancelled and a
/// returned order with one item each, and a purchase session plus events on every traffic source.
fn extra_rows(
    t: &FeatureTable,
    chosen: &[usize],
    offset_us: i64,
    ids: &mut (i64, i64, i64),
) -> ExtraRows {
    let (mut orders, mut items, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for &i in chosen {
        let (user, at) = (t.user_id[i], t.anchor_us[i] + offset_us);
        for (k, status) in [(0, "Cancelled"), (1_000_000, "Returned")] {
            let t0 = at + k;
            let (ship, deliver, ret) = if status == "Returned" {
                (V::T(t0 + 1), V::T(t0 + 2), V::T(t0 + 3))
            } else {
                (V::Null, V::Null, V::Null)
            };
            orders.push(vec![
                V::I(ids.0),
                V::I(user),
                s(status),
                s("F"),
                V::T(t0),
                ret.clone(),
                ship.clone(),
                deliver.clone(),
                V::I(1),
            ]);
            items.push(vec![
                V::I(ids.1),
                V::I(ids.0),
                V::I(user),
                V::I(1),
                V::I(1),
                s(status),
                V::T(t0),
                ship,
                deliver,
                ret,
                V::F(12.5),
            ]);
            ids.0 += 1;
            ids.1 += 1;
        }
        for (k, source, kind) in [
            (0, "Email", "home"),
            (0, "Adwords", "cart"),
            (1, "Organic", "cart"),
            (3_600_000_000, "Facebook", "purchase"),
        ] {
            events.push(vec![
                V::I(ids.2),
                V::I(user),
                V::I(1),
                V::S(format!("leak-{user}-{offset_us}")),
                V::T(at + k),
                s("10.0.0.1"),
                s("X"),
                s("Y"),
                s("1"),
                s("Chrome"),
                s(source),
                s("/cart"),
                s(kind),
            ]);
            ids.2 += 1;
        }
    }
    (orders, items, events)
}

/// The source with `extra` rows appended and, for `changed_after` (user → anchor µs), every
/// existing order and item of that user created at or after the anchor altered.
async fn mutated_source(
    source: &DataRoot,
    tag: &str,
    extra: ExtraRows,
    changed_after: &HashMap<i64, i64>,
) -> DataRoot {
    let out = memory_root(tag);
    for table in Table::ALL {
        let mut batches = read_table(source, table).await;
        match table {
            Table::Orders => {
                batches = batches
                    .iter()
                    .map(|b| change_later_rows(b, changed_after, "status", "Cancelled"))
                    .collect();
                batches.push(build(&table.schema(), &extra.0));
            }
            Table::OrderItems => {
                batches = batches
                    .iter()
                    .map(|b| change_later_rows(b, changed_after, "status", "Returned"))
                    .collect();
                batches.push(build(&table.schema(), &extra.1));
            }
            Table::Events => batches.push(build(&table.schema(), &extra.2)),
            _ => {}
        }
        write_table(&out, table, &batches).await;
    }
    out
}

/// Sets `column` to `value` in rows of the given users created after their anchor (the anchor
/// order itself stays as it is).
fn change_later_rows(
    b: &RecordBatch,
    after: &HashMap<i64, i64>,
    column: &str,
    value: &str,
) -> RecordBatch {
    let users = col::<Int64Array>(b, "user_id");
    let created = col::<TimestampMicrosecondArray>(b, "created_at");
    let idx = b.schema().index_of(column).unwrap();
    let old = b
        .column(idx)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let new: StringArray = (0..b.num_rows())
        .map(|i| {
            let later = after
                .get(&users.value(i))
                .is_some_and(|at| created.value(i) > *at);
            if later {
                Some(value.to_string())
            } else {
                old.is_valid(i).then(|| old.value(i).to_string())
            }
        })
        .collect();
    let mut cols = b.columns().to_vec();
    cols[idx] = Arc::new(new);
    RecordBatch::try_new(b.schema(), cols).unwrap()
}

async fn check(mode: AnchorMode) {
    let d = date("2025-06-30");
    let source = signal_source(2_000, 7, "2025-06-30").await;
    let before = features(&source, d, mode).await;
    assert!(before.len() > 200, "enough anchors: {}", before.len());
    let feature_count = row(&before, before.order_id[0]).len() - 2;
    assert!(
        feature_count >= 65,
        "every feature is compared: {feature_count}"
    );

    // 40 anchors of distinct users, spread over time.
    let mut chosen: Vec<usize> = Vec::new();
    let mut users = HashSet::new();
    for i in (0..before.len()).step_by(before.len() / 60) {
        if users.insert(before.user_id[i]) && chosen.len() < 40 {
            chosen.push(i);
        }
    }
    let orders = read_table(&source, Table::Orders).await;
    let items = read_table(&source, Table::OrderItems).await;
    let events = read_table(&source, Table::Events).await;
    let first_ids = (
        max_id(&orders, "order_id") + 1,
        max_id(&items, "id") + 1,
        max_id(&events, "id") + 1,
    );
    let anchors_of: HashMap<i64, i64> = chosen
        .iter()
        .map(|&i| (before.user_id[i], before.anchor_us[i]))
        .collect();

    // Rows at and after each anchor added, and the user's later orders and items changed: no
    // feature of the anchor may move.
    let mut ids = first_ids;
    let later = extra_rows(&before, &chosen, 0, &mut ids);
    let after_src = mutated_source(&source, "leak-after", later, &anchors_of).await;
    let after = features(&after_src, d, mode).await;
    for &i in &chosen {
        let id = before.order_id[i];
        let (a, b) = (row(&before, id), row(&after, id));
        for (name, value) in &a {
            assert_eq!(
                Some(value),
                b.get(name),
                "feature {name} of anchor order {id} changed when rows at or after its time were added or changed"
            );
        }
    }

    // Control: the same rows an hour before each anchor must reach its features, or the check
    // above could pass by never looking.
    let mut ids = first_ids;
    let earlier = extra_rows(&before, &chosen, -3_700_000_000, &mut ids);
    let before_src = mutated_source(&source, "leak-before", earlier, &HashMap::new()).await;
    let moved = features(&before_src, d, mode).await;
    for name in [
        "prev_orders",
        "prev_cancelled",
        "prev_items",
        "events_7d",
        "email_events_7d",
        "sessions_all",
        "cart_events_30d",
    ] {
        let changed = chosen
            .iter()
            .filter(|&&i| {
                let id = before.order_id[i];
                row(&before, id).get(name) != row(&moved, id).get(name)
            })
            .count();
        assert!(
            changed * 10 >= chosen.len() * 9,
            "{name}: only {changed} of {} anchors saw rows added an hour before them",
            chosen.len()
        );
    }
}

#[tokio::test]
async fn features_ignore_rows_at_or_after_the_anchor_first_order() {
    check(AnchorMode::FirstOrder).await;
}

#[tokio::test]
async fn features_ignore_rows_at_or_after_the_anchor_every_order() {
    check(AnchorMode::EveryOrder).await;
}
