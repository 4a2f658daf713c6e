//! The booster compiled for prediction: forust's trees flattened into one array of small nodes and
//! walked row by row over row-major data.
//!
//! forust predicts tree by tree: for every tree it walks all rows (one rayon job and one vector of
//! n values per tree), reading each row's features from a column-major matrix, one cache line per
//! feature. Scoring millions of rows that way spends more time on hand-offs, allocation and cache
//! misses than on comparisons. Here a row's features sit together, every tree is walked for a block of rows at once, and a node is 24 bytes instead of forust's ~90. A leaf
//! points to itself, so every row of a block takes exactly the tree's depth in steps with no
//! data-dependent branch: the rows' walks are independent chains the CPU overlaps, instead of one
//! walk stalling on each mispredicted turn. The log-odds are summed in forust's order (base score,
//! then tree 1, 2, …) with its missing-value and split rules, so the numbers are bit for bit those
//! of `GradientBooster::predict`.

use crate::error::ModelError;
use forust_ml::gradientbooster::GradientBooster;

mod shap;

/// Rows walked through a tree together.
const BLOCK: usize = 64;

/// A split (`value` is the threshold: below goes left, NaN goes to `missing`) or a leaf (`value`
/// is its weight; `left`, `right` and `missing` are the leaf itself and `feature` is 0).
#[derive(Debug, Clone, Copy)]
struct Node {
    value: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing: u32,
}

/// The prediction trees of a booster (those up to its best validation iteration).
#[derive(Debug, Clone)]
pub struct Forest {
    base_score: f64,
    roots: Vec<u32>,
    /// Splits from root to the deepest leaf, per tree.
    depths: Vec<u32>,
    nodes: Vec<Node>,
    /// Each node's cover (forust's hessian sum): the weight of the training rows through it,
    /// which Shapley values average over ([`crate::shap`]).
    covers: Vec<f64>,
    /// Each tree's expected log-odds: its leaves averaged by cover.
    expected: Vec<f64>,
    n_features: usize,
}

impl Node {
    fn is_leaf(&self, index: usize) -> bool {
        self.left as usize == index
    }

    /// Written as two selects rather than nested branches, so that it compiles to conditional
    /// moves: which way a row turns is data, and a mispredicted branch per step costs more than
    /// the step.
    #[inline(always)]
    fn next(&self, v: f64) -> u32 {
        let child = if v < self.value {
            self.left
        } else {
            self.right
        };
        if v.is_nan() { self.missing } else { child }
    }
}

impl Forest {
    /// Flattens `booster`'s prediction trees for rows of `n_features` features. A model whose
    /// trees point outside themselves or at a feature it does not have is refused here rather
    /// than panicking while scoring.
    pub fn compile(booster: &GradientBooster, n_features: usize) -> Result<Forest, ModelError> {
        if !booster.missing.is_nan() {
            // Every matrix we build marks missing values as NaN, which is forust's default.
            return Err(ModelError::model(format!(
                "the booster treats {} as missing, not NaN",
                booster.missing
            )));
        }
        let n_trees = booster
            .prediction_iteration
            .unwrap_or(booster.trees.len())
            .min(booster.trees.len());
        let mut forest = Forest {
            base_score: booster.base_score,
            roots: Vec::with_capacity(n_trees),
            depths: Vec::with_capacity(n_trees),
            nodes: Vec::new(),
            covers: Vec::new(),
            expected: Vec::with_capacity(n_trees),
            n_features,
        };
        for (t, tree) in booster.trees[..n_trees].iter().enumerate() {
            let offset = forest.nodes.len();
            let size = tree.nodes.len();
            if size == 0 {
                return Err(ModelError::model(format!("tree {t} has no nodes")));
            }
            let index = |i: usize| -> Result<u32, ModelError> {
                if i >= size {
                    return Err(ModelError::model(format!(
                        "tree {t} points at node {i} of {size}"
                    )));
                }
                u32::try_from(offset + i).map_err(|_| ModelError::model("too many tree nodes"))
            };
            forest.roots.push(index(0)?);
            for (i, node) in tree.nodes.iter().enumerate() {
                forest.covers.push(f64::from(node.hessian_sum));
                forest.nodes.push(if node.is_leaf {
                    let me = index(i)?;
                    Node {
                        value: f64::from(node.weight_value),
                        feature: 0,
                        left: me,
                        right: me,
                        missing: me,
                    }
                } else {
                    if node.split_feature >= n_features {
                        return Err(ModelError::model(format!(
                            "tree {t} splits on feature {} of {n_features}",
                            node.split_feature
                        )));
                    }
                    Node {
                        value: node.split_value,
                        feature: node.split_feature as u32,
                        left: index(node.left_child)?,
                        right: index(node.right_child)?,
                        missing: index(node.missing_node)?,
                    }
                });
            }
        }
        // Every tree must reach a leaf from its root (a cycle would never end), and its depth
        // bounds the walk.
        for (t, &root) in forest.roots.iter().enumerate() {
            let mut seen = vec![false; forest.nodes.len()];
            let mut stack = vec![(root, 0u32)];
            let mut depth = 0;
            while let Some((i, d)) = stack.pop() {
                if std::mem::replace(&mut seen[i as usize], true) {
                    return Err(ModelError::model(format!(
                        "tree {t} is not a tree (node {i} reached twice)"
                    )));
                }
                let n = forest.nodes[i as usize];
                if n.is_leaf(i as usize) {
                    depth = depth.max(d);
                    continue;
                }
                stack.extend([(n.left, d + 1), (n.right, d + 1)]);
                if n.missing != n.left && n.missing != n.right {
                    stack.push((n.missing, d + 1));
                }
            }
            forest.depths.push(depth);
        }
        forest.expected = forest.roots.iter().map(|&r| forest.average(r)).collect();
        Ok(forest)
    }

