//! TheLook's seven tables: exact column names, Arrow types, keys.
//!
//! These are the BigQuery types of `bigquery-public-data.thelook_ecommerce` mapped to Arrow
//! (INTEGER → Int64, FLOAT → Float64, STRING → Utf8, TIMESTAMP → Timestamp(µs, UTC)). Every raw
//! partition is written with exactly these schemas, so downstream SQL can rely on them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::CoreError;

/// Arrow type of every timestamp column.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The seven TheLook tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Customers.
    Users,
    /// Orders and their status history.
    Orders,
    /// One row per item ordered.
    OrderItems,
    /// The catalogue.
    Products,
    /// Stock units, one per item received.
    InventoryItems,
    /// Web sessions' page events.
    Events,
    /// The warehouses.
    DistributionCenters,
}

/// Column kinds used to build schemas compactly.
#[derive(Clone, Copy)]
enum K {
    Int,
    Float,
    Str,
    Ts,
}

impl Table {
    /// Every table, in the order they are extracted.
    pub const ALL: [Table; 7] = [
        Table::Users,
        Table::Orders,
        Table::OrderItems,
        Table::Products,
        Table::InventoryItems,
        Table::Events,
        Table::DistributionCenters,
    ];

    /// The table's name in TheLook (and the folder name under `raw/`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Orders => "orders",
            Table::OrderItems => "order_items",
            Table::Products => "products",
            Table::InventoryItems => "inventory_items",
            Table::Events => "events",
            Table::DistributionCenters => "distribution_centers",
        }
    }

    /// Primary-key column.
    pub fn key(self) -> &'static str {
        match self {
            Table::Orders => "order_id",
            _ => "id",
        }
    }

    /// Column that dates a row; rows dated at or after the end of the run date are not extracted.
    /// Reference tables (products, distribution centres) have none.
    pub fn time_column(self) -> Option<&'static str> {
        match self {
            Table::Products | Table::DistributionCenters => None,
            _ => Some("created_at"),
        }
    }

    fn columns(self) -> &'static [(&'static str, K)] {
        use K::*;
        match self {
            Table::Users => &[
                ("id", Int),
                ("first_name", Str),
                ("last_name", Str),
                ("email", Str),
                ("age", Int),
                ("gender", Str),
                ("state", Str),
                ("street_address", Str),
                ("postal_code", Str),
                ("city", Str),
                ("country", Str),
                ("latitude", Float),
                ("longitude", Float),
                ("traffic_source", Str),
                ("created_at", Ts),
            ],
            Table::Orders => &[
                ("order_id", Int),
                ("user_id", Int),
                ("status", Str),
                ("gender", Str),
                ("created_at", Ts),
                ("returned_at", Ts),
                ("shipped_at", Ts),
                ("delivered_at", Ts),
                ("num_of_item", Int),
            ],
            Table::OrderItems => &[
                ("id", Int),
                ("order_id", Int),
                ("user_id", Int),
                ("product_id", Int),
                ("inventory_item_id", Int),
                ("status", Str),
                ("created_at", Ts),
                ("shipped_at", Ts),
                ("delivered_at", Ts),
                ("returned_at", Ts),
                ("sale_price", Float),
            ],
            Table::Products => &[
                ("id", Int),
                ("cost", Float),
                ("category", Str),
                ("name", Str),
                ("brand", Str),
                ("retail_price", Float),
                ("department", Str),
                ("sku", Str),
                ("distribution_center_id", Int),
            ],
            Table::InventoryItems => &[
                ("id", Int),
                ("product_id", Int),
                ("created_at", Ts),
                ("sold_at", Ts),
                ("cost", Float),
                ("product_category", Str),
                ("product_name", Str),
                ("product_brand", Str),
                ("product_retail_price", Float),
                ("product_department", Str),
                ("product_sku", Str),
                ("product_distribution_center_id", Int),
            ],
            Table::Events => &[
                ("id", Int),
                ("user_id", Int),
                ("sequence_number", Int),
                ("session_id", Str),
                ("created_at", Ts),
                ("ip_address", Str),
                ("city", Str),
                ("state", Str),
                ("postal_code", Str),
                ("browser", Str),
                ("traffic_source", Str),
                ("uri", Str),
                ("event_type", Str),
            ],
            Table::DistributionCenters => &[
                ("id", Int),
                ("name", Str),
                ("latitude", Float),
                ("longitude", Float),
            ],
        }
    }

    /// Columns that must never be null: keys, and the columns the pipeline joins or filters on.
    /// Everything else is nullable as in BigQuery.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Table::Users => &["id", "created_at"],
            Table::Orders => &["order_id", "user_id", "status", "created_at"],
            Table::OrderItems => &["id", "order_id", "user_id", "product_id", "created_at"],
            Table::Products => &["id"],
            Table::InventoryItems => &["id", "product_id", "created_at"],
            Table::Events => &["id", "created_at"],
            Table::DistributionCenters => &["id"],
        }
    }

    /// The Arrow schema a raw partition of the table has.
    pub fn schema(self) -> SchemaRef {
        let required = self.required();
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|(name, kind)| {
                let dt = match kind {
                    K::Int => DataType::Int64,
                    K::Float => DataType::Float64,
                    K::Str => DataType::Utf8,
                    K::Ts => ts_type(),
                };
                Field::new(*name, dt, !required.contains(name))
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Table {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| CoreError::UnknownTable {
                value: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_have_thelook_columns() {
        let orders = Table::Orders.schema();
        let names: Vec<&str> = orders.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "order_id",
                "user_id",
                "status",
                "gender",
                "created_at",
                "returned_at",
                "shipped_at",
                "delivered_at",
                "num_of_item"
            ]
        );
        assert_eq!(Table::Events.schema().fields().len(), 13);
        assert_eq!(Table::Users.schema().fields().len(), 15);
        assert_eq!(Table::InventoryItems.schema().fields().len(), 12);
        assert!(
            !Table::Orders
                .schema()
                .field_with_name("user_id")
                .unwrap()
                .is_nullable()
        );
        assert_eq!("order_items".parse::<Table>().unwrap(), Table::OrderItems);
        assert!("orders; drop".parse::<Table>().is_err());
    }
}
