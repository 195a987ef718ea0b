//! The dial check's numbering-plan lookup (`fraud::plan`, the `phonenumber`
//! crate): what loading the metadata costs in time and memory, the first
//! lookup of a number per country (its patterns compiled) and the lookups
//! after, and the URI reading before it (`fraud::dial`). Printed, never
//! asserted.

use sipguard::fraud::config::FraudConfig;
use sipguard::fraud::dial::{canonical, DialUri, Scheme};
use sipguard::fraud::plan;
use std::hint::black_box;
use std::time::Instant;

const N: u32 = 20_000;

/// Resident and private-dirty kB of this process (Linux).
fn memory_kb() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Private_Dirty:"))
}

const NUMBERS: [&str; 8] = [
    "449098790000",
    "442071234567",
    "447911123456",
    "4990012345678",
    "4915112345678",
    "18005551234",
    "12125550100",
    "33612345678",
];

fn main() {
    let (rss0, dirty0) = memory_kb();
    let t = Instant::now();
    plan::load();
    let load = t.elapsed();
    let (rss1, dirty1) = memory_kb();
    println!(
        "plan: metadata load {:.1} ms, +{} kB resident, +{} kB private dirty (shared copy-on-write after the fork)",
        load.as_secs_f64() * 1e3,
        rss1.saturating_sub(rss0),
        dirty1.saturating_sub(dirty0)
    );
    for n in NUMBERS {
        let t = Instant::now();
        let c = plan::class(n.as_bytes());
        println!(
            "plan: first lookup of +{n}: {:?} in {:.0} us",
            c.map(|c| c.name()),
            t.elapsed().as_secs_f64() * 1e6
        );
    }
    let (rss2, dirty2) = memory_kb();
    println!(
        "plan: after the first lookups +{} kB resident, +{} kB private dirty (compiled patterns, per process)",
        rss2.saturating_sub(rss1),
        dirty2.saturating_sub(dirty1)
    );
    let t = Instant::now();
    for i in 0..N {
        black_box(plan::class(black_box(
            NUMBERS[i as usize % NUMBERS.len()].as_bytes(),
        )));
    }
    println!(
        "plan: {:.1} us per lookup after the first ({} lookups over {} countries' numbers)",
        t.elapsed().as_secs_f64() * 1e6 / N as f64,
        N,
        NUMBERS.len()
    );
    let cfg = FraudConfig::default();
    let uri = DialUri {
        scheme: Scheme::Sip,
        user: b"49301234;phone-context=+88-16",
        user_phone: true,
        tel_params: b"",
    };
    let t = Instant::now();
    for _ in 0..N * 50 {
        black_box(canonical(black_box(&uri), &cfg)).ok();
    }
    println!(
        "dial: {:.0} ns per URI read (user=phone with phone-context)",
        t.elapsed().as_secs_f64() * 1e9 / (N * 50) as f64
    );
}
