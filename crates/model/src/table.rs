//! A feature partition in memory: identifiers, label and feature columns.
//!
//! Which columns are features is decided here, once: every column that is not a meta column
//! (user, anchor order, anchor time, label) is a feature — numbers as numbers, text as categories —
//! and a column that looks like an identifier is refused outright, because TheLook assigns IDs
//! user by user and any ID-derived feature leaks the future.

use std::collections::BTreeMap;

use crate::error::ModelError;
use arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

/// Columns of a feature table that are never model features: identifiers, the anchor time and
/// everything about the outcome (the label, a repurchase seen so far, the days it took, an order
/// inside the window still in transit).
pub const META_COLUMNS: [&str; 7] = [
    "user_id",
    "order_id",
    "anchor_time",
    "label",
    "repurchased_so_far",
    "days_to_repurchase",
    "repurchase_pending",
];

/// How a feature column enters the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// An Int64 or Float64 column, used as a number (null: missing, NaN).
    Numeric,
    /// A text column, target-encoded ([`crate::encoding::TargetEncoder`]).
    Categorical,
}

/// One model feature: a column name and how it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Column name in the feature partition.
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
}

/// True for names that denote surrogate identifiers (`id`, `*_id`, `sku`, …).
pub fn is_identifier(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id"
        || n.ends_with("_id")
        || n.ends_with("_ids")
        || n.contains("sku")
        || n.starts_with("id_")
}

/// A feature partition in memory, one entry per row (anchor order) in every column.
#[derive(Debug, Clone, Default)]
pub struct FeatureTable {
    /// The customer of each row (-1 where null).
    pub user_id: Vec<i64>,
    /// The anchor order of each row (-1 where null).
    pub order_id: Vec<i64>,
    /// Anchor time, microseconds since the Unix epoch (`i64::MIN` where null).
    pub anchor_us: Vec<i64>,
    /// Whether the customer repurchased inside the window after the anchor; present for labelled
    /// partitions.
    pub label: Option<Vec<bool>>,
    /// "Already repurchased inside the open window" for score partitions.
    pub repurchased_so_far: Option<Vec<bool>>,
    /// An order inside the window still in transit on the run date, where the partition has it.
    pub repurchase_pending: Option<Vec<bool>>,
    /// Days from the anchor to the repurchase (NaN when none is known), where the partition has it.
    pub days_to_repurchase: Option<Vec<f64>>,
    /// The feature columns, in the partition's column order (meta columns excluded).
    pub specs: Vec<FeatureSpec>,
    /// Numeric feature columns by name, as f64; NaN marks a missing value.
    pub numeric: BTreeMap<String, Vec<f64>>,
    /// Categorical feature columns by name; `None` marks a missing value.
    pub categorical: BTreeMap<String, Vec<Option<String>>>,
}