    /// The leaf values below node `i` averaged by cover, added in forust's order (left, right,
    /// then a separate missing branch), so that the bias of the Shapley values is forust's.
    fn average(&self, i: u32) -> f64 {
        let n = &self.nodes[i as usize];
        if n.is_leaf(i as usize) {
            return n.value;
        }
        let part = |c: u32| self.covers[c as usize] * self.average(c);
        let mut w = part(n.left);
        w += part(n.right);
        if n.missing != n.left && n.missing != n.right {
            w += part(n.missing);
        }
        w / self.covers[i as usize]
    }

    /// The features (by index) the trees split on, ascending.
    pub fn used_features(&self) -> Vec<usize> {
        let mut used: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| !n.is_leaf(*i))
            .map(|(_, n)| n.feature as usize)
            .collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    /// The same trees over rows of only [`Forest::used_features`] (in that order): scoring then
    /// reads and decodes only those columns. A model keeps every candidate feature in its list
    /// but its trees typically split on a fraction of them (16 of 71 on TheLook-like data).
    pub fn compact(&self) -> (Forest, Vec<usize>) {
        let used = self.used_features();
        let mut position = vec![u32::MAX; self.n_features];
        for (k, &f) in used.iter().enumerate() {
            position[f] = k as u32;
        }
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Node {
                feature: if n.is_leaf(i) {
                    0
                } else {
                    position[n.feature as usize]
                },
                ..*n
            })
            .collect();
        let forest = Forest {
            base_score: self.base_score,
            roots: self.roots.clone(),
            depths: self.depths.clone(),
            nodes,
            covers: self.covers.clone(),
            expected: self.expected.clone(),
            n_features: used.len(),
        };
        (forest, used)
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Log-odds of `rows` rows handed over a block at a time: `fill(first, block)` writes rows
    /// `first..first + block.len() / n_features` into `block`, row-major. The caller builds each
    /// block from wherever its columns live, so no matrix of all the rows is ever made and the
    /// block being walked stays in the L1 cache.
    pub fn predict_blocks(&self, rows: usize, mut fill: impl FnMut(usize, &mut [f64])) -> Vec<f64> {
        let p = self.n_features;
        let mut out = vec![self.base_score; rows];
        let mut block = vec![f64::NAN; BLOCK * p];
        let mut at = [0u32; BLOCK];
        for (b, sums) in out.chunks_mut(BLOCK).enumerate() {
            let block = &mut block[..sums.len() * p];
            fill(b * BLOCK, block);
            let block = &*block;
            let at = &mut at[..sums.len()];
            for (&root, &depth) in self.roots.iter().zip(&self.depths) {
                at.fill(root);
                for _ in 0..depth {
                    for (r, i) in at.iter_mut().enumerate() {
                        let n = &self.nodes[*i as usize];
                        *i = n.next(block[r * p + n.feature as usize]);
                    }
                }
                // Tree by tree, as forust adds them: the same sums to the last bit.
                for (s, &i) in sums.iter_mut().zip(at.iter()) {
                    *s += self.nodes[i as usize].value;
                }
            }
        }
        out
    }

