//! Turns simulated rows into Arrow record batches with exactly the schemas of
//! [`repurchase_core::schema::Table`], assigning the global ids from per-chunk offsets.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use repurchase_core::schema::{Table, ts_type};

use crate::catalog::Catalog;
use crate::error::DatagenError;
use crate::reference::Reference;
use crate::simulate::{BROWSERS, Chunk, EVENT_TRAFFIC, EventKind, USER_TRAFFIC};
use crate::write::Output;

/// Rows of every id-bearing table that come before a chunk; a row's id is `offset + index + 1`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Offsets {
    pub order: i64,
    pub item: i64,
    pub inventory: i64,
    pub event: i64,
}

impl Offsets {
    pub(crate) fn after(self, chunk: &Chunk) -> Offsets {
        Offsets {
            order: self.order + chunk.orders.len() as i64,
            item: self.item + chunk.items.len() as i64,
            inventory: self.inventory + chunk.inventory.len() as i64,
            event: self.event + chunk.events.len() as i64,
        }
    }
}

/// Batches of one chunk, in the order users, orders, order_items, inventory_items, events, truth.
pub(crate) struct ChunkBatches {
    pub users: RecordBatch,
    pub orders: RecordBatch,
    pub items: RecordBatch,
    pub inventory: RecordBatch,
    pub events: RecordBatch,
    pub truth: RecordBatch,
}

impl ChunkBatches {
    /// The file each batch of [`ChunkBatches::into_batches`] belongs to, in the same order.
    pub(crate) const OUTPUTS: [Output; 6] = [
        Output::Table(Table::Users),
        Output::Table(Table::Orders),
        Output::Table(Table::OrderItems),
        Output::Table(Table::InventoryItems),
        Output::Table(Table::Events),
        Output::Truth,
    ];

    /// The batches in the order of [`ChunkBatches::OUTPUTS`].
    pub(crate) fn into_batches(self) -> [RecordBatch; 6] {
        [
            self.users,
            self.orders,
            self.items,
            self.inventory,
            self.events,
            self.truth,
        ]
    }
}

/// Schema of the truth table: per Complete anchor order, the true probability of a Complete
/// follow-up within 60 days (`p_true`) and whether one happened (`repurchased`).
pub fn truth_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("anchor_time", ts_type(), false),
        Field::new("p_true", DataType::Float64, false),
        Field::new("repurchased", DataType::Boolean, false),
    ]))
}

pub(crate) fn chunk_batches(
    chunk: &Chunk,
    off: Offsets,
    catalog: &Catalog,
    reference: &Reference,
) -> Result<ChunkBatches, DatagenError> {
    Ok(ChunkBatches {
        users: users(chunk, reference)?,
        orders: orders(chunk, off)?,
        items: order_items(chunk, off, catalog)?,
        inventory: inventory(chunk, off, catalog)?,
        events: events(chunk, off, catalog, reference)?,
        truth: truth(chunk, off)?,
    })
}

fn batch(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, DatagenError> {
    RecordBatch::try_new(table.schema(), columns).map_err(|source| DatagenError::Arrow {
        table: table.name().into(),
        source,
    })
}

fn ids(offset: i64, n: usize) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        (0..n as i64).map(|i| offset + i + 1),
    ))
}

