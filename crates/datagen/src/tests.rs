//! Whole-generator tests: determinism, schemas, marginals, time ordering, referential integrity,
//! agreement of the truth table with the generated orders, and streamed files equal to the whole
//! tables encoded at once.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{ArrowPrimitiveType, Float64Type, Int64Type, TimestampMicrosecondType};
use repurchase_core::parquet_io;
use repurchase_core::{Classify, DataRoot, StoreConfig};

use super::*;
use crate::write::{Output, Piece, TableWriter};

const END: NaiveDate = match NaiveDate::from_ymd_opt(2024, 6, 30) {
    Some(d) => d,
    None => panic!("valid date"),
};

fn cfg(users: u64, seed: u64, profile: Profile) -> GenConfig {
    GenConfig::new(users, seed, END, profile)
}

fn gen_ok(c: &GenConfig) -> Generated {
    generate(c).expect("generation succeeds")
}

fn table(g: &Generated, t: Table) -> &RecordBatch {
    g.table(t).expect("table present")
}

/// The values of a primitive column, `None` where null.
fn primitives<T: ArrowPrimitiveType>(b: &RecordBatch, col: &str) -> Vec<Option<T::Native>> {
    b.column_by_name(col)
        .expect("column")
        .as_primitive::<T>()
        .iter()
        .collect()
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    primitives::<Int64Type>(b, col)
}

fn req_i64s(b: &RecordBatch, col: &str) -> Vec<i64> {
    i64s(b, col)
        .into_iter()
        .map(|v| v.expect("not null"))
        .collect()
}

