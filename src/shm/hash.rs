//! Keyed hashes of the shared tables: the 128-bit key of a name or a tuple
//! of byte strings ([`parts_key`]), and the hash that picks a key's bucket
//! (`bucket_hash`).
//!
//! Both are folded 64×64→128-bit multiplies over 8-byte words under a
//! 128-bit secret drawn once per start ([`random_seed`]) and kept in the
//! mapping's header, so every forked process computes the same key and an
//! attacker, who does not know the secret, cannot choose names that share
//! a key or a bucket. Two independent lanes give the two halves of a key.
//! Each part is preceded by its length, so parts cannot run into each
//! other (`["ab", "c"]` and `["a", "bc"]` differ). Nothing allocates; a
//! name of a few dozen bytes costs a few dozen multiplies (SipHash, run
//! twice, cost about 4000 instructions a request).

use crate::util::clock::clock_ns;

/// Odd constants (wyhash's) that make the lanes differ.
const P: [u64; 4] = [
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
];

/// 128 random bits for a keyed hash, read once per start (before the fork).
pub fn random_seed() -> [u64; 2] {
    let mut seed = [0u64; 2];
    // SAFETY: writes at most 16 bytes into `seed`.
    let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 16, 0) };
    if n != 16 {
        // No entropy source: still distinct per start.
        seed = [
            clock_ns() ^ 0x9e37_79b9_7f4a_7c15,
            u64::from(std::process::id()) << 32 | 0x5bd1,
        ];
    }
    seed
}

/// Mix two 64-bit words into one (folded 128-bit multiply).
#[inline]
pub(crate) fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The bucket-picking hash of a key under a per-table seed.
#[inline]
pub(crate) fn bucket_hash(key: [u64; 2], seed: [u64; 2]) -> u64 {
    let h = fold(key[0] ^ seed[0], key[1] ^ seed[1] ^ 0x9e37_79b9_7f4a_7c15);
    fold(h ^ 0xbf58_476d_1ce4_e5b9, seed[0] ^ 0x94d0_49bb_1331_11eb)
}

/// The 128-bit key of a tuple of byte strings under `secret`: equal for
/// equal tuples in every process that shares the secret. Two lanes, each
/// its own state and secret multiplier, read every word once together.
pub fn parts_key(secret: [u64; 2], parts: &[&[u8]]) -> [u64; 2] {
    let k = [secret[1], secret[0].rotate_left(32)];
    let mut h = [secret[0] ^ P[0], secret[1] ^ P[3]];
    let mut mix = |w: u64, c: u64| {
        h[0] = fold(h[0] ^ w, k[0] ^ c);
        h[1] = fold(h[1] ^ w, k[1] ^ c);
    };
    for p in parts {
        mix(p.len() as u64, P[0]);
        let mut words = p.chunks_exact(8);
        for w in &mut words {
            mix(u64::from_le_bytes(w.try_into().expect("8 bytes")), P[1]);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            mix(tail_word(rest), P[1]);
        }
    }
    [fold(h[0] ^ P[2], k[0] ^ P[3]), fold(h[1] ^ P[2], k[1] ^ P[3])]
}

/// 1 to 7 bytes as a little-endian word, zero above them, read by two
/// overlapping loads (a copy into a zeroed word calls memcpy).
#[inline]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    debug_assert!((1..8).contains(&n));
    let le32 = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")));
    let le16 = |b: &[u8]| u64::from(u16::from_le_bytes(b.try_into().expect("2 bytes")));
    if n >= 4 {
        le32(&rest[..4]) | (le32(&rest[n - 4..]) >> (8 * (8 - n))) << 32
    } else if n >= 2 {
        le16(&rest[..2]) | (le16(&rest[n - 2..]) >> (8 * (4 - n))) << 16
    } else {
        u64::from(rest[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_splits_and_secrets_give_distinct_keys() {
        let s = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        let splits: [&[&[u8]]; 8] = [
            &[b"abc"],
            &[b"ab", b"c"],
            &[b"a", b"bc"],
            &[b"abc", b""],
            &[b"", b"abc"],
            &[b"a", b"b", b"c"],
            &[b"abc\0"],
            &[b"abcdefgh", b"i"],
        ];
        let keys: Vec<[u64; 2]> = splits.iter().map(|p| parts_key(s, p)).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Same input, same key; the halves are independent lanes.
        assert_eq!(parts_key(s, &[b"abc"]), keys[0]);
        assert_ne!(keys[0][0], keys[0][1]);
        // Another secret, another key for the same name.
        assert_ne!(parts_key([s[0] ^ 1, s[1]], &[b"abc"]), keys[0]);
        assert_ne!(parts_key([s[0], s[1] ^ 2], &[b"abc"]), keys[0]);
        assert_ne!(random_seed(), random_seed());
    }

    /// One lane alone, word by word, as the key was first written.
    fn lane(mut h: u64, k: u64, parts: &[&[u8]]) -> u64 {
        for p in parts {
            h = fold(h ^ p.len() as u64, k ^ P[0]);
            for w in p.chunks(8) {
                let mut b = [0u8; 8];
                b[..w.len()].copy_from_slice(w);
                h = fold(h ^ u64::from_le_bytes(b), k ^ P[1]);
            }
        }
        fold(h ^ P[2], k ^ P[3])
    }

    #[test]
    fn the_lanes_read_together_are_each_lane_alone() {
        let s = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        let text = b"a84b4c76e66710@pc33.atlanta.example.com";
        for n in 0..text.len() {
            let parts: [&[u8]; 3] = [&text[..n], b"314159", b"INVITE"];
            let one = [
                lane(s[0] ^ P[0], s[1], &parts),
                lane(s[1] ^ P[3], s[0].rotate_left(32), &parts),
            ];
            assert_eq!(parts_key(s, &parts), one, "{n} bytes");
        }
    }

    #[test]
    fn a_tail_is_its_bytes_zero_padded() {
        let bytes = [0x81u8, 2, 0xf3, 4, 5, 0xa6, 7];
        for n in 1..8 {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(tail_word(&bytes[..n]), u64::from_le_bytes(b), "{n} bytes");
        }
    }

    #[test]
    fn no_collisions_among_many_similar_names() {
        let s = random_seed();
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            let name = format!("sip:{i}@example.org");
            assert!(seen.insert(parts_key(s, &[name.as_bytes()])), "{name}");
        }
    }
}
