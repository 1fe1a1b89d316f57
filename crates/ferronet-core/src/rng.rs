//! Seeded randomness. One user seed drives independent streams (init, shuffle)
//! so changing how many numbers one consumer draws never shifts the other.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub type Rng = ChaCha8Rng;

/// Stream ids: one per consumer of randomness.
pub const STREAM_INIT: u64 = 1;
pub const STREAM_SHUFFLE: u64 = 2;

/// A generator for `stream` of the run seeded by `seed`.
pub fn stream(seed: u64, stream: u64) -> Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
