//! Splitting one run across CI jobs, in nextest's spellings: `slice:K/N` takes every Nth item
//! from the Kth (in the order given), `hash:K/N` the items whose name hashes to K (stable
//! across runs and machines, whatever else is added). K counts from 1. The partial reports
//! carry where each run stood in the whole, so `tdg report merge` puts them back in order and
//! notices a missing or doubled partition.

use crate::error::Reason;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    Slice { k: usize, n: usize },
    Hash { k: usize, n: usize },
}

impl Partition {
    /// Whether the item at `index` (0-based, in the whole run's order) named `name` is in this
    /// partition.
    pub fn keeps(&self, index: usize, name: &str) -> bool {
        match *self {
            Partition::Slice { k, n } => index % n == k - 1,
            Partition::Hash { k, n } => {
                let d = crate::digest::Digest::of(name.as_bytes());
                let first = u64::from_str_radix(&d.hex()[..16], 16).expect("hex digits");
                (first % n as u64) as usize == k - 1
            }
        }
    }
}

impl FromStr for Partition {
    type Err = Reason;

    fn from_str(s: &str) -> Result<Self, Reason> {
        let bad = || format!("'{s}' is not a partition: use slice:K/N or hash:K/N, 1 <= K <= N");
        let (how, kn) = s.split_once(':').ok_or_else(bad)?;
        let (k, n) = kn.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if k == 0 || k > n {
            return Err(bad().into());
        }
        match how {
            "slice" => Ok(Partition::Slice { k, n }),
            "hash" => Ok(Partition::Hash { k, n }),
            _ => Err(bad().into()),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Slice { k, n } => write!(f, "slice:{k}/{n}"),
            Partition::Hash { k, n } => write!(f, "hash:{k}/{n}"),
        }
    }
}

/// What a partial report records about the whole it is part of.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Partitioned {
    /// The partition this report holds, `slice:K/N` or `hash:K/N`.
    pub partition: String,
    /// How many runs (specs or fleet components) the whole holds.
    pub total: usize,
}

#[cfg(test)]
mod tests {
    use super::Partition;

    #[test]
    fn every_item_is_in_exactly_one_partition() {
        for spelling in ["slice", "hash"] {
            let parts: Vec<Partition> = (1..=3)
                .map(|k| format!("{spelling}:{k}/3").parse().unwrap())
                .collect();
            for i in 0..30 {
                let name = format!("item-{i}");
                let n = parts.iter().filter(|p| p.keeps(i, &name)).count();
                assert_eq!(n, 1, "{spelling} {name}");
            }
        }
        let p: Partition = "slice:2/3".parse().unwrap();
        assert!(p.keeps(1, "x") && p.keeps(4, "y") && !p.keeps(2, "x"));
        assert_eq!(p.to_string(), "slice:2/3");
    }

    #[test]
    fn bad_spellings_are_refused() {
        for s in [
            "slice:0/3",
            "slice:4/3",
            "count:1/2",
            "hash:1",
            "slice:a/2",
            "hash:1/0",
        ] {
            assert!(s.parse::<Partition>().is_err(), "{s}");
        }
    }
}
