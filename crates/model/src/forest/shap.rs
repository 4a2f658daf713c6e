//! Exact tree Shapley values over the compiled forest: Lundberg et al.'s path-dependent TreeSHAP
//! (Algorithm 2 of "Consistent individualized feature attribution for tree ensembles"), the
//! algorithm of forust's `predict_contributions(Shapley)`, with the same missing-value branch
//! and the same cover-weighted bias, so the values are forust's (and its Python package's).
//!
//! forust allocates a vector at every node it visits and copies the whole path at every level;
//! here a row's walk of a tree works in one buffer allocated per batch, each level's path a slice
//! after its parent's, and the arithmetic is in f64 where forust's is in f32 (the two agree to
//! well under 1e-6 on a prediction's scale).

use super::Forest;

/// One feature on the path from the root: the share of the cover that goes its way when the
/// feature is unknown (`zero`), whether the row goes its way (`one`), and the weight of the
/// subsets of the path's features of each size.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: usize,
    zero: f64,
    one: f64,
    pweight: f64,
}

/// A feature no tree has, for the root's path element (never credited).
const NO_FEATURE: usize = usize::MAX;

fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: usize) {
    path[depth] = PathElement {
        feature,
        zero,
        one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 / d1;
        path[i].pweight = zero * path[i].pweight * (depth - i) as f64 / d1;
    }
}

fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let PathElement { one, zero, .. } = path[index];
    let d1 = (depth + 1) as f64;
    let mut next_one = path[depth].pweight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one * d1 / ((i + 1) as f64 * one);
            next_one = tmp - path[i].pweight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].pweight = path[i].pweight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// `1 / k` for the small integers the path arithmetic divides by: a multiplication instead of a
/// division in the innermost loop, where the divisions' latency was most of the time.
const RECIP: [f64; 64] = {
    let mut r = [0.0; 64];
    let mut k = 1;
    while k < 64 {
        r[k] = 1.0 / k as f64;
        k += 1;
    }
    r
};

fn recip(k: usize) -> f64 {
    RECIP.get(k).copied().unwrap_or(1.0 / k as f64)
}

fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let PathElement { one, zero, .. } = path[index];
    let d1 = (depth + 1) as f64;
    let inv_d1 = recip(depth + 1);
    let mut next_one = path[depth].pweight;
    let mut total = 0.0;
    if one != 0.0 {
        let inv_one = 1.0 / one;
        for i in (0..depth).rev() {
            let tmp = next_one * d1 * recip(i + 1) * inv_one;
            total += tmp;
            next_one = path[i].pweight - tmp * zero * ((depth - i) as f64 * inv_d1);
        }
    } else if zero != 0.0 {
        let inv_zero = 1.0 / zero;
        for i in (0..depth).rev() {
            total += path[i].pweight * inv_zero * d1 * recip(depth - i);
        }
    }
    total
}

impl Forest {
    /// Path elements a row's walk of the deepest tree needs: each level's path (one longer than
    /// its parent's) is kept while its children are walked.
    fn path_buffer(&self) -> Vec<PathElement> {
        let d = self.depths.iter().copied().max().unwrap_or(0) as usize + 2;
        vec![PathElement::default(); d * (d + 1) / 2]
    }

    /// Adds one row's Shapley values to `phi` (`n_features` values, then the bias): every tree's
    /// values and its expected log-odds, and the base score.
    fn row_contributions(&self, x: &[f64], phi: &mut [f64], buf: &mut [PathElement]) {
        let p = self.n_features;
        phi[p] += self.base_score;
        for (&root, &expected) in self.roots.iter().zip(&self.expected) {
            phi[p] += expected;
            self.walk(x, phi, root, &[], buf, 1.0, 1.0, NO_FEATURE);
        }
    }

    /// Algorithm 2's RECURSE at node `i`, reached through `parent` (the path above it) with the
    /// fractions of the split that led here on `feature`.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        x: &[f64],
        phi: &mut [f64],
        i: u32,
        parent: &[PathElement],
        buf: &mut [PathElement],
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        let depth = parent.len();
        let (path, rest) = buf.split_at_mut(depth + 1);
        path[..depth].copy_from_slice(parent);
        extend(path, depth, zero, one, feature);
        let node = self.nodes[i as usize];
        if node.is_leaf(i as usize) {
            for k in 1..=depth {
                let w = unwound_sum(path, depth, k);
                let e = path[k];
                phi[e.feature] += w * (e.one - e.zero) * node.value;
            }
            return;
        }
        let split = node.feature as usize;
        let hot = node.next(x[split]);
        let (mut incoming_zero, mut incoming_one, mut unique) = (1.0, 1.0, depth);
        if let Some(k) = path[..=depth].iter().position(|e| e.feature == split) {
            incoming_zero = path[k].zero;
            incoming_one = path[k].one;
            unwind(path, depth, k);
            unique -= 1;
        }
        let cover = self.covers[i as usize];
        let children = [node.left, node.right, node.missing];
        let distinct = if node.missing != node.left && node.missing != node.right {
            3
        } else {
            2
        };
        // The hot child (the row's way) first, then the cold ones, as forust orders them.
        let order =
            std::iter::once(hot).chain(children[..distinct].iter().copied().filter(|&c| c != hot));
        for (k, c) in order.enumerate() {
            let z = self.covers[c as usize] / cover * incoming_zero;
            let o = if k == 0 { incoming_one } else { 0.0 };
            self.walk(x, phi, c, &path[..=unique], rest, z, o, split);
        }
    }

    /// Shapley values of `rows` rows handed over a block at a time as in
    /// [`Forest::predict_blocks`]: per row, one value per feature then the bias; each row's
    /// values and bias add up to its log-odds.
    pub fn contributions_blocks(
        &self,
        rows: usize,
        mut fill: impl FnMut(usize, &mut [f64]),
    ) -> Vec<f64> {
        const BLOCK: usize = super::BLOCK;
        let p = self.n_features;
        let mut out = vec![0.0; rows * (p + 1)];
        let mut block = vec![f64::NAN; BLOCK * p];
        let mut buf = self.path_buffer();
        for (b, phis) in out.chunks_mut(BLOCK * (p + 1)).enumerate() {
            let n = phis.len() / (p + 1);
            let block = &mut block[..n * p];
            fill(b * BLOCK, block);
            for (x, phi) in block
                .chunks_exact(p.max(1))
                .zip(phis.chunks_exact_mut(p + 1))
            {
                self.row_contributions(x, phi, &mut buf);
            }
        }
        out
    }
}
