//! Simulated decisions (declines, carrier failures) that a retry of the same order repeats.

use uuid::Uuid;

/// A number in [0, 1) that depends only on `seed`, `salt` and `id`: simulated decisions that a retry repeats.
#[must_use]
pub fn draw(seed: u64, salt: u64, id: Uuid) -> f64 {
    // splitmix64 over the id's two halves.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let (high, low) = id.as_u64_pair();
    let h = mix(mix(mix(seed ^ salt) ^ high) ^ low);
    (h >> 11) as f64 / (1u64 << 53) as f64
}
