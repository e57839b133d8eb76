//! A seeded source of chance for the rate-based modes of the interceptors: the same seed
//! draws the same sequence, so a run that showed something can be told apart from one that
//! did not by its seed alone (requests from concurrent tasks still draw in the order they
//! happen to come).

use std::sync::{Arc, Mutex};

/// SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): one `u64` of state, good enough statistics for picking which requests to
/// refuse, and no dependency. Clones share the sequence.
#[derive(Debug, Clone)]
pub struct Chance {
    state: Arc<Mutex<u64>>,
}

impl Chance {
    pub fn seeded(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(seed)),
        }
    }

    /// A seed nobody chose: for runs that are not meant to be repeated.
    pub fn random_seed() -> u64 {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        u64::from_le_bytes(bytes[..8].try_into().expect("8 of 16 bytes"))
    }

    fn next(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `true` with probability `rate` (clamped to 0..=1): 0 never, 1 always.
    pub fn hits(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        // 53 bits: every value exactly representable, uniform in [0, 1).
        let draw = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        draw < rate
    }

    /// One of `0..count` (`count` > 0), uniformly enough for a handful of choices.
    pub fn pick(&self, count: usize) -> usize {
        (self.next() % count.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_sequence() {
        let (a, b) = (Chance::seeded(7), Chance::seeded(7));
        let first: Vec<bool> = (0..64).map(|_| a.hits(0.5)).collect();
        let second: Vec<bool> = (0..64).map(|_| b.hits(0.5)).collect();
        assert_eq!(first, second);
        let c = Chance::seeded(8);
        let other: Vec<bool> = (0..64).map(|_| c.hits(0.5)).collect();
        assert_ne!(first, other, "another seed, another sequence");
    }

    #[test]
    fn a_rate_is_kept_over_many_draws() {
        let chance = Chance::seeded(42);
        let hits = (0..20_000).filter(|_| chance.hits(0.05)).count();
        assert!((800..1200).contains(&hits), "{hits} of 20000 at 5%");
        assert!(!(0..1000).any(|_| chance.hits(0.0)));
        assert!((0..1000).all(|_| chance.hits(1.0)));
        let picks: std::collections::HashSet<usize> = (0..200).map(|_| chance.pick(4)).collect();
        assert_eq!(picks.len(), 4, "every choice comes up");
        assert!(picks.iter().all(|p| *p < 4));
    }
}