    /// Log-odds of every row of a row-major matrix (`n_features` values per row).
    pub fn predict_row_major(&self, x: &[f64], rows: usize) -> Vec<f64> {
        let p = self.n_features;
        assert_eq!(
            x.len(),
            rows * p,
            "a row-major matrix of {rows} rows of {p}"
        );
        self.predict_blocks(rows, |first, block| {
            block.copy_from_slice(&x[first * p..][..block.len()]);
        })
    }

    /// Log-odds of every row of a column-major matrix of `rows` rows (as forust's `Matrix`).
    pub fn predict_column_major(&self, x: &[f64], rows: usize) -> Vec<f64> {
        self.predict_blocks(rows, self.column_major(x, rows))
    }

    /// Shapley values of every row of a column-major matrix of `rows` rows (as forust's
    /// `Matrix`): per row, one value per feature then the bias.
    pub fn contributions_column_major(&self, x: &[f64], rows: usize) -> Vec<f64> {
        self.contributions_blocks(rows, self.column_major(x, rows))
    }

    /// The block filler of a column-major matrix of `rows` rows of this forest's features: rows
    /// `first..` into a row-major block.
    fn column_major<'a>(&self, x: &'a [f64], rows: usize) -> impl FnMut(usize, &mut [f64]) + 'a {
        let p = self.n_features;
        assert_eq!(
            x.len(),
            rows * p,
            "a column-major matrix of {rows} rows of {p}"
        );
        move |first, block| {
            for (j, col) in x.chunks_exact(rows.max(1)).enumerate() {
                for (slot, v) in block[j..].iter_mut().step_by(p).zip(&col[first..]) {
                    *slot = *v;
                }
            }
        }
    }
}