fn f64s(b: &RecordBatch, col: &str) -> Vec<f64> {
    b.column_by_name(col)
        .expect("column")
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

fn tss(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    primitives::<TimestampMicrosecondType>(b, col)
}

/// The truth table's `repurchased` column.
fn labels(truth: &RecordBatch) -> &BooleanArray {
    truth
        .column_by_name("repurchased")
        .expect("column")
        .as_boolean()
}

fn strs(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).expect("column").as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn req_strs(b: &RecordBatch, col: &str) -> Vec<String> {
    strs(b, col)
        .into_iter()
        .map(|v| v.expect("not null"))
        .collect()
}

fn shares(values: &[String]) -> HashMap<String, f64> {
    let mut m: HashMap<String, f64> = HashMap::new();
    for v in values {
        *m.entry(v.clone()).or_default() += 1.0;
    }
    for v in m.values_mut() {
        *v /= values.len() as f64;
    }
    m
}

fn assert_shares(what: &str, values: &[String], expected: &[(&str, f64)], tol: f64) {
    let got = shares(values);
    for (k, p) in expected {
        let g = got.get(*k).copied().unwrap_or(0.0);
        assert!(
            (g - p).abs() <= tol,
            "{what}: share of {k} is {g:.3}, expected {p} ± {tol}; all: {got:?}"
        );
    }
}

/// Both profiles keep TheLook's number of items per order.
fn assert_items_per_order(orders: &RecordBatch) {
    let n_items: Vec<String> = req_i64s(orders, "num_of_item")
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_shares(
        "items per order",
        &n_items,
        &[("1", 0.70), ("2", 0.20), ("3", 0.05), ("4", 0.05)],
        0.03,
    );
}

fn end_exclusive_micros() -> i64 {
    END.succ_opt()
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros()
}

/// `repurchased` recomputed from the orders table alone: another Complete order of the same user
/// strictly after the anchor and at most 60 days later.
fn labels_from_orders(orders: &RecordBatch) -> HashMap<i64, bool> {
    let ids = req_i64s(orders, "order_id");
    let users = req_i64s(orders, "user_id");
    let status = req_strs(orders, "status");
    let created: Vec<i64> = tss(orders, "created_at")
        .into_iter()
        .map(|v| v.expect("created"))
        .collect();
    let mut complete_by_user: HashMap<i64, Vec<i64>> = HashMap::new();
    for i in 0..ids.len() {
        if status[i] == "Complete" {
            complete_by_user
                .entry(users[i])
                .or_default()
                .push(created[i]);
        }
    }
    let window = 60 * repurchase_core::run_date::DAY_US;
    (0..ids.len())
        .filter(|&i| status[i] == "Complete")
        .map(|i| {
            let t = created[i];
            let yes = complete_by_user[&users[i]]
                .iter()
                .any(|&c| c > t && c <= t + window);
            (ids[i], yes)
        })
        .collect()
}

#[test]
fn config_validation_and_parsing() {
    assert!(cfg(0, 1, Profile::Signal).validate().is_err());
    let mut c = cfg(10, 1, Profile::Signal);
    c.start_date = END;
    let err = c.validate().expect_err("start == end is rejected");
    assert_eq!(err.class(), repurchase_core::ErrorClass::BadInput);
    assert!(generate(&c).is_err());
    assert_eq!(
        "signal".parse::<Profile>().expect("parses"),
        Profile::Signal
    );
    assert_eq!(
        "TheLook".parse::<Profile>().expect("parses"),
        Profile::Thelook
    );
    assert!("other".parse::<Profile>().is_err());
    assert_eq!(Profile::default(), Profile::Signal);
    assert_eq!(Profile::Thelook.to_string(), "thelook");
    assert_eq!(
        "parquet".parse::<OutputFormat>().expect("parses"),
        OutputFormat::Parquet
    );
    assert_eq!(OutputFormat::default(), OutputFormat::Csv);
    assert!("json".parse::<OutputFormat>().is_err());
    assert_eq!(
        GenConfig::new(5, 1, END, Profile::Thelook).start_date,
        NaiveDate::from_ymd_opt(2019, 1, 1).expect("date")
    );
}

#[test]
fn deterministic_for_a_seed() {
    for profile in [Profile::Signal, Profile::Thelook] {
        let a = gen_ok(&cfg(600, 11, profile));
        let b = gen_ok(&cfg(600, 11, profile));
        let c = gen_ok(&cfg(600, 12, profile));
        for ((ta, ba), (_, bb)) in a.tables.iter().zip(&b.tables) {
            assert_eq!(ba, bb, "{ta} differs between identical runs");
        }
        assert_eq!(a.truth, b.truth);
        assert_ne!(table(&a, Table::Orders), table(&c, Table::Orders));
        assert_ne!(table(&a, Table::Products), table(&c, Table::Products));
        assert_ne!(table(&a, Table::Events), table(&c, Table::Events));
    }
}

#[test]
fn users_do_not_depend_on_how_many_are_generated() {
    // Per-user streams: the first 300 users of a 3,000-user run equal a 300-user run.
    let small = gen_ok(&cfg(300, 5, Profile::Signal));
    let large = gen_ok(&cfg(3_000, 5, Profile::Signal));
    let s = table(&small, Table::Users);
    assert_eq!(s, &table(&large, Table::Users).slice(0, 300));
    let so = table(&small, Table::Orders);
    assert_eq!(so, &table(&large, Table::Orders).slice(0, so.num_rows()));
    assert_eq!(
        table(&small, Table::Products),
        table(&large, Table::Products)
    );
}

#[test]
fn schemas_are_exactly_thelooks() {
    for profile in [Profile::Signal, Profile::Thelook] {
        let g = gen_ok(&cfg(300, 3, profile));
        let names: Vec<Table> = g.tables.iter().map(|(t, _)| *t).collect();
        assert_eq!(names, Table::ALL.to_vec());
        for (t, b) in &g.tables {
            assert_eq!(b.schema(), t.schema(), "schema of {t}");
            assert!(b.num_rows() > 0, "{t} is empty");
        }
        match profile {
            Profile::Signal => {
                assert_eq!(g.truth.as_ref().expect("truth").schema(), truth_schema())
            }
            Profile::Thelook => assert!(g.truth.is_none()),
        }
    }
    assert_eq!(
        table(&gen_ok(&cfg(10, 3, Profile::Thelook)), Table::Products).num_rows(),
        29_120
    );
    assert_eq!(
        table(
            &gen_ok(&cfg(10, 3, Profile::Thelook)),
            Table::DistributionCenters
        )
        .num_rows(),
        10
    );
}

#[test]
fn thelook_marginals() {
    let g = gen_ok(&cfg(5_000, 21, Profile::Thelook));
    let users = table(&g, Table::Users);
    let orders = table(&g, Table::Orders);
    let items = table(&g, Table::OrderItems);
    let events = table(&g, Table::Events);
    let n_users = users.num_rows() as f64;

    assert_shares(
        "order status",
        &req_strs(orders, "status"),
        &[
            ("Complete", 0.25),
            ("Cancelled", 0.15),
            ("Returned", 0.10),
            ("Processing", 0.20),
            ("Shipped", 0.30),
        ],
        0.03,
    );
    assert_shares(
        "user traffic",
        &req_strs(users, "traffic_source"),
        &[
            ("Search", 0.70),
            ("Organic", 0.15),
            ("Facebook", 0.06),
            ("Email", 0.05),
            ("Display", 0.04),
        ],
        0.03,
    );
    assert_shares(
        "gender",
        &req_strs(users, "gender"),
        &[("M", 0.5), ("F", 0.5)],
        0.03,
    );
    assert_items_per_order(orders);
    let orders_per_user = orders.num_rows() as f64 / n_users;
    assert!(
        (orders_per_user - 1.25).abs() < 0.08,
        "orders per user {orders_per_user}"
    );
    let ratio = table(&g, Table::InventoryItems).num_rows() as f64 / items.num_rows() as f64;
    assert!((ratio - 2.7).abs() < 0.1, "inventory per item {ratio}");
    let events_per_user = events.num_rows() as f64 / n_users;
    assert!(
        (events_per_user - 24.3).abs() < 2.0,
        "events per user {events_per_user}"
    );
    assert_shares(
        "event traffic",
        &req_strs(events, "traffic_source"),
        &[
            ("Email", 0.45),
            ("Adwords", 0.30),
            ("YouTube", 0.10),
            ("Facebook", 0.10),
            ("Organic", 0.05),
        ],
        0.03,
    );
    assert_shares(
        "browser",
        &req_strs(events, "browser"),
        &[
            ("Chrome", 0.5),
            ("Safari", 0.2),
            ("Firefox", 0.2),
            ("IE", 0.05),
            ("Other", 0.05),
        ],
        0.03,
    );
    let ages = req_i64s(users, "age");
    assert!(ages.iter().all(|a| (12..=70).contains(a)));
    // Items are bought from the user's own department.
    let gender_of: HashMap<i64, String> = req_i64s(users, "id")
        .into_iter()
        .zip(req_strs(users, "gender"))
        .collect();
    let products = table(&g, Table::Products);
    let dept_of: HashMap<i64, String> = req_i64s(products, "id")
        .into_iter()
        .zip(req_strs(products, "department"))
        .collect();
    for (u, p) in req_i64s(items, "user_id")
        .into_iter()
        .zip(req_i64s(items, "product_id"))
    {
        let want = if gender_of[&u] == "M" { "Men" } else { "Women" };
        assert_eq!(dept_of[&p], want);
    }
}

#[test]
fn signal_marginals_stay_close_to_thelook() {
    let g = gen_ok(&cfg(5_000, 22, Profile::Signal));
    let orders = table(&g, Table::Orders);
    assert_shares(
        "signal order status",
        &req_strs(orders, "status"),
        &[
            ("Complete", 0.25),
            ("Cancelled", 0.15),
            ("Returned", 0.12),
            ("Processing", 0.17),
            ("Shipped", 0.30),
        ],
        0.04,
    );
    assert_items_per_order(orders);
    let users = table(&g, Table::Users).num_rows() as f64;
    let per_user = orders.num_rows() as f64 / users;
    assert!(
        (1.1..=1.9).contains(&per_user),
        "orders per user {per_user}"
    );
}

#[test]
fn timestamps_stay_within_the_date_range() {
    let end = end_exclusive_micros();
    for profile in [Profile::Signal, Profile::Thelook] {
        let g = gen_ok(&cfg(2_000, 4, profile));
        let mut fractional = 0usize;
        let mut total = 0usize;
        for (t, b) in &g.tables {
            for f in b.schema().fields() {
                if f.data_type() == &repurchase_core::schema::ts_type() {
                    for v in tss(b, f.name()).into_iter().flatten() {
                        assert!(
                            v < end,
                            "{t}.{} = {} is after the end date",
                            f.name(),
                            format_bigquery_ts(v)
                        );
                        total += 1;
                        fractional += usize::from(v % 1_000_000 != 0);
                    }
                }
            }
        }
        let share = fractional as f64 / total as f64;
        assert!((0.07..0.13).contains(&share), "sub-second share {share}");

        // Order lifecycle times are ordered.
        let orders = table(&g, Table::Orders);
        let created = tss(orders, "created_at");
        let shipped = tss(orders, "shipped_at");
        let delivered = tss(orders, "delivered_at");
        let returned = tss(orders, "returned_at");
        let status = req_strs(orders, "status");
        for i in 0..orders.num_rows() {
            let c = created[i].expect("created");
            match status[i].as_str() {
                "Processing" | "Cancelled" => {
                    assert!(shipped[i].is_none() && delivered[i].is_none() && returned[i].is_none())
                }
                "Shipped" => assert!(shipped[i].is_some_and(|s| s >= c) && delivered[i].is_none()),
                "Complete" => {
                    assert!(
                        delivered[i].is_some_and(|d| d >= shipped[i].unwrap_or(i64::MAX))
                            && returned[i].is_none()
                    )
                }
                "Returned" => {
                    assert!(returned[i].is_some_and(|r| r >= delivered[i].unwrap_or(i64::MAX)))
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
}

#[test]
fn events_precede_their_orders() {
    for profile in [Profile::Signal, Profile::Thelook] {
        let g = gen_ok(&cfg(1_500, 8, profile));
        let orders = table(&g, Table::Orders);
        let items = table(&g, Table::OrderItems);
        let events = table(&g, Table::Events);

        let mut order_times: HashMap<i64, Vec<i64>> = HashMap::new();
        for (u, c) in req_i64s(orders, "user_id")
            .into_iter()
            .zip(tss(orders, "created_at"))
        {
            order_times.entry(u).or_default().push(c.expect("created"));
        }
        let ev_user = i64s(events, "user_id");
        let ev_type = req_strs(events, "event_type");
        let ev_time: Vec<i64> = tss(events, "created_at")
            .into_iter()
            .map(|v| v.expect("ts"))
            .collect();
        let ev_session = req_strs(events, "session_id");
        let ev_seq = req_i64s(events, "sequence_number");
        let ev_uri = req_strs(events, "uri");

        let mut purchases = 0;
        for i in 0..events.num_rows() {
            match ev_type[i].as_str() {
                "purchase" => {
                    purchases += 1;
                    let u = ev_user[i].expect("purchase events are signed in");
                    let ok = order_times[&u]
                        .iter()
                        .any(|&c| ev_time[i] < c && c - ev_time[i] <= 31_000_000);
                    assert!(
                        ok,
                        "purchase event {i} has no order of user {u} a few seconds after it"
                    );
                    assert_eq!(ev_uri[i], "/purchase");
                }
                "cancel" => assert!(ev_user[i].is_none(), "cancel only in anonymous sessions"),
                "department" => assert!(ev_uri[i].starts_with("/department/")),
                "product" => assert!(ev_uri[i].starts_with("/product/")),
                _ => {}
            }
        }
        assert_eq!(purchases, items.num_rows(), "one purchase session per item");

        // Within a session, events are strictly increasing in time and numbered 1, 2, 3, ...
        let mut sessions: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
        for i in 0..events.num_rows() {
            sessions
                .entry(ev_session[i].as_str())
                .or_default()
                .push((ev_seq[i], ev_time[i]));
        }
        for (sid, mut evs) in sessions {
            assert_eq!(sid.len(), 36);
            evs.sort_unstable();
            for (k, w) in evs.windows(2).enumerate() {
                assert!(w[0].1 < w[1].1, "session {sid} not increasing");
                assert_eq!(w[0].0, k as i64 + 1);
            }
        }
    }
}

#[test]
fn ids_are_sequential_and_references_hold() {
    let g = gen_ok(&cfg(1_000, 9, Profile::Signal));
    for (t, b) in &g.tables {
        let ids = req_i64s(b, t.key());
        assert!(
            ids.iter().enumerate().all(|(i, &id)| id == i as i64 + 1),
            "{t} ids are 1..=n"
        );
    }
    let orders = table(&g, Table::Orders);
    let items = table(&g, Table::OrderItems);
    let inv = table(&g, Table::InventoryItems);
    let products = table(&g, Table::Products);
    let order_created = tss(orders, "created_at");
    let order_user = req_i64s(orders, "user_id");
    let order_status = req_strs(orders, "status");
    let n_items = req_i64s(orders, "num_of_item");
    let inv_sold = tss(inv, "sold_at");
    let inv_product = req_i64s(inv, "product_id");
    let inv_created = tss(inv, "created_at");
    let price = f64s(products, "retail_price");
    let mut items_per_order: HashMap<i64, i64> = HashMap::new();
    let mut sold_rows = HashSet::new();
    let (oid, uid, pid, iid) = (
        req_i64s(items, "order_id"),
        req_i64s(items, "user_id"),
        req_i64s(items, "product_id"),
        req_i64s(items, "inventory_item_id"),
    );
    let (status, created, sale) = (
        req_strs(items, "status"),
        tss(items, "created_at"),
        f64s(items, "sale_price"),
    );
    for i in 0..items.num_rows() {
        let o = (oid[i] - 1) as usize;
        let v = (iid[i] - 1) as usize;
        *items_per_order.entry(oid[i]).or_default() += 1;
        assert_eq!(uid[i], order_user[o]);
        assert_eq!(status[i], order_status[o]);
        assert_eq!(created[i], order_created[o]);
        assert_eq!(inv_sold[v], order_created[o]);
        assert_eq!(inv_product[v], pid[i]);
        assert!(inv_created[v] < inv_sold[v]);
        assert_eq!(sale[i], price[(pid[i] - 1) as usize]);
        assert!(sold_rows.insert(v));
    }
    for (o, n) in n_items.iter().enumerate() {
        assert_eq!(
            items_per_order.get(&(o as i64 + 1)).copied().unwrap_or(0),
            *n
        );
    }
    assert_eq!(
        inv_sold.iter().filter(|s| s.is_some()).count(),
        items.num_rows()
    );
}

#[test]
fn truth_agrees_with_the_orders_table() {
    for seed in [1, 2, 3] {
        let g = gen_ok(&cfg(2_000, seed, Profile::Signal));
        let orders = table(&g, Table::Orders);
        let truth = g.truth.as_ref().expect("signal has truth");
        let expected = labels_from_orders(orders);
        let ids = req_i64s(truth, "order_id");
        let users = req_i64s(truth, "user_id");
        let anchor = tss(truth, "anchor_time");
        let p = f64s(truth, "p_true");
        let label = labels(truth);
        assert_eq!(
            ids.len(),
            expected.len(),
            "one truth row per Complete order"
        );
        let order_user = req_i64s(orders, "user_id");
        let order_created = tss(orders, "created_at");
        let mut positives = 0;
        for i in 0..ids.len() {
            let o = (ids[i] - 1) as usize;
            assert_eq!(users[i], order_user[o]);
            assert_eq!(anchor[i], order_created[o]);
            assert!(p[i] > 0.0 && p[i] < 1.0);
            assert_eq!(label.value(i), expected[&ids[i]], "order {} label", ids[i]);
            positives += usize::from(label.value(i));
        }
        let rate = positives as f64 / ids.len() as f64;
        assert!((0.10..=0.35).contains(&rate), "positive rate {rate}");
        // p_true is informative: positives have a clearly higher mean probability.
        let mean = |want: bool| {
            let v: Vec<f64> = (0..ids.len())
                .filter(|&i| label.value(i) == want)
                .map(|i| p[i])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(
            mean(true) > mean(false) + 0.1,
            "mean p_true {} vs {}",
            mean(true),
            mean(false)
        );
    }
}

#[test]
fn signal_labels_are_calibrated_where_the_window_is_closed() {
    // Anchors whose 60-day window ends before the end date: realised rate ≈ mean p_true.
    let g = gen_ok(&cfg(8_000, 17, Profile::Signal));
    let truth = g.truth.as_ref().expect("truth");
    let anchor = tss(truth, "anchor_time");
    let p = f64s(truth, "p_true");
    let label = labels(truth);
    let cutoff = end_exclusive_micros() - 60 * repurchase_core::run_date::DAY_US;
    let closed: Vec<usize> = (0..p.len())
        .filter(|&i| anchor[i].is_some_and(|a| a < cutoff))
        .collect();
    let mean_p = closed.iter().map(|&i| p[i]).sum::<f64>() / closed.len() as f64;
    let rate = closed.iter().filter(|&&i| label.value(i)).count() as f64 / closed.len() as f64;
    assert!(
        (mean_p - rate).abs() < 0.02,
        "mean p_true {mean_p} vs realised {rate} over {} anchors",
        closed.len()
    );
}

#[tokio::test]
async fn write_round_trip() {
    let g = gen_ok(&cfg(400, 6, Profile::Signal));
    let root = DataRoot::open("memory://datagen-test/csv", &StoreConfig::default()).expect("root");
    let summary = write(&root, &g, OutputFormat::Csv).await.expect("write");
    let listed: Vec<String> = root
        .list("")
        .await
        .expect("list")
        .iter()
        .map(|m| root.relative(&m.location))
        .collect();
    let mut expected: Vec<String> = Table::ALL
        .iter()
        .map(|t| format!("{}.csv", t.name()))
        .collect();
    expected.push(TRUTH_PATH.to_string());
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(summary.rows.len(), 8);
    assert!(summary.bytes > 0);
    for (t, b) in &g.tables {
        let text = root.get(&format!("{}.csv", t.name())).await.expect("get");
        let text = std::str::from_utf8(&text).expect("utf8");
        let header: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(text.lines().next(), Some(header.join(",").as_str()));
        assert_eq!(text.lines().count(), b.num_rows() + 1, "{t} line count");
        assert!(
            summary
                .rows
                .contains(&(t.name().to_string(), b.num_rows() as u64))
        );
    }
    let users = root.get("users.csv").await.expect("get");
    assert!(
        std::str::from_utf8(&users)
            .expect("utf8")
            .contains(" UTC\n")
    );

    let proot =
        DataRoot::open("memory://datagen-test/parquet", &StoreConfig::default()).expect("root");
    write(&proot, &g, OutputFormat::Parquet)
        .await
        .expect("write parquet");
    for (t, b) in g
        .tables
        .iter()
        .map(|(t, b)| (t.name().to_string(), b))
        .chain([(
            "truth/anchor_truth".into(),
            g.truth.as_ref().expect("truth"),
        )])
    {
        let bytes = proot.get(&format!("{t}.parquet")).await.expect("get");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("read");
        let back = arrow::compute::concat_batches(&b.schema(), &batches).expect("concat");
        assert_eq!(&back, b, "{t} survives a parquet round trip");
    }
}

/// Generation and CSV write of 100k users. Run with
/// `cargo test -p repurchase-datagen -- --ignored --nocapture timing_100k`.
#[tokio::test]
#[ignore]
async fn timing_100k() {
    for profile in [Profile::Thelook, Profile::Signal] {
        let c = cfg(100_000, 42, profile);
        let t0 = std::time::Instant::now();
        let g = gen_ok(&c);
        let gen_time = t0.elapsed();
        let root = DataRoot::open(
            &format!("memory://datagen-timing/{profile}"),
            &StoreConfig::default(),
        )
        .expect("root");
        let t1 = std::time::Instant::now();
        let summary = write(&root, &g, OutputFormat::Csv).await.expect("write");
        let write_time = t1.elapsed();
        println!(
            "profile {profile}: generate {gen_time:?}, csv write {write_time:?} ({} bytes)",
            summary.bytes
        );
        for (t, n) in &summary.rows {
            println!("  {t}: {n} rows");
        }
        if let Some(truth) = &g.truth {
            let label = labels(truth);
            println!(
                "  positive rate {:.3}",
                label.true_count() as f64 / truth.num_rows() as f64
            );
        }
        // Free the in-memory objects before the next profile.
        root.delete_prefix("").await.expect("cleanup");
    }
}

/// Orders per user, status shares and the positive rate at 20k users, for tuning the signal
/// profile. Run with `cargo test -p repurchase-datagen -- --ignored --nocapture signal_stats`.
#[test]
#[ignore]
fn signal_stats() {
    let g = gen_ok(&cfg(20_000, 42, Profile::Signal));
    let orders = table(&g, Table::Orders);
    println!("orders/user {:.3}", orders.num_rows() as f64 / 20_000.0);
    let mut s: Vec<_> = shares(&req_strs(orders, "status")).into_iter().collect();
    s.sort_by(|a, b| a.0.cmp(&b.0));
    println!("status {s:?}");
    let truth = g.truth.as_ref().expect("truth");
    let label = labels(truth);
    let p = f64s(truth, "p_true");
    println!(
        "anchors {} rate {:.3} mean p {:.3}",
        truth.num_rows(),
        label.true_count() as f64 / truth.num_rows() as f64,
        p.iter().sum::<f64>() / p.len() as f64
    );
    println!(
        "events/user {:.2}",
        table(&g, Table::Events).num_rows() as f64 / 20_000.0
    );
}

#[test]
fn repurchase_delays_follow_the_published_timing() {
    // The oracle conditions p_true on `repurchase_delay_cdf`: the delays of the generated
    // repurchases (anchor → the next Complete order of a repurchased anchor) must follow it.
    let g = gen_ok(&cfg(8_000, 29, Profile::Signal));
    let orders = table(&g, Table::Orders);
    let truth = g.truth.as_ref().expect("truth");
    let users = req_i64s(truth, "user_id");
    let anchor = tss(truth, "anchor_time");
    let label = labels(truth);
    let (o_user, o_created, o_status) = (
        req_i64s(orders, "user_id"),
        tss(orders, "created_at"),
        req_strs(orders, "status"),
    );
    let mut complete: HashMap<i64, Vec<i64>> = HashMap::new();
    for i in 0..o_user.len() {
        if o_status[i] == "Complete" {
            complete
                .entry(o_user[i])
                .or_default()
                .push(o_created[i].expect("created"));
        }
    }
    let mut delays: Vec<f64> = (0..users.len())
        .filter(|&i| label.value(i))
        .map(|i| {
            let a = anchor[i].expect("anchor");
            let next = complete[&users[i]]
                .iter()
                .filter(|&&c| c > a)
                .min()
                .expect("a repurchased anchor has a later Complete order");
            (next - a) as f64 / 86_400e6
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let n = delays.len();
    assert!(n > 500, "{n} repurchases");
    // Kolmogorov–Smirnov distance; 1.63/√n is the 1% critical value.
    let ks = delays
        .iter()
        .enumerate()
        .map(|(k, &d)| {
            let f = crate::repurchase_delay_cdf(d);
            (f - k as f64 / n as f64)
                .abs()
                .max((f - (k + 1) as f64 / n as f64).abs())
        })
        .fold(0.0, f64::max);
    assert!(ks < 1.63 / (n as f64).sqrt(), "KS {ks:.4} over {n} delays");
    assert_eq!(crate::repurchase_delay_cdf(0.0), 0.0);
    assert_eq!(crate::repurchase_delay_cdf(60.0), 1.0);
    assert_eq!(crate::repurchase_delay_cdf(f64::NAN), 0.0);
}

/// Bytes of every file below `root`, by root-relative path.
async fn files(root: &DataRoot) -> BTreeMap<String, bytes::Bytes> {
    let mut out = BTreeMap::new();
    for meta in root.list("").await.expect("list") {
        let rel = root.relative(&meta.location);
        let bytes = root.get(&rel).await.expect("get");
        out.insert(rel, bytes);
    }
    out
}

/// The files as the generator wrote them before it streamed: each table whole, in one batch,
/// encoded at once (its CSV header and rows, or `parquet_io::encode` of the batch).
fn encoded_whole(g: &Generated, format: OutputFormat) -> BTreeMap<String, Vec<u8>> {
    let parquet = |b: &RecordBatch| parquet_io::encode(&b.schema(), std::slice::from_ref(b));
    let mut out = BTreeMap::new();
    for (t, b) in &g.tables {
        let bytes = match format {
            OutputFormat::Csv => {
                let mut text = crate::csv::header(&b.schema());
                text.extend(crate::csv::rows(b).expect("csv"));
                text
            }
            OutputFormat::Parquet => parquet(b).expect("parquet"),
        };
        out.insert(format!("{}.{format}", t.name()), bytes);
    }
    if let Some(truth) = &g.truth {
        out.insert(TRUTH_PATH.into(), parquet(truth).expect("parquet"));
    }
    out
}

fn assert_same_files(
    what: &str,
    got: &BTreeMap<String, bytes::Bytes>,
    want: &BTreeMap<String, Vec<u8>>,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: files"
    );
    for (path, bytes) in want {
        // Compared without printing megabytes on a mismatch.
        assert!(
            got[path].as_ref() == bytes.as_slice(),
            "{what}: {path} differs ({} bytes, expected {})",
            got[path].len(),
            bytes.len()
        );
    }
}

#[tokio::test]
async fn streaming_writes_the_bytes_of_the_whole_tables_encoded_at_once() {
    // Chunks of 700 users: a row group spans several chunks and is cut inside one. The thelook
    // events (~24 per user) fill more than one row group and more than `write` formats at once.
    const CHUNK: u64 = 700;
    for (profile, users) in [(Profile::Thelook, 14_000), (Profile::Signal, 3_000)] {
        let c = cfg(users, 8, profile);
        // One chunk: the tables exactly as the pre-streaming generator built them.
        let whole = generate_chunked(&c, u64::MAX).expect("generate");
        let in_chunks = generate_chunked(&c, CHUNK).expect("generate in chunks");
        for ((t, a), (_, b)) in whole.tables.iter().zip(&in_chunks.tables) {
            assert_eq!(a, b, "{t} depends on the chunk size");
        }
        assert_eq!(whole.truth, in_chunks.truth);
        let rows: Vec<(String, u64)> = whole
            .tables
            .iter()
            .map(|(t, b)| (t.name().to_string(), b.num_rows() as u64))
            .chain(
                whole
                    .truth
                    .iter()
                    .map(|b| ("anchor_truth".to_string(), b.num_rows() as u64)),
            )
            .collect();

        for format in [OutputFormat::Csv, OutputFormat::Parquet] {
            let want = encoded_whole(&whole, format);
            let what = format!("{profile} {format}");
            let root = DataRoot::open(
                &format!("memory://datagen-stream/{profile}/{format}"),
                &StoreConfig::default(),
            )
            .expect("root");
            let summary = stream::stream(&root, &c, format, CHUNK)
                .await
                .expect("stream");
            assert_eq!(summary.rows, rows, "{what}: rows");
            let got = files(&root).await;
            assert_eq!(
                summary.bytes,
                got.values().map(|b| b.len() as u64).sum::<u64>()
            );
            assert_same_files(&format!("{what} streamed"), &got, &want);

            let root = DataRoot::open(
                &format!("memory://datagen-write/{profile}/{format}"),
                &StoreConfig::default(),
            )
            .expect("root");
            write(&root, &whole, format).await.expect("write");
            assert_same_files(&format!("{what} written"), &files(&root).await, &want);

            if profile == Profile::Thelook && format == OutputFormat::Parquet {
                let events = got["events.parquet"].clone();
                let meta = parquet::file::serialized_reader::SerializedFileReader::new(events)
                    .expect("parquet");
                let groups = parquet::file::reader::FileReader::metadata(&meta).num_row_groups();
                assert!(groups >= 2, "events has {groups} row group(s)");
            }
        }
    }
}

#[tokio::test]
async fn an_aborted_file_leaves_nothing() {
    let dir = std::env::temp_dir().join(format!("datagen-abort-{}", std::process::id()));
    let root = DataRoot::open(&dir.to_string_lossy(), &StoreConfig::default()).expect("root");
    let events = table(&gen_ok(&cfg(2_000, 4, Profile::Thelook)), Table::Events).clone();
    let output = Output::Table(Table::Events);
    // Past one multipart part (10 MiB) each, so an upload is under way when it is given up: ~10
    // MB of CSV per push, and Parquet bytes only once a row group of 262,144 rows fills.
    for (format, pushes) in [(OutputFormat::Csv, 3), (OutputFormat::Parquet, 12)] {
        let mut w = TableWriter::open(&root, output, format)
            .await
            .expect("open");
        for _ in 0..pushes {
            let piece = Piece::new(output, events.clone(), format).expect("piece");
            w.push(piece).await.expect("push");
        }
        w.abort().await;
        // On disk, not through the store's listing, which hides upload staging files.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{format}: {left:?} left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
