//! The product catalogue: ~29k products drawn per department and category from TheLook's real
//! price statistics. It depends only on the seed, so runs with different user counts share it.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use repurchase_core::hash::mix64;

use crate::names;
use crate::reference::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dept {
    Men,
    Women,
}

impl Dept {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dept::Men => "Men",
            Dept::Women => "Women",
        }
    }

    pub(crate) fn slug(self) -> &'static str {
        match self {
            Dept::Men => "men",
            Dept::Women => "women",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug)]
pub(crate) struct Category {
    pub name: &'static str,
    pub dept: Dept,
    pub slug: String,
}

#[derive(Debug)]
pub(crate) struct Product {
    pub id: i64,
    pub cost: f64,
    pub category: u16,
    pub name: String,
    pub brand: u16,
    pub retail_price: f64,
    pub sku: String,
    pub distribution_center_id: i64,
}

#[derive(Debug)]
pub(crate) struct Catalog {
    /// `products[i].id == i + 1`.
    pub products: Vec<Product>,
    pub categories: Vec<Category>,
    pub brands: Vec<String>,
    pub brand_slugs: Vec<String>,
    /// Product indices per department, for drawing what a user of a given gender buys.
    by_dept: [Vec<u32>; 2],
}

/// Salt so the catalogue stream differs from every per-user stream of the same seed.
const CATALOG_SALT: u64 = 0x5052_4f44_5543_5453;
/// Brands a category draws from; the Zipf tail beyond that is negligible anyway.
const BRANDS_PER_CATEGORY: usize = 40;
const ZIPF_EXPONENT: f64 = 1.1;

impl Catalog {
    pub(crate) fn generate(seed: u64, reference: &Reference) -> Catalog {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ CATALOG_SALT);
        let brands = names::brand_names();
        let brand_slugs = brands.iter().map(|b| names::slug(b)).collect();
        let zipf_cum: Vec<f64> = (0..BRANDS_PER_CATEGORY.min(brands.len()))
            .scan(0.0, |acc, r| {
                *acc += 1.0 / ((r + 1) as f64).powf(ZIPF_EXPONENT);
                Some(*acc)
            })
            .collect();
        let zipf_total = zipf_cum.last().copied().unwrap_or(1.0);

        let mut products = Vec::with_capacity(
            reference
                .categories
                .iter()
                .map(|c| c.n_products as usize)
                .sum(),
        );
        let mut categories = Vec::with_capacity(reference.categories.len());
        let mut by_dept: [Vec<u32>; 2] = Default::default();
        for stats in &reference.categories {
            let dept = if stats.department == "Men" {
                Dept::Men
            } else {
                Dept::Women
            };
            let ci = categories.len() as u16;
            categories.push(Category {
                name: stats.category,
                dept,
                slug: names::slug(stats.category),
            });
            // Each category has its own brand popularity order, as real catalogues do.
            let mut order: Vec<u16> = (0..brands.len() as u16).collect();
            order.shuffle(&mut rng);
            let price_dist = Normal::new(stats.avg_price, stats.std_price.max(0.01)).ok();
            let nouns = names::nouns(stats.category);
            for _ in 0..stats.n_products {
                let id = products.len() as i64 + 1;
                let raw = price_dist
                    .map(|d| d.sample(&mut rng))
                    .unwrap_or(stats.avg_price);
                let retail_price =
                    (raw.clamp(stats.min_price, stats.max_price) * 100.0).round() / 100.0;
                let cost =
                    (retail_price * stats.cost_ratio * rng.random_range(0.9..1.1) * 10_000.0)
                        .round()
                        / 10_000.0;
                let x = rng.random_range(0.0..zipf_total);
                let rank = zipf_cum
                    .partition_point(|&c| c <= x)
                    .min(zipf_cum.len() - 1);
                let brand = order[rank];
                let adjective = names::ADJECTIVES[rng.random_range(0..names::ADJECTIVES.len())];
                let noun = nouns[rng.random_range(0..nouns.len())];
                let mut name = format!("{} {adjective} {noun}", brands[brand as usize]);
                if rng.random_bool(0.25) {
                    name.push_str(", ");
                    name.push_str(names::COLORS[rng.random_range(0..names::COLORS.len())]);
                }
                by_dept[dept.index()].push(products.len() as u32);
                products.push(Product {
                    id,
                    cost,
                    category: ci,
                    name,
                    brand,
                    retail_price,
                    sku: sku(id),
                    distribution_center_id: rng.random_range(1..=10),
                });
            }
        }
        Catalog {
            products,
            categories,
            brands,
            brand_slugs,
            by_dept,
        }
    }

    /// A product of the department, uniformly (so categories appear in catalogue proportions).
    pub(crate) fn draw<R: Rng>(&self, dept: Dept, rng: &mut R) -> u32 {
        let list = &self.by_dept[dept.index()];
        list[rng.random_range(0..list.len())]
    }

    pub(crate) fn product(&self, idx: u32) -> &Product {
        &self.products[idx as usize]
    }

    pub(crate) fn category_of(&self, idx: u32) -> &Category {
        &self.categories[self.products[idx as usize].category as usize]
    }
}

/// 32 hex characters that depend only on the product id, like TheLook's md5-looking SKUs.
fn sku(id: i64) -> String {
    let a = mix64(id as u64);
    let b = mix64(a ^ 0xA5A5_A5A5_A5A5_A5A5);
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::reference;

    #[test]
    fn catalogue_matches_reference() {
        let r = reference().expect("reference");
        let c = Catalog::generate(42, r);
        assert_eq!(c.products.len(), 29_120);
        assert!(
            c.products
                .iter()
                .enumerate()
                .all(|(i, p)| p.id == i as i64 + 1)
        );
        for (stats, cat) in r.categories.iter().zip(&c.categories) {
            let prices: Vec<f64> = c
                .products
                .iter()
                .filter(|p| std::ptr::eq(&c.categories[p.category as usize], cat))
                .map(|p| p.retail_price)
                .collect();
            assert_eq!(prices.len(), stats.n_products as usize);
            assert!(
                prices
                    .iter()
                    .all(|&p| p >= stats.min_price && p <= stats.max_price)
            );
        }
        assert!(
            c.products
                .iter()
                .all(|p| p.sku.len() == 32 && p.cost > 0.0 && p.cost < p.retail_price * 1.2)
        );
        assert!(c.products.iter().any(|p| p.name.contains(',')));
        let again = Catalog::generate(42, r);
        assert!(
            c.products
                .iter()
                .zip(&again.products)
                .all(|(a, b)| a.name == b.name && a.retail_price == b.retail_price)
        );
    }
}
