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
}
