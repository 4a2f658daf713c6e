//! The text of an UNLOAD statement, built only from validated pieces.
//!
//! Athena cannot bind the `TO '<location>'` of an UNLOAD as a parameter, so that literal is
//! assembled here from parts that cannot carry SQL: the bucket and key of the parsed data-root URL
//! (checked against a strict character set, so no quote can get in), the table from the [`Table`]
//! enum and the date from a parsed [`RunDate`]. The run end enters the SELECT as an execution
//! parameter (`?`), whose value is a `TIMESTAMP` literal formatted from the parsed date. Names that
//! reach Athena (database, workgroup, table) are [`Identifier`]s: `^[A-Za-z_][A-Za-z0-9_]*$`.

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use repurchase_core::schema::Table;
use repurchase_core::sql::SqlFile;
use repurchase_core::{DataRoot, RunDate, sql_file};

use crate::error::{AthenaError, Result};

/// Longest name Glue accepts for a database or table, and Athena for a workgroup.
const MAX_IDENTIFIER_LEN: usize = 128;

/// A name that may stand unquoted in Athena SQL or an Athena API field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier(String);

impl Identifier {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Identifier {
    type Err = AthenaError;

    fn from_str(s: &str) -> Result<Self> {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if first_ok && rest_ok && s.len() <= MAX_IDENTIFIER_LEN {
            Ok(Identifier(s.to_string()))
        } else {
            Err(AthenaError::Settings(format!(
                "{s:?} is not a valid Athena name: use letters, digits and underscores, starting with \
                 a letter or underscore (at most {MAX_IDENTIFIER_LEN} characters)"
            )))
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `s3://bucket/key/` folder URL whose characters are all safe inside a SQL string literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Folder(String);

impl S3Folder {
    /// Checks an `s3://` URL: a DNS-style bucket name, and key segments made of letters, digits and
    /// `. _ = -` only. That set has no quote, backslash, whitespace or `%`, so the URL cannot end
    /// the string literal it is pasted into; it also rejects keys Athena would mangle.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            AthenaError::Settings(format!(
                "cannot use {url:?} as an Athena UNLOAD location: {why} (the data root must be \
                 s3://bucket/prefix with letters, digits and . _ = - in the prefix)"
            ))
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !bucket_ok {
            return Err(bad("invalid bucket name"));
        }
        for segment in key.split('/').filter(|_| !key.is_empty()) {
            let ok = !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '-'));
            if !ok {
                return Err(bad("unsupported characters or empty segment in the key"));
            }
        }
        Ok(S3Folder(if key.is_empty() {
            format!("s3://{bucket}/")
        } else {
            format!("s3://{bucket}/{key}/")
        }))
    }

    /// The URL, ending in `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for S3Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Folder (relative to the data root) where Athena stages one table's UNLOAD output. It is ours
/// alone: extract clears it before each query, because UNLOAD refuses a non-empty location.
pub fn staging_dir(table: Table, run_date: RunDate) -> String {
    format!("staging/athena/{}/run_date={run_date}", table.name())
}

/// Folder (relative to the data root) for Athena's own query results: UNLOAD writes its manifest
/// and metadata files there. A workgroup that enforces its own result location overrides it.
pub const RESULTS_DIR: &str = "staging/athena/_query_results";

/// The SELECT behind each table, embedded at build time from `sql/extract/`.
pub fn select_sql(table: Table) -> SqlFile {
    match table {
        Table::Users => sql_file!("extract/users.sql"),
        Table::Orders => sql_file!("extract/orders.sql"),
        Table::OrderItems => sql_file!("extract/order_items.sql"),
        Table::Products => sql_file!("extract/products.sql"),
        Table::InventoryItems => sql_file!("extract/inventory_items.sql"),
        Table::Events => sql_file!("extract/events.sql"),
        Table::DistributionCenters => sql_file!("extract/distribution_centers.sql"),
    }
}

/// The exclusive end of the run date as an Athena `TIMESTAMP` literal (UTC, which is Athena's
/// session zone). Formatted from the parsed date, so it holds digits, `-`, `:` and a space only.
pub fn run_end_literal(run_date: RunDate) -> String {
    Param::Timestamp(run_date.end_exclusive().naive_utc()).literal()
}

