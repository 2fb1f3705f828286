//! The key space: `--keys N` distinct keys, built once and shared by every worker.
//!
//! Key i is `k`, then zeros, then i in decimal, padded to its size. Its size is drawn from the
//! key-size distribution with a uniform value derived by hashing i and the seed (as mutilate's
//! key generator does), so key i has the same size in every request, on every worker, in every
//! run with that seed. Two keys never collide: keys of one size differ in their digits, keys of
//! different sizes differ in length.

use crate::dist::SizeDist;
use crate::rng::{mix64, unit_open};

/// memcached's longest key.
pub const MAX_KEY: usize = 250;

/// Every key of a run, packed into one buffer.
#[derive(Debug, Clone)]
pub struct KeySpace {
    bytes: Vec<u8>,
    /// Key i is `bytes[ends[i - 1]..ends[i]]` (from 0 for key 0).
    ends: Vec<usize>,
    /// How many keys had to be lengthened to stay unique (their drawn size was too short).
    pub lengthened: u64,
    /// How many keys were cut to `MAX_KEY` bytes.
    pub shortened: u64,
}

impl KeySpace {
    /// Builds `count` keys (at least 1) with sizes from `sizes`.
    pub fn new(count: u64, sizes: &SizeDist, seed: u64) -> Result<KeySpace, String> {
        if count == 0 {
            return Err("--keys must be at least 1".to_string());
        }
        let digits = (count - 1).to_string().len();
        let shortest = digits + 1;
        if shortest > MAX_KEY {
            return Err(format!(
                "--keys {count} is too many to name in {MAX_KEY}-byte keys"
            ));
        }
        if let SizeDist::Fixed(size) | SizeDist::Uniform { low: size, .. } = *sizes {
            if size as usize > MAX_KEY {
                return Err(format!(
                    "key size {size} is over memcached's {MAX_KEY}-byte key limit"
                ));
            }
        }
        let mean_guess = sizes
            .upper_bound()
            .map_or(40, |bound| bound as usize)
            .min(MAX_KEY);
        let mut space = KeySpace {
            bytes: Vec::with_capacity(count as usize * mean_guess.max(shortest)),
            ends: Vec::with_capacity(count as usize),
            lengthened: 0,
            shortened: 0,
        };
        let key_seed = mix64(seed ^ 0x6b65_7973); // "keys"
        for index in 0..count {
            let drawn = sizes
                .size_at(unit_open(mix64(key_seed ^ index)), 1, usize::MAX)
                .min(usize::MAX / 2);
            let size = drawn.clamp(shortest, MAX_KEY);
            if drawn < shortest {
                space.lengthened += 1;
            } else if drawn > MAX_KEY {
                space.shortened += 1;
            }
            let number = index.to_string();
            space.bytes.push(b'k');
            space
                .bytes
                .extend(std::iter::repeat_n(b'0', size - 1 - number.len()));
            space.bytes.extend_from_slice(number.as_bytes());
            space.ends.push(space.bytes.len());
        }
        Ok(space)
    }

    /// How many keys there are.
    pub fn len(&self) -> u64 {
        self.ends.len() as u64
    }

    /// Whether there are no keys (never, once built).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Key number `index`.
    pub fn key(&self, index: u64) -> &[u8] {
        let index = index as usize;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.bytes[start..self.ends[index]]
    }

    /// The mean key size in bytes.
    pub fn mean_size(&self) -> f64 {
        self.bytes.len() as f64 / self.ends.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::dist::FB_KEY;

    #[test]
    fn fixed_size_keys_are_padded_and_distinct() {
        let space = KeySpace::new(1000, &SizeDist::Fixed(30), 1).unwrap();
        assert_eq!(space.key(0), b"k00000000000000000000000000000");
        assert_eq!(space.key(999), b"k00000000000000000000000000999");
        let all: HashSet<&[u8]> = (0..1000).map(|i| space.key(i)).collect();
        assert_eq!(all.len(), 1000);
        assert!((0..1000).all(|i| space.key(i).len() == 30));
    }

    #[test]
    fn variable_sizes_are_stable_per_key_and_unique() {
        let a = KeySpace::new(5000, &FB_KEY, 42).unwrap();
        let b = KeySpace::new(5000, &FB_KEY, 42).unwrap();
        assert!((0..5000).all(|i| a.key(i) == b.key(i)));
        let all: HashSet<&[u8]> = (0..5000).map(|i| a.key(i)).collect();
        assert_eq!(all.len(), 5000);
        // The ETC key size has median about 34 bytes and mean about 35.
        assert!((a.mean_size() - 35.0).abs() < 1.5, "{}", a.mean_size());
        assert!((0..5000)
            .all(|i| a.key(i).len() <= MAX_KEY && a.key(i).iter().all(u8::is_ascii_alphanumeric)));
    }

    #[test]
    fn short_sizes_are_lengthened_to_stay_unique() {
        let space = KeySpace::new(100, &SizeDist::Fixed(1), 1).unwrap();
        assert_eq!(space.key(7), b"k07");
        assert_eq!(space.lengthened, 100);
    }

    #[test]
    fn impossible_key_spaces_are_refused() {
        assert!(KeySpace::new(0, &SizeDist::Fixed(30), 1)
            .unwrap_err()
            .contains("at least 1"));
        assert!(KeySpace::new(10, &SizeDist::Fixed(251), 1)
            .unwrap_err()
            .contains("250-byte key limit"));
    }
}