/// The logistic function: log-odds to probability.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use forust_ml::Matrix;
    use forust_ml::objective::ObjectiveType;

    use super::*;

    /// A deterministic pseudo-random stream (xorshift), so the test needs no RNG crate.
    struct Stream(u64);
    impl Stream {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Column-major data with missing values in every column, and labels that depend on them.
    fn data(rows: usize, p: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut s = Stream(seed);
        let mut x = vec![0.0; rows * p];
        for v in &mut x {
            *v = if s.next() < 0.15 {
                f64::NAN
            } else {
                (s.next() * 10.0).floor() / 2.0
            };
        }
        let y = (0..rows)
            .map(|r| {
                let a = x[r];
                let b = x[rows + r];
                let z = if a.is_nan() { 0.8 } else { a / 5.0 - 0.5 }
                    + if b.is_nan() { -0.5 } else { b / 10.0 }
                    + s.next()
                    - 0.5;
                f64::from(u8::from(z > 0.3))
            })
            .collect();
        (x, y)
    }

    fn fitted(rows: usize, p: usize) -> (GradientBooster, Vec<f64>) {
        let (x, y) = data(rows, p, 7);
        let mut b = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_iterations(40)
            .set_max_depth(4)
            .set_learning_rate(0.3)
            .set_parallel(false);
        let m = Matrix::new(&x, rows, p);
        b.fit(&m, &y, &vec![1.0; rows], None).unwrap();
        (b, x)
    }

    #[test]
    fn shapley_values_are_forusts_and_sum_to_the_prediction() {
        use forust_ml::gradientbooster::ContributionsMethod;
        let (rows, p) = (3000, 5);
        let (x, y) = data(rows, p, 7);
        // With and without a separate branch for missing values (three children per split).
        for missing_branch in [false, true] {
            let mut booster = GradientBooster::default()
                .set_objective_type(ObjectiveType::LogLoss)
                .set_iterations(30)
                .set_max_depth(4)
                .set_learning_rate(0.3)
                .set_create_missing_branch(missing_branch)
                .set_parallel(false);
            booster
                .fit(&Matrix::new(&x, rows, p), &y, &vec![1.0; rows], None)
                .unwrap();
            let forest = Forest::compile(&booster, p).unwrap();
            let three = forest
                .nodes
                .iter()
                .any(|n| n.missing != n.left && n.missing != n.right);
            assert_eq!(three, missing_branch);
            let (test, _) = data(500, p, 99);
            let matrix = Matrix::new(&test, 500, p);
            let theirs =
                booster.predict_contributions(&matrix, ContributionsMethod::Shapley, false);
            let ours = forest.contributions_column_major(&test, 500);
            assert_eq!(ours.len(), theirs.len());
            let mut worst = 0f64;
            for (a, b) in ours.iter().zip(&theirs) {
                worst = worst.max((a - b).abs());
            }
            assert!(worst < 1e-6, "largest difference from forust {worst:e}");
            let log_odds = forest.predict_column_major(&test, 500);
            for (r, phi) in ours.chunks_exact(p + 1).enumerate() {
                let sum: f64 = phi.iter().sum();
                assert!(
                    (sum - log_odds[r]).abs() < 1e-9,
                    "row {r}: {sum} vs {}",
                    log_odds[r]
                );
            }
            // Compacted: the same values on the used columns.
            let (compact, used) = forest.compact();
            let narrow: Vec<f64> = used
                .iter()
                .flat_map(|&j| test[j * 500..][..500].to_vec())
                .collect();
            let small = compact.contributions_column_major(&narrow, 500);
            for (wide, phi) in ours
                .chunks_exact(p + 1)
                .zip(small.chunks_exact(used.len() + 1))
            {
                for (k, &j) in used.iter().enumerate() {
                    assert_eq!(wide[j], phi[k]);
                }
                assert_eq!(wide[p], phi[used.len()]);
            }
        }
    }

    #[test]
    fn predicts_exactly_what_forust_predicts() {
        let (rows, p) = (3000, 5);
        let (booster, _) = fitted(rows, p);
        let forest = Forest::compile(&booster, p).unwrap();
        assert_eq!(forest.n_trees(), 40);
        // Rows the model never saw, with values between and beyond its split points.
        let (x, _) = data(1000, p, 99);
        let expected = booster.predict(&Matrix::new(&x, 1000, p), false);
        let got = forest.predict_column_major(&x, 1000);
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.to_bits(), e.to_bits(), "row {i}: {g} vs {e}");
        }
        let mut row_major = vec![0.0; x.len()];
        for r in 0..1000 {
            for j in 0..p {
                row_major[r * p + j] = x[j * 1000 + r];
            }
        }
        assert_eq!(forest.predict_row_major(&row_major, 1000), got);
        // Compacted to the features the trees use: the same numbers from fewer columns.
        let (compact, used) = forest.compact();
        assert_eq!(used, forest.used_features());
        assert!(used.contains(&0) && used.contains(&1), "{used:?}");
        let x = &x;
        let narrow: Vec<f64> = (0..1000)
            .flat_map(|r| used.iter().map(move |&j| x[j * 1000 + r]))
            .collect();
        assert_eq!(compact.predict_row_major(&narrow, 1000), got);
        // Distinct predictions: the trees are really used, not a constant.
        let mut distinct: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 50,
            "{} distinct predictions",
            distinct.len()
        );
    }

    #[test]
    fn stops_at_the_best_iteration() {
        let (mut booster, x) = fitted(2000, 3);
        booster.prediction_iteration = Some(10);
        let forest = Forest::compile(&booster, 3).unwrap();
        assert_eq!(forest.n_trees(), 10);
        let expected = booster.predict(&Matrix::new(&x, 2000, 3), false);
        assert_eq!(forest.predict_column_major(&x, 2000), expected);
    }

    #[test]
    fn refuses_a_model_that_does_not_fit_the_rows() {
        let (booster, _) = fitted(2000, 3);
        let e = Forest::compile(&booster, 1).unwrap_err().to_string();
        assert!(e.contains("splits on feature"), "{e}");
        let mut broken = booster;
        let node = broken.trees[0]
            .nodes
            .iter_mut()
            .find(|n| !n.is_leaf)
            .unwrap();
        node.left_child = 10_000;
        let e = Forest::compile(&broken, 3).unwrap_err().to_string();
        assert!(e.contains("tree 0 points at node 10000"), "{e}");
    }
}
