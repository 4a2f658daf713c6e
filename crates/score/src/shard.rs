//! Hash shards of the customers, so that scoring can fan out over tasks: a customer's shard is
//! a fixed mix of its id, so it never moves.

use std::fmt;
use std::str::FromStr;

use repurchase_core::hash::mix64;
use repurchase_core::layout::Dataset;

/// Most shards a run may be split into.
pub const MAX_SHARDS: u32 = 4096;

/// One hash shard of the customers: those with `shard_of(user_id, count) == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// Shards in all.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a shard I/N with 0 <= I < N <= {MAX_SHARDS}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub(crate) fn dataset(self) -> Dataset {
        Dataset::ScoreShard {
            index: self.index,
            count: self.count,
        }
    }
}

/// Shard of a customer: a fixed mix of its id ([`repurchase_core::hash::mix64`]), so a customer
/// stays in the same shard for ever.
pub fn shard_of(user_id: i64, count: u32) -> u32 {
    (mix64(user_id as u64) % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_customers_stably() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["8/8", "1/0", "x/2", "1", "-1/2", "0/5000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // Fixed values: changing the hash would move customers between shards.
        assert_eq!(
            (1..=8).map(|u| shard_of(u, 4)).collect::<Vec<_>>(),
            [1, 2, 1, 2, 2, 0, 3, 2]
        );
        assert_eq!([1, 42, 99_999].map(|u| shard_of(u, 1000)), [465, 413, 454]);
        let mut sizes = [0u32; 4];
        for u in 0..100_000 {
            sizes[shard_of(u, 4) as usize] += 1;
        }
        assert!(
            sizes.iter().all(|s| (24_000..26_000).contains(s)),
            "{sizes:?}"
        );
        assert_eq!(shard_of(12345, 1), 0);
    }
}
