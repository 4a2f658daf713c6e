//! The reference tables compiled into the binary: TheLook's distribution centres, the postcode
//! table user locations are drawn from, and per-category product price statistics.
//!
//! They are embedded (not read from `/work/shared`) so a shipped binary generates the same data
//! anywhere. Parsing happens once per process.

use std::sync::OnceLock;

use rand::Rng;

use crate::error::DatagenError;

const DISTRIBUTION_CENTERS_CSV: &str = include_str!("../data/distribution_centers.csv");
const WORLD_POP_CSV: &str = include_str!("../data/world_pop.csv");
const CATEGORY_STATS_CSV: &str = include_str!("../data/products_category_stats.csv");

#[derive(Debug, Clone)]
pub(crate) struct DistributionCenter {
    pub id: i64,
    pub name: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub country: &'static str,
    pub state: &'static str,
    pub city: &'static str,
    pub postal_code: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct CategoryStats {
    pub department: &'static str,
    pub category: &'static str,
    pub n_products: u32,
    pub avg_price: f64,
    pub std_price: f64,
    pub min_price: f64,
    pub max_price: f64,
    pub cost_ratio: f64,
}

#[derive(Debug)]
pub(crate) struct Reference {
    pub centers: Vec<DistributionCenter>,
    pub locations: Vec<Location>,
    /// Running total of population, for sampling locations in proportion to it.
    cumulative_pop: Vec<u64>,
    pub categories: Vec<CategoryStats>,
}

impl Reference {
    /// Index into `locations`, drawn in proportion to population.
    pub(crate) fn sample_location<R: Rng>(&self, rng: &mut R) -> u32 {
        let total = self.cumulative_pop.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let x = rng.random_range(0..total);
        // First row whose running total exceeds x; rows with zero population are never chosen.
        self.cumulative_pop.partition_point(|&c| c <= x) as u32
    }
}

type ParseError = (&'static str, usize, String);

static REFERENCE: OnceLock<Result<Reference, ParseError>> = OnceLock::new();

pub(crate) fn reference() -> Result<&'static Reference, DatagenError> {
    match REFERENCE.get_or_init(parse_all) {
        Ok(r) => Ok(r),
        Err((file, line, reason)) => Err(DatagenError::Reference {
            file,
            line: *line,
            reason: reason.clone(),
        }),
    }
}

fn parse_all() -> Result<Reference, ParseError> {
    let centers = rows("distribution_centers.csv", DISTRIBUTION_CENTERS_CSV, 4)?
        .into_iter()
        .map(|(line, f)| {
            let file = "distribution_centers.csv";
            Ok(DistributionCenter {
                id: num(file, line, f[0])?,
                name: f[1],
                latitude: num(file, line, f[2])?,
                longitude: num(file, line, f[3])?,
            })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;

    let mut locations = Vec::new();
    let mut cumulative_pop = Vec::new();
    let mut total = 0u64;
    for (line, f) in rows("world_pop.csv", WORLD_POP_CSV, 7)? {
        let file = "world_pop.csv";
        locations.push(Location {
            country: f[0],
            state: f[1],
            city: f[2],
            postal_code: f[3],
            latitude: num(file, line, f[4])?,
            longitude: num(file, line, f[5])?,
        });
        total += num::<u64>(file, line, f[6])?;
        cumulative_pop.push(total);
    }
    if total == 0 {
        return Err(("world_pop.csv", 0, "no population".into()));
    }

    let categories = rows("products_category_stats.csv", CATEGORY_STATS_CSV, 8)?
        .into_iter()
        .map(|(line, f)| {
            let file = "products_category_stats.csv";
            Ok(CategoryStats {
                department: f[0],
                category: f[1],
                n_products: num(file, line, f[2])?,
                avg_price: num(file, line, f[3])?,
                std_price: num(file, line, f[4])?,
                min_price: num(file, line, f[5])?,
                max_price: num(file, line, f[6])?,
                cost_ratio: num(file, line, f[7])?,
            })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;

    Ok(Reference {
        centers,
        locations,
        cumulative_pop,
        categories,
    })
}

/// Data rows (header skipped) split on commas. The embedded files contain no quoted fields.
fn rows(
    file: &'static str,
    text: &'static str,
    width: usize,
) -> Result<Vec<(usize, Vec<&'static str>)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&'static str> = line.split(',').collect();
        if fields.len() != width {
            return Err((
                file,
                i + 1,
                format!("expected {width} fields, found {}", fields.len()),
            ));
        }
        out.push((i + 1, fields));
    }
    Ok(out)
}

fn num<T: std::str::FromStr>(file: &'static str, line: usize, s: &str) -> Result<T, ParseError> {
    s.trim()
        .parse()
        .map_err(|_| (file, line, format!("not a number: {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn embedded_tables_parse() {
        let r = reference().expect("embedded data parses");
        assert_eq!(r.centers.len(), 10);
        assert_eq!(r.centers[0].name, "Memphis TN");
        assert!(r.locations.len() > 19_000, "{}", r.locations.len());
        assert_eq!(
            r.categories.iter().map(|c| c.n_products).sum::<u32>(),
            29_120
        );
    }

    #[test]
    fn locations_follow_population() {
        let r = reference().expect("embedded data parses");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = 50_000;
        let us = (0..n)
            .filter(|_| {
                r.locations[r.sample_location(&mut rng) as usize].country == "United States"
            })
            .count();
        let us_pop: u64 = {
            let mut prev = 0;
            let mut s = 0;
            for (loc, &c) in r.locations.iter().zip(&r.cumulative_pop) {
                if loc.country == "United States" {
                    s += c - prev;
                }
                prev = c;
            }
            s
        };
        let expected = us_pop as f64 / *r.cumulative_pop.last().expect("rows") as f64;
        assert!(
            (us as f64 / n as f64 - expected).abs() < 0.02,
            "{us} vs {expected}"
        );
    }
}