/// A typed value for one `?` of a query, sent as an Athena execution parameter.
///
/// Each variant formats its own literal from a typed Rust value, so a parameter can only ever be
/// a literal of its type: digits and punctuation, never text from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `DATE 'YYYY-MM-DD'`.
    Date(NaiveDate),
    /// `TIMESTAMP 'YYYY-MM-DD HH:MM:SS'` (whole seconds; Athena's session zone is UTC).
    Timestamp(NaiveDateTime),
    /// A plain integer literal (Athena types it INTEGER or BIGINT by size; the SQL casts it).
    Bigint(i64),
    /// `true` / `false`.
    Boolean(bool),
}

impl Param {
    /// The literal Athena receives in ExecutionParameters.
    pub fn literal(&self) -> String {
        match self {
            Param::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            Param::Timestamp(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S")),
            Param::Bigint(v) => v.to_string(),
            Param::Boolean(b) => b.to_string(),
        }
    }
}

/// One UNLOAD: the query text, its execution parameters and where it writes.
#[derive(Debug, Clone)]
pub struct Unload {
    /// What the query is for, in logs and error messages (`table orders`, `features`).
    pub label: String,
    /// The SQL file under `sql/` the SELECT comes from (recorded in the manifest).
    pub sql_name: &'static str,
    /// The whole `UNLOAD (…) TO '…' WITH (…)` statement sent to Athena.
    pub query: String,
    /// The execution parameters' literals, in the order of the `?` they fill.
    pub parameters: Vec<String>,
    /// Data-root-relative folder the query writes to.
    pub staging_rel: String,
    /// The same folder as the `s3://` URL in the statement.
    pub location: S3Folder,
}

impl Unload {
    /// Builds the UNLOAD of `table` for `run_date` into its staging folder under `root`.
    pub fn new(root: &DataRoot, table: Table, run_date: RunDate) -> Result<Self> {
        let table_name: Identifier = table.name().parse()?;
        let parameters: Vec<Param> = match table.time_column() {
            Some(_) => vec![Param::Timestamp(run_date.end_exclusive().naive_utc())],
            None => Vec::new(),
        };
        Unload::of_sql(
            root,
            format!("table {table_name}"),
            select_sql(table),
            &parameters,
            staging_dir(table, run_date),
        )
    }

