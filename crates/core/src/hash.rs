//! The one fixed 64-bit mix of the project (SplitMix64's finaliser, Steele, Lea & Flood 2014).
//!
//! Used wherever a key must map to the same pseudo-random value for ever — a customer's score
//! shard, a training row's negative sampling, a tie-break between equal scores — so it is written
//! out here rather than taken from `std`'s hasher, whose output may change between releases.

/// SplitMix64's output function applied to `x`: a bijection of `u64` that scatters nearby keys.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64's generator: the state walks by the golden-ratio increment and each output is
/// [`mix64`] of it, so a stream depends on its seed only, never on a crate's version. Bootstrap
/// indices, generated test data and fault draws all use this one.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let out = mix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        out
    }

    /// Uniform in `0..n` by multiply-shift; `n == 0` yields 0. The bias is at most n / 2^64.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `mix64(key)`, the tie-break between rows of equal score: unrelated to time order (TheLook's
/// ids grow with time), yet the same on every run.
pub fn tie_break(key: i64) -> u64 {
    mix64(key as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_fixed() {
        // Reference values of SplitMix64 seeded with 0 and 1 (first output).
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(1), 0x910A_2DEC_8902_5CC1);
    }

    #[test]
    fn generator_is_the_reference_splitmix64_stream() {
        // The reference algorithm: add the increment to the state, then finalise the state.
        let mut state = 20250630u64;
        let mut rng = SplitMix64::new(state);
        for _ in 0..1000 {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            assert_eq!(rng.next_u64(), z ^ (z >> 31));
        }
        let mut rng = SplitMix64::new(7);
        assert!((0..1000).all(|_| rng.below(10) < 10 && (0.0..1.0).contains(&rng.next_f64())));
        assert_eq!(SplitMix64::new(1).below(0), 0);
    }
}