impl FeatureTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.order_id.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.order_id.is_empty()
    }

    /// Builds the table from feature-partition batches (all with the same schema).
    pub fn from_batches(batches: &[RecordBatch]) -> Result<FeatureTable, ModelError> {
        let mut t = FeatureTable::default();
        let Some(first) = batches.first() else {
            return Ok(t);
        };
        let schema = first.schema();
        for f in schema.fields() {
            if META_COLUMNS.contains(&f.name().as_str()) {
                continue;
            }
            if is_identifier(f.name()) {
                return Err(ModelError::IdentifierFeature {
                    column: f.name().clone(),
                });
            }
            let kind = match f.data_type() {
                DataType::Float64 | DataType::Int64 => FeatureKind::Numeric,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                    FeatureKind::Categorical
                }
                other => {
                    return Err(ModelError::table(format!(
                        "feature {:?} has unsupported type {other}",
                        f.name()
                    )));
                }
            };
            t.specs.push(FeatureSpec {
                name: f.name().clone(),
                kind,
            });
        }
        let has_label = schema.index_of("label").is_ok();
        let has_so_far = schema.index_of("repurchased_so_far").is_ok();
        let has_days = schema.index_of("days_to_repurchase").is_ok();
        let has_pending = schema.index_of("repurchase_pending").is_ok();
        let mut label = Vec::new();
        let mut so_far = Vec::new();
        let mut pending = Vec::new();
        let mut days = Vec::new();
        for b in batches {
            t.user_id
                .extend(int_col(b, "user_id")?.iter().map(|v| v.unwrap_or(-1)));
            t.order_id
                .extend(int_col(b, "order_id")?.iter().map(|v| v.unwrap_or(-1)));
            let ts = b
                .column_by_name("anchor_time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .ok_or_else(|| ModelError::table("anchor_time missing or not a timestamp"))?;
            t.anchor_us.extend(ts.iter().map(|v| v.unwrap_or(i64::MIN)));
            if has_label {
                let l = int_col(b, "label")?;
                if l.null_count() > 0 {
                    return Err(ModelError::table("label has nulls in a labelled partition"));
                }
                label.extend(l.values().iter().map(|v| *v == 1));
            }
            if has_so_far {
                so_far.extend(
                    int_col(b, "repurchased_so_far")?
                        .iter()
                        .map(|v| v == Some(1)),
                );
            }
            if has_pending {
                pending.extend(
                    int_col(b, "repurchase_pending")?
                        .iter()
                        .map(|v| v == Some(1)),
                );
            }
            if has_days {
                let d = b
                    .column_by_name("days_to_repurchase")
                    .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
                    .ok_or_else(|| ModelError::table("days_to_repurchase is not a float"))?;
                days.extend(d.iter().map(|v| v.unwrap_or(f64::NAN)));
            }
            for spec in &t.specs {
                let col = b.column_by_name(&spec.name).ok_or_else(|| {
                    ModelError::table(format!("batch lacks column {}", spec.name))
                })?;
                match spec.kind {
                    FeatureKind::Numeric => {
                        let dst = t.numeric.entry(spec.name.clone()).or_default();
                        if let Some(a) = col.as_any().downcast_ref::<Float64Array>() {
                            dst.extend(a.iter().map(|v| v.unwrap_or(f64::NAN)));
                        } else if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
                            dst.extend(a.iter().map(|v| v.map_or(f64::NAN, |x| x as f64)));
                        }
                    }
                    FeatureKind::Categorical => {
                        // DataFusion reads Parquet text as string views; normalise to plain strings.
                        let col = arrow::compute::cast(col, &DataType::Utf8)
                            .map_err(|e| ModelError::table(format!("{}: {e}", spec.name)))?;
                        let a = col.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                            ModelError::table(format!("{} is not text", spec.name))
                        })?;
                        t.categorical
                            .entry(spec.name.clone())
                            .or_default()
                            .extend(a.iter().map(|v| v.map(str::to_string)));
                    }
                }
            }
        }
        t.label = has_label.then_some(label);
        t.repurchased_so_far = has_so_far.then_some(so_far);
        t.repurchase_pending = has_pending.then_some(pending);
        t.days_to_repurchase = has_days.then_some(days);
        Ok(t)
    }

    /// The rows at `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> FeatureTable {
        let pick_i = |v: &Vec<i64>| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
        FeatureTable {
            user_id: pick_i(&self.user_id),
            order_id: pick_i(&self.order_id),
            anchor_us: pick_i(&self.anchor_us),
            label: self
                .label
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
            repurchased_so_far: self
                .repurchased_so_far
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
            repurchase_pending: self
                .repurchase_pending
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
            days_to_repurchase: self
                .days_to_repurchase
                .as_ref()
                .map(|d| idx.iter().map(|&i| d[i]).collect()),
            specs: self.specs.clone(),
            numeric: self
                .numeric
                .iter()
                .map(|(k, v)| (k.clone(), idx.iter().map(|&i| v[i]).collect()))
                .collect(),
            categorical: self
                .categorical
                .iter()
                .map(|(k, v)| (k.clone(), idx.iter().map(|&i| v[i].clone()).collect()))
                .collect(),
        }
    }

    /// The labels; an error for a partition without a label column (a score partition).
    pub fn labels(&self) -> Result<&[bool], ModelError> {
        self.label
            .as_deref()
            .ok_or_else(|| ModelError::table("partition has no label column"))
    }
}

fn int_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, ModelError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| ModelError::table(format!("column {name:?} missing or not an integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_recognised() {
        for name in [
            "id",
            "user_id",
            "order_id",
            "inventory_item_id",
            "product_sku",
            "session_id",
            "event_ids",
        ] {
            assert!(is_identifier(name), "{name}");
        }
        for name in [
            "age",
            "basket_value",
            "days_since_prev_completed",
            "main_category",
            "events_7d",
        ] {
            assert!(!is_identifier(name), "{name}");
        }
    }
}