    /// Builds `UNLOAD (<sql>) TO '<root>/<staging_rel>/' WITH (format = 'PARQUET', compression =
    /// 'SNAPPY')` for any SQL file under `sql/`, with one typed parameter per `?` of the file (in
    /// order). The folder is checked as an [`S3Folder`]; the SQL file is static text.
    pub fn of_sql(
        root: &DataRoot,
        label: String,
        sql: SqlFile,
        parameters: &[Param],
        staging_rel: String,
    ) -> Result<Self> {
        let location = S3Folder::parse(&root.url(&staging_rel))?;
        let select = strip_comment_lines(sql.text);
        let placeholders = select.matches('?').count();
        if placeholders != parameters.len() {
            return Err(AthenaError::Settings(format!(
                "sql/{} has {placeholders} `?` placeholders but {label} takes {} parameters",
                sql.name,
                parameters.len()
            )));
        }
        // The SELECT is static text from sql/; the location was checked above. The newline before
        // `)` keeps a trailing comment in the SELECT from swallowing the parenthesis.
        let query = format!(
            "UNLOAD (\n{select}\n)\nTO '{location}'\nWITH (format = 'PARQUET', compression = 'SNAPPY')"
        );
        Ok(Unload {
            label,
            sql_name: sql.name,
            query,
            parameters: parameters.iter().map(Param::literal).collect(),
            staging_rel,
            location,
        })
    }
}

/// The SQL without its `--` comment lines (the header documents the file, not the query).
fn strip_comment_lines(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use repurchase_core::StoreConfig;

    fn s3_root(spec: &str) -> DataRoot {
        DataRoot::open(spec, &StoreConfig::default()).expect("s3 root")
    }

    #[test]
    fn identifiers_refuse_injection() {
        for good in ["thelook_ecommerce", "primary", "_x1", "Users"] {
            assert!(good.parse::<Identifier>().is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "1abc",
            "thelook; DROP TABLE users",
            "db\" OR 1=1 --",
            "db'",
            "work-group",
            "db.table",
            "name with space",
            "tablé",
            "db\n",
        ] {
            assert!(bad.parse::<Identifier>().is_err(), "{bad:?} accepted");
        }
        assert!("a".repeat(129).parse::<Identifier>().is_err());
    }

    /// Every input that reaches the SQL text or an Athena API field, tried with an injection.
    #[test]
    fn injection_through_each_input_is_refused() {
        let evil = "x'; DROP TABLE users; --";
        // Database and workgroup: typed as Identifier by the CLI parser.
        assert!(evil.parse::<Identifier>().is_err());
        assert!("thelook_ecommerce\" OR 1=1".parse::<Identifier>().is_err());
        // Table: only the enum's names exist, and each is a valid identifier.
        assert!(evil.parse::<Table>().is_err());
        for t in Table::ALL {
            assert!(t.name().parse::<Identifier>().is_ok(), "{t}");
        }
        // Run date: only a parsed date, formatted by us, reaches the parameter or the path.
        assert!(format!("2025-06-30{evil}").parse::<RunDate>().is_err());
        // Data root: the bucket and key must survive the strict character check.
        for spec in [
            format!("s3://bucket/{evil}"),
            "s3://bucket/p') TO 's3://other/".to_string(),
        ] {
            // Refused when the root is opened (not a valid key prefix) or when the statement is
            // built; never pasted.
            if let Ok(root) = DataRoot::open(&spec, &StoreConfig::default()) {
                assert!(
                    Unload::new(&root, Table::Users, "2025-06-30".parse().unwrap()).is_err(),
                    "{spec}"
                );
            }
        }
    }

    #[test]
    fn s3_folders_refuse_quotes_and_odd_keys() {
        assert_eq!(
            S3Folder::parse("s3://my-bucket/lake/staging/athena/users/run_date=2025-06-30")
                .unwrap()
                .as_str(),
            "s3://my-bucket/lake/staging/athena/users/run_date=2025-06-30/"
        );
        assert_eq!(
            S3Folder::parse("s3://b.u.c/").unwrap().as_str(),
            "s3://b.u.c/"
        );
        for bad in [
            "s3://bucket/it's/here",
            "s3://bucket/x') TO 's3://evil/' --",
            "s3://bucket/a b",
            "s3://bucket/a\\b",
            "s3://bucket/a%27b",
            "s3://bucket/a//b",
            "s3://bucket/../b",
            "s3://Bucket/x",
            "s3://b'/x",
            "file:///tmp/x",
            "memory://x/y",
            "s3:///x",
        ] {
            assert!(S3Folder::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn data_roots_that_cannot_be_pasted_are_refused() {
        // object_store percent-encodes a quote in a path segment; the encoded form is refused too.
        for spec in [
            "s3://bucket/it's",
            "s3://bucket/a b",
            "memory://athena-test/x",
        ] {
            let root = DataRoot::open(spec, &StoreConfig::default()).unwrap();
            let err = Unload::new(&root, Table::Orders, "2025-06-30".parse().unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains("Athena UNLOAD location"), "{spec}: {err}");
        }
    }

    #[test]
    fn run_end_is_a_typed_literal_of_the_next_midnight() {
        let d: RunDate = "2024-02-28".parse().unwrap();
        assert_eq!(run_end_literal(d), "TIMESTAMP '2024-02-29 00:00:00'");
        // The run date itself is the only way in, and it refuses anything but a date.
        assert!("2024-02-28' OR '1'='1".parse::<RunDate>().is_err());
    }

    #[test]
    fn params_are_typed_literals() {
        let d: RunDate = "2025-06-30".parse().unwrap();
        assert_eq!(Param::Date(d.date()).literal(), "DATE '2025-06-30'");
        assert_eq!(
            Param::Timestamp(d.end_exclusive().naive_utc()).literal(),
            "TIMESTAMP '2025-07-01 00:00:00'"
        );
        assert_eq!(Param::Bigint(-60).literal(), "-60");
        assert_eq!(Param::Boolean(true).literal(), "true");
    }

    #[test]
    fn any_sql_file_with_a_wrong_parameter_count_is_refused() {
        let root = s3_root("s3://lake-bucket/prod");
        let err = Unload::of_sql(
            &root,
            "table orders".into(),
            select_sql(Table::Orders),
            &[],
            "staging/x".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("1 `?` placeholders"), "{err}");
        let u = Unload::of_sql(
            &root,
            "products".into(),
            select_sql(Table::Products),
            &[],
            "staging/athena/features/run_date=2025-06-30".into(),
        )
        .unwrap();
        assert_eq!(
            u.location.as_str(),
            "s3://lake-bucket/prod/staging/athena/features/run_date=2025-06-30/"
        );
    }

    #[test]
    fn unload_statement_shape() {
        let root = s3_root("s3://lake-bucket/prod");
        let d: RunDate = "2025-06-30".parse().unwrap();
        let u = Unload::new(&root, Table::Orders, d).unwrap();
        assert_eq!(
            u.location.as_str(),
            "s3://lake-bucket/prod/staging/athena/orders/run_date=2025-06-30/"
        );
        assert_eq!(u.staging_rel, "staging/athena/orders/run_date=2025-06-30");
        assert_eq!(u.parameters, vec!["TIMESTAMP '2025-07-01 00:00:00'"]);
        assert!(u.query.starts_with("UNLOAD (\nSELECT\n"), "{}", u.query);
        assert!(
            u.query.ends_with(
                "\n)\nTO 's3://lake-bucket/prod/staging/athena/orders/run_date=2025-06-30/'\n\
                 WITH (format = 'PARQUET', compression = 'SNAPPY')"
            ),
            "{}",
            u.query
        );
        assert!(!u.query.contains("--"), "comments are stripped");
        assert_eq!(
            u.query.matches('\'').count(),
            6,
            "only the location and WITH quotes"
        );
        let products = Unload::new(&root, Table::Products, d).unwrap();
        assert!(products.parameters.is_empty());
        assert!(!products.query.contains('?'));
    }

    /// Each SQL file selects exactly TheLook's columns, in the schema's order, cast to the Athena
    /// type of the schema's Arrow type.
    #[test]
    fn extraction_sql_matches_the_schemas() {
        use arrow::datatypes::DataType;
        for table in Table::ALL {
            let sql = select_sql(table);
            let body = strip_comment_lines(sql.text);
            let selected: Vec<(String, String)> = body
                .lines()
                .filter_map(|l| {
                    let l = l.trim().trim_end_matches(',');
                    let inner = l.strip_prefix("CAST(")?;
                    let (expr, alias) = inner.split_once(") ")?;
                    let (col, ty) = expr.split_once(" AS ")?;
                    let alias = alias.trim().strip_prefix("AS ")?.trim();
                    assert_eq!(col, alias, "{}: {l}", sql.name);
                    Some((col.to_string(), ty.to_string()))
                })
                .collect();
            let schema = table.schema();
            let expected: Vec<(String, String)> = schema
                .fields()
                .iter()
                .map(|f| {
                    let ty = match f.data_type() {
                        DataType::Int64 => "BIGINT",
                        DataType::Float64 => "DOUBLE",
                        DataType::Utf8 => "VARCHAR",
                        DataType::Timestamp(_, _) => "TIMESTAMP",
                        other => panic!("no Athena type for {other}"),
                    };
                    (f.name().clone(), ty.to_string())
                })
                .collect();
            assert_eq!(selected, expected, "{}", sql.name);
            assert!(
                body.contains(&format!("\nFROM {}", table.name())),
                "{}",
                sql.name
            );
            match table.time_column() {
                Some(col) => assert!(
                    body.ends_with(&format!("WHERE {col} < ? OR {col} IS NULL")),
                    "{}",
                    sql.name
                ),
                None => assert!(!body.contains("WHERE"), "{}", sql.name),
            }
        }
    }
}
