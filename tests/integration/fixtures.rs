//! Small hand-built TheLook datasets, written as Parquet exports for `extract` to read.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use repurchase_core::DataRoot;
use repurchase_core::schema::Table;

pub fn ts(s: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .expect("fixture timestamp")
        .and_utc()
        .timestamp_micros()
}

#[derive(Clone, Debug)]
pub struct Order {
    pub id: i64,
    pub user: i64,
    pub status: &'static str,
    pub created: i64,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub user: Option<i64>,
    pub created: i64,
    pub source: &'static str,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Fixture {
    /// (user id, signed-up-at)
    pub users: Vec<(i64, i64)>,
    pub orders: Vec<Order>,
    pub events: Vec<Event>,
}

/// One dynamically typed cell, to build any table column by column.
#[derive(Clone, Debug)]
pub enum V {
    I(i64),
    F(f64),
    S(String),
    T(i64),
    Null,
}

pub fn s(v: &str) -> V {
    V::S(v.to_string())
}

/// The cells of one column, each kept when it is the `$variant` cell and null otherwise.
macro_rules! column {
    ($cells:expr, $array:ty, $variant:path) => {
        $cells
            .map(|v| match v {
                $variant(x) => Some(x),
                _ => None,
            })
            .collect::<$array>()
    };
}

pub fn build(schema: &SchemaRef, rows: &[Vec<V>]) -> RecordBatch {
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (c, field) in schema.fields().iter().enumerate() {
        let cells = rows.iter().map(|r| r[c].clone());
        let arr: ArrayRef = match field.data_type() {
            DataType::Int64 => Arc::new(column!(cells, Int64Array, V::I)),
            DataType::Float64 => Arc::new(column!(cells, Float64Array, V::F)),
            DataType::Utf8 => Arc::new(column!(cells, StringArray, V::S)),
            _ => Arc::new(column!(cells, TimestampMicrosecondArray, V::T).with_timezone("UTC")),
        };
        cols.push(arr);
    }
    RecordBatch::try_new(schema.clone(), cols).expect("fixture batch")
}

const HOUR: i64 = 3_600_000_000;

impl Fixture {
    pub fn tables(&self) -> Vec<(Table, RecordBatch)> {
        let users: Vec<Vec<V>> = self
            .users
            .iter()
            .map(|(id, created)| {
                vec![
                    V::I(*id),
                    s("Ann"),
                    s("Lee"),
                    s("a@example.com"),
                    V::I(30),
                    s("F"),
                    s("Texas"),
                    s("1 Main St"),
                    s("77084"),
                    s("Houston"),
                    s("United States"),
                    V::F(29.8),
                    V::F(-95.6),
                    s("Search"),
                    V::T(*created),
                ]
            })
            .collect();
        // The one product's columns after its id, which inventory items repeat after theirs.
        let product = [
            V::F(12.5),
            s("Jeans"),
            s("Nice Jeans"),
            s("Acme"),
            V::F(25.0),
            s("Women"),
            s("SKU1"),
            V::I(1),
        ];
        let mut orders = Vec::new();
        let mut items = Vec::new();
        let mut inventory = Vec::new();
        for o in &self.orders {
            let shipped =
                matches!(o.status, "Complete" | "Returned" | "Shipped").then_some(o.created + HOUR);
            let delivered =
                matches!(o.status, "Complete" | "Returned").then_some(o.created + 2 * HOUR);
            let returned = (o.status == "Returned").then_some(o.created + 3 * HOUR);
            let t = |x: Option<i64>| x.map_or(V::Null, V::T);
            orders.push(vec![
                V::I(o.id),
                V::I(o.user),
                s(o.status),
                s("F"),
                V::T(o.created),
                t(returned),
                t(shipped),
                t(delivered),
                V::I(1),
            ]);
            items.push(vec![
                V::I(o.id * 10),
                V::I(o.id),
                V::I(o.user),
                V::I(1),
                V::I(o.id * 10),
                s(o.status),
                V::T(o.created),
                t(shipped),
                t(delivered),
                t(returned),
                V::F(25.0),
            ]);
            let mut row = vec![
                V::I(o.id * 10),
                V::I(1),
                V::T(o.created - HOUR),
                V::T(o.created),
            ];
            row.extend(product.iter().cloned());
            inventory.push(row);
        }
        let mut all_events = self.events.clone();
        if all_events.is_empty() {
            // extract refuses an empty table; one anonymous visit changes no feature.
            all_events.push(Event {
                user: None,
                created: self.users.first().map_or(0, |u| u.1),
                source: "Email",
                kind: "home",
            });
        }
        let events: Vec<Vec<V>> = all_events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                vec![
                    V::I(i as i64 + 1),
                    e.user.map_or(V::Null, V::I),
                    V::I(1),
                    V::S(format!("session-{i}")),
                    V::T(e.created),
                    s("10.0.0.1"),
                    s("Houston"),
                    s("Texas"),
                    s("77084"),
                    s("Chrome"),
                    s(e.source),
                    s("/home"),
                    s(e.kind),
                ]
            })
            .collect();
        let products: Vec<Vec<V>> = vec![[V::I(1)].into_iter().chain(product).collect()];
        let dcs = vec![vec![V::I(1), s("Memphis TN"), V::F(35.1), V::F(-89.9)]];
        let mut out = vec![
            (Table::Users, build(&Table::Users.schema(), &users)),
            (Table::Orders, build(&Table::Orders.schema(), &orders)),
            (
                Table::OrderItems,
                build(&Table::OrderItems.schema(), &items),
            ),
            (Table::Products, build(&Table::Products.schema(), &products)),
            (
                Table::InventoryItems,
                build(&Table::InventoryItems.schema(), &inventory),
            ),
            (
                Table::DistributionCenters,
                build(&Table::DistributionCenters.schema(), &dcs),
            ),
            (Table::Events, build(&Table::Events.schema(), &events)),
        ];
        out.sort_by_key(|(t, _)| *t);
        out
    }

    /// Writes the fixture as `<table>.parquet` files.
    pub async fn write(&self, root: &DataRoot) {
        for (table, batch) in self.tables() {
            let bytes =
                repurchase_core::parquet_io::encode(&table.schema(), &[batch]).expect("encode");
            root.put(&format!("{}.parquet", table.name()), Bytes::from(bytes))
                .await
                .expect("put");
        }
    }
}