fn ints(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn floats(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn strs<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn ts(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

fn ts_opt(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(
        values
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

fn users(chunk: &Chunk, reference: &Reference) -> Result<RecordBatch, DatagenError> {
    let u = &chunk.users;
    let loc = |i: u32| &reference.locations[i as usize];
    let mut email = StringBuilder::with_capacity(u.len(), u.len() * 32);
    let mut street = StringBuilder::with_capacity(u.len(), u.len() * 24);
    let mut buf = String::new();
    for r in u {
        buf.clear();
        // Writing to a String cannot fail.
        let _ = write!(buf, "{}.{}{}@example.com", r.first_name, r.last_name, r.id);
        buf.make_ascii_lowercase();
        email.append_value(&buf);
        buf.clear();
        let _ = write!(buf, "{} {} {}", r.street_number, r.street, r.street_suffix);
        street.append_value(&buf);
    }
    batch(
        Table::Users,
        vec![
            ints(u.iter().map(|r| r.id)),
            strs(u.iter().map(|r| r.first_name)),
            strs(u.iter().map(|r| r.last_name)),
            Arc::new(email.finish()),
            ints(u.iter().map(|r| i64::from(r.age))),
            strs(u.iter().map(|r| r.gender.code())),
            strs(u.iter().map(|r| loc(r.location).state)),
            Arc::new(street.finish()),
            strs(u.iter().map(|r| loc(r.location).postal_code)),
            strs(u.iter().map(|r| loc(r.location).city)),
            strs(u.iter().map(|r| loc(r.location).country)),
            floats(u.iter().map(|r| r.latitude)),
            floats(u.iter().map(|r| r.longitude)),
            strs(u.iter().map(|r| USER_TRAFFIC[r.traffic as usize])),
            ts(u.iter().map(|r| r.created_at)),
        ],
    )
}

fn orders(chunk: &Chunk, off: Offsets) -> Result<RecordBatch, DatagenError> {
    let o = &chunk.orders;
    batch(
        Table::Orders,
        vec![
            ids(off.order, o.len()),
            ints(o.iter().map(|r| r.user_id)),
            strs(o.iter().map(|r| r.status.name())),
            strs(o.iter().map(|r| r.gender.code())),
            ts(o.iter().map(|r| r.created_at)),
            ts_opt(o.iter().map(|r| r.returned_at)),
            ts_opt(o.iter().map(|r| r.shipped_at)),
            ts_opt(o.iter().map(|r| r.delivered_at)),
            ints(o.iter().map(|r| i64::from(r.num_of_item))),
        ],
    )
}

fn order_items(
    chunk: &Chunk,
    off: Offsets,
    catalog: &Catalog,
) -> Result<RecordBatch, DatagenError> {
    let it = &chunk.items;
    let order = |i: usize| &chunk.orders[it[i].order as usize];
    let n = it.len();
    batch(
        Table::OrderItems,
        vec![
            ids(off.item, n),
            ints(it.iter().map(|r| off.order + i64::from(r.order) + 1)),
            ints((0..n).map(|i| order(i).user_id)),
            ints(it.iter().map(|r| catalog.product(r.product).id)),
            ints(
                it.iter()
                    .map(|r| off.inventory + i64::from(r.inventory) + 1),
            ),
            strs((0..n).map(|i| order(i).status.name())),
            ts((0..n).map(|i| order(i).created_at)),
            ts_opt((0..n).map(|i| order(i).shipped_at)),
            ts_opt((0..n).map(|i| order(i).delivered_at)),
            ts_opt((0..n).map(|i| order(i).returned_at)),
            floats(it.iter().map(|r| catalog.product(r.product).retail_price)),
        ],
    )
}

fn inventory(chunk: &Chunk, off: Offsets, catalog: &Catalog) -> Result<RecordBatch, DatagenError> {
    let inv = &chunk.inventory;
    let p = |i: usize| catalog.product(inv[i].product);
    let n = inv.len();
    batch(
        Table::InventoryItems,
        vec![
            ids(off.inventory, n),
            ints((0..n).map(|i| p(i).id)),
            ts(inv.iter().map(|r| r.created_at)),
            ts_opt(inv.iter().map(|r| r.sold_at)),
            floats((0..n).map(|i| p(i).cost)),
            strs((0..n).map(|i| catalog.category_of(inv[i].product).name)),
            strs((0..n).map(|i| p(i).name.as_str())),
            strs((0..n).map(|i| catalog.brands[p(i).brand as usize].as_str())),
            floats((0..n).map(|i| p(i).retail_price)),
            strs((0..n).map(|i| catalog.category_of(inv[i].product).dept.name())),
            strs((0..n).map(|i| p(i).sku.as_str())),
            ints((0..n).map(|i| p(i).distribution_center_id)),
        ],
    )
}

fn events(
    chunk: &Chunk,
    off: Offsets,
    catalog: &Catalog,
    reference: &Reference,
) -> Result<RecordBatch, DatagenError> {
    let ev = &chunk.events;
    let n = ev.len();
    let session = |i: usize| &chunk.sessions[ev[i].session as usize];
    let loc = |i: usize| &reference.locations[session(i).location as usize];

    // Session id and IP are the same for all events of a session, and a session's events are
    // contiguous, so each is formatted once per session.
    let mut session_ids = StringBuilder::with_capacity(n, n * 36);
    let mut ips = StringBuilder::with_capacity(n, n * 14);
    let mut uris = StringBuilder::with_capacity(n, n * 24);
    let mut sid_buf = String::with_capacity(36);
    let mut ip_buf = String::with_capacity(16);
    let mut uri_buf = String::with_capacity(80);
    let mut last_session = u32::MAX;
    for e in ev {
        if e.session != last_session {
            last_session = e.session;
            let s = &chunk.sessions[e.session as usize];
            sid_buf.clear();
            let h = s.id;
            let _ = write!(
                sid_buf,
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (h >> 96) as u32,
                (h >> 80) as u16,
                (h >> 64) as u16,
                (h >> 48) as u16,
                (h & 0xFFFF_FFFF_FFFF) as u64
            );
            ip_buf.clear();
            let [a, b, c, d] = s.ip.to_be_bytes();
            let _ = write!(ip_buf, "{a}.{b}.{c}.{d}");
        }
        session_ids.append_value(&sid_buf);
        ips.append_value(&ip_buf);
        match e.kind {
            EventKind::Department => {
                let p = catalog.product(e.product);
                let cat = catalog.category_of(e.product);
                uri_buf.clear();
                let _ = write!(
                    uri_buf,
                    "/department/{}/category/{}/brand/{}",
                    cat.dept.slug(),
                    cat.slug,
                    catalog.brand_slugs[p.brand as usize]
                );
                uris.append_value(&uri_buf);
            }
            EventKind::Product => {
                uri_buf.clear();
                let _ = write!(uri_buf, "/product/{}", catalog.product(e.product).id);
                uris.append_value(&uri_buf);
            }
            EventKind::Home => uris.append_value("/home"),
            EventKind::Cart => uris.append_value("/cart"),
            EventKind::Purchase => uris.append_value("/purchase"),
            EventKind::Cancel => uris.append_value("/cancel"),
        }
    }

    batch(
        Table::Events,
        vec![
            ids(off.event, n),
            Arc::new((0..n).map(|i| session(i).user_id).collect::<Int64Array>()),
            ints(ev.iter().map(|e| i64::from(e.sequence_number))),
            Arc::new(session_ids.finish()),
            ts(ev.iter().map(|e| e.created_at)),
            Arc::new(ips.finish()),
            strs((0..n).map(|i| loc(i).city)),
            strs((0..n).map(|i| loc(i).state)),
            strs((0..n).map(|i| loc(i).postal_code)),
            strs((0..n).map(|i| BROWSERS[session(i).browser as usize])),
            strs((0..n).map(|i| EVENT_TRAFFIC[session(i).traffic as usize])),
            Arc::new(uris.finish()),
            strs(ev.iter().map(|e| e.kind.name())),
        ],
    )
}

fn truth(chunk: &Chunk, off: Offsets) -> Result<RecordBatch, DatagenError> {
    let t = &chunk.truth;
    RecordBatch::try_new(
        truth_schema(),
        vec![
            ints(t.iter().map(|r| off.order + i64::from(r.order) + 1)),
            ints(t.iter().map(|r| r.user_id)),
            ts(t.iter().map(|r| r.anchor_time)),
            floats(t.iter().map(|r| r.p_true)),
            Arc::new(
                t.iter()
                    .map(|r| Some(r.repurchased))
                    .collect::<BooleanArray>(),
            ),
        ],
    )
    .map_err(|source| DatagenError::Arrow {
        table: "anchor_truth".into(),
        source,
    })
}

pub(crate) fn products(catalog: &Catalog) -> Result<RecordBatch, DatagenError> {
    let p = &catalog.products;
    batch(
        Table::Products,
        vec![
            ints(p.iter().map(|r| r.id)),
            floats(p.iter().map(|r| r.cost)),
            strs(
                p.iter()
                    .map(|r| catalog.categories[r.category as usize].name),
            ),
            strs(p.iter().map(|r| r.name.as_str())),
            strs(p.iter().map(|r| catalog.brands[r.brand as usize].as_str())),
            floats(p.iter().map(|r| r.retail_price)),
            strs(
                p.iter()
                    .map(|r| catalog.categories[r.category as usize].dept.name()),
            ),
            strs(p.iter().map(|r| r.sku.as_str())),
            ints(p.iter().map(|r| r.distribution_center_id)),
        ],
    )
}

pub(crate) fn distribution_centers(reference: &Reference) -> Result<RecordBatch, DatagenError> {
    let c = &reference.centers;
    batch(
        Table::DistributionCenters,
        vec![
            ints(c.iter().map(|r| r.id)),
            strs(c.iter().map(|r| r.name)),
            floats(c.iter().map(|r| r.latitude)),
            floats(c.iter().map(|r| r.longitude)),
        ],
    )
}

/// Concatenates per-chunk batches column by column, releasing each column's pieces as soon as
/// it is joined so the peak stays near one copy of the table.
pub(crate) fn concat(
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<RecordBatch, DatagenError> {
    let err = |source| DatagenError::Arrow {
        table: name.to_string(),
        source,
    };
    if batches.len() == 1 {
        if let Some(b) = batches.into_iter().next() {
            return Ok(b);
        }
        return Ok(RecordBatch::new_empty(schema));
    }
    if batches.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let ncols = schema.fields().len();
    let mut by_column: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(batches.len()); ncols];
    for b in batches {
        let (_, columns, _) = b.into_parts();
        for (c, a) in columns.into_iter().enumerate() {
            by_column[c].push(a);
        }
    }
    let mut columns = Vec::with_capacity(ncols);
    for pieces in by_column.iter_mut() {
        let pieces = std::mem::take(pieces);
        let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
        columns.push(arrow::compute::concat(&refs).map_err(err)?);
    }
    RecordBatch::try_new(schema, columns).map_err(err)
}
