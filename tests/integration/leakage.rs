//! Point-in-time correctness: adding orders and events at or after an anchor's time must leave
//! that anchor's features unchanged (only its label may move).

use std::collections::BTreeMap;

use arrow::array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use repurchase_core::layout::Dataset;
use repurchase_core::schema::Table;
use repurchase_core::{DataRoot, RunDate};
use repurchase_datagen::{OutputFormat, Profile};
use repurchase_extract::Source;
use repurchase_features::AnchorMode;
use repurchase_model::FeatureTable;
use repurchase_model::io::load_features;

use crate::fixtures::{V, build, s};
use crate::support::{date, generated_source, memory_root};

async fn read_table(root: &DataRoot, table: Table) -> Vec<RecordBatch> {
    let bytes = root
        .get(&format!("{}.parquet", table.name()))
        .await
        .expect("source table");
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
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
    repurchase_features::build(&lake, d, mode, 60)
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

async fn check(mode: AnchorMode) {
    let d = date("2025-06-30");
    let source = generated_source(
        2_000,
        7,
        "2025-06-30",
        Profile::Signal,
        OutputFormat::Parquet,
    )
    .await;
    let before = features(&source, d, mode).await;
    assert!(before.len() > 200, "enough anchors: {}", before.len());

    // 40 anchors of distinct users, spread over time.
    let mut chosen: Vec<usize> = Vec::new();
    let mut users = std::collections::HashSet::new();
    for i in (0..before.len()).step_by(before.len() / 60) {
        if users.insert(before.user_id[i]) && chosen.len() < 40 {
            chosen.push(i);
        }
    }
    let orders = read_table(&source, Table::Orders).await;
    let events = read_table(&source, Table::Events).await;
    let mut next_order = max_id(&orders, "order_id") + 1;
    let mut next_event = max_id(&events, "id") + 1;
    let (mut new_orders, mut new_events) = (Vec::new(), Vec::new());
    for &i in &chosen {
        let (user, at) = (before.user_id[i], before.anchor_us[i]);
        // An order exactly at the anchor time, and a delivered, returned one a second later.
        for (offset, status) in [(0, "Cancelled"), (1_000_000, "Returned")] {
            let t = at + offset;
            let (ship, deliver, ret) = if status == "Returned" {
                (V::T(t + 1), V::T(t + 2), V::T(t + 3))
            } else {
                (V::Null, V::Null, V::Null)
            };
            new_orders.push(vec![
                V::I(next_order),
                V::I(user),
                s(status),
                s("F"),
                V::T(t),
                ret,
                ship,
                deliver,
                V::I(1),
            ]);
            next_order += 1;
        }
        // Events exactly at the anchor time and an hour after, on every traffic source.
        for (offset, source) in [
            (0, "Email"),
            (0, "Adwords"),
            (3_600_000_000, "Organic"),
            (3_600_000_000, "Facebook"),
        ] {
            new_events.push(vec![
                V::I(next_event),
                V::I(user),
                V::I(1),
                V::S(format!("leak-{next_event}")),
                V::T(at + offset),
                s("10.0.0.1"),
                s("X"),
                s("Y"),
                s("1"),
                s("Chrome"),
                s(source),
                s("/cart"),
                s("cart"),
            ]);
            next_event += 1;
        }
    }
    let mut orders2 = orders.clone();
    orders2.push(build(&Table::Orders.schema(), &new_orders));
    let mut events2 = events.clone();
    events2.push(build(&Table::Events.schema(), &new_events));
    let mutated = memory_root("leak-src2");
    for table in Table::ALL {
        let batches = match table {
            Table::Orders => orders2.clone(),
            Table::Events => events2.clone(),
            _ => read_table(&source, table).await,
        };
        write_table(&mutated, table, &batches).await;
    }
    let after = features(&mutated, d, mode).await;
    for &i in &chosen {
        let id = before.order_id[i];
        assert_eq!(
            row(&before, id),
            row(&after, id),
            "features of anchor order {id} changed when later rows were added"
        );
    }
    // The mutation did reach the data: the chosen users' later anchors (if any) or counts differ.
    let ts_check: Vec<i64> = events2
        .last()
        .unwrap()
        .column_by_name("created_at")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap()
        .values()
        .to_vec();
    assert_eq!(ts_check.len(), chosen.len() * 4);
}

#[tokio::test]
async fn features_ignore_rows_at_or_after_the_anchor_first_order() {
    check(AnchorMode::FirstOrder).await;
}

#[tokio::test]
async fn features_ignore_rows_at_or_after_the_anchor_every_order() {
    check(AnchorMode::EveryOrder).await;
}
