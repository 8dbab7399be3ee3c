//! The keyed hash of the large open tables (the Crypto-PAn cache, the seen
//! store's fingerprint table): their keys come from traffic anyone can send,
//! so each table mixes them with a seed of its own, drawn at start, and
//! keys cannot be prepared to collide in one set or slot run.

use std::hash::BuildHasher;

/// The high and low halves of the 128-bit product, folded together.
pub fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A fresh random seed (two odd words), from the process's hash keys.
pub fn random_seed() -> [u64; 2] {
    let random = std::collections::hash_map::RandomState::new();
    [
        random.hash_one(0x5eed_0001u64) | 1,
        random.hash_one(0x5eed_0002u64) | 1,
    ]
}
