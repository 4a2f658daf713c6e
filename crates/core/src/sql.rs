//! SQL files from `sql/`, embedded at build time and run with typed parameters.
//!
//! Queries never have values pasted into their text: they use DataFusion named placeholders
//! (`$run_end_us`) bound from typed [`ScalarValue`]s, so a run date or any other input cannot change
//! the shape of a query.

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::error::{CoreError, Result};

/// A named SQL text (the file name under `sql/`).
#[derive(Debug, Clone, Copy)]
pub struct SqlFile {
    /// Path under `sql/`, e.g. `features/anchors.sql`.
    pub name: &'static str,
    /// The SQL.
    pub text: &'static str,
}

impl SqlFile {
    /// Plans the query and binds its parameters.
    pub async fn dataframe(
        &self,
        ctx: &SessionContext,
        params: Vec<(&str, ScalarValue)>,
    ) -> Result<DataFrame> {
        let df = ctx
            .sql(self.text)
            .await
            .map_err(|e| CoreError::query(self.name, e))?;
        if params.is_empty() {
            return Ok(df);
        }
        df.with_param_values(params)
            .map_err(|e| CoreError::query(self.name, e))
    }
}

/// Declares an embedded SQL file: `sql_file!("features/anchors.sql")` reads `<workspace>/sql/...`.
#[macro_export]
macro_rules! sql_file {
    ($path:literal) => {
        $crate::sql::SqlFile {
            name: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql/", $path)),
        }
    };
}
