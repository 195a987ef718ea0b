//! ns per blocklist lookup for lists of 10, 1 000, 100 000 and 1 000 000
//! entries (single addresses and a few /24 and /16 networks, as a feed and
//! an operator's own additions give), for a listed address and for one not
//! listed (the usual case), and ms to publish each list. Figures are
//! printed, never asserted. `harness = false`.

use sipguard::blocklist::config::BlocklistConfig;
use sipguard::blocklist::file::Net;
use sipguard::blocklist::Blocklist;
use sipguard::shm::store::Store;
use sipguard::sip::addr::address_bits;
use std::hint::black_box;
use std::time::Instant;

const LOOKUPS: u64 = 2_000_000;

/// A scattered IPv4 address from `i` (a multiplicative hash).
fn v4(i: u64) -> u128 {
    let a = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32;
    address_bits(&a.to_be_bytes()).unwrap()
}

fn list(n: usize) -> (Blocklist, Vec<Net>) {
    let cfg = BlocklistConfig {
        file: Some("bench".into()),
        max: n as u32,
    };
    let b = Store::alone(|p| Blocklist::plan(p, &cfg), |s, a| Blocklist::attach(s, a, &cfg)).unwrap();
    let mut nets: Vec<Net> = (0..n as u64)
        .map(|i| Net {
            bits: v4(i),
            len: 128,
        })
        .collect();
    // a few networks: three prefix lengths in all
    for (k, len) in [(1u64, 120u8), (2, 112)] {
        if let Some(n) = nets.get_mut(k as usize) {
            n.len = len;
            n.bits &= u128::MAX << (128 - len);
        }
    }
    (b, nets)
}

fn per_lookup(b: &Blocklist, addr: impl Fn(u64) -> u128) -> f64 {
    let start = Instant::now();
    let mut found = 0u64;
    for i in 0..LOOKUPS {
        found += u64::from(b.contains(black_box(addr(i))));
    }
    black_box(found);
    start.elapsed().as_nanos() as f64 / LOOKUPS as f64
}

fn main() {
    println!("blocklist lookup (one process; ns per lookup, {LOOKUPS} lookups each)");
    println!(
        "{:>10} {:>12} {:>12} {:>12} {:>10}",
        "entries", "listed", "not listed", "publish ms", "MiB"
    );
    for n in [10usize, 1_000, 100_000, 1_000_000] {
        let (b, nets) = list(n);
        let t = Instant::now();
        b.publish(&nets).unwrap();
        let publish_ms = t.elapsed().as_secs_f64() * 1e3;
        // listed: the single addresses of the list, scattered
        let listed = per_lookup(&b, |i| v4((i * 7919) % (n as u64 - 3) + 3));
        // not listed: addresses past the list's range of i
        let missing = per_lookup(&b, |i| v4(i + 10_000_000));
        let mib = (2 * (2 * n).next_power_of_two() * 24) as f64 / (1024.0 * 1024.0);
        println!("{n:>10} {listed:>12.1} {missing:>12.1} {publish_ms:>12.1} {mib:>10.1}");
    }
}
