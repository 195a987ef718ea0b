//! `cargo fuzz run blocklist_file`: the blocklist file (`blocklist_file`,
//! src/blocklist/file.rs) from arbitrary bytes, then published.
//!
//! Properties:
//! - an error names a line that exists (line 0 only for a read error,
//!   which bytes in memory never give) and a reason;
//! - `blocklist_max` refuses exactly the files with more entries;
//! - every parsed network is a network (no host bits past its length),
//!   and parses again from its own text form to itself;
//! - published, every network's first and last address is found, the
//!   entry count is the number of distinct networks, and an address found
//!   lies in one of them (an IPv4 address, in ::ffff:0:0/96, only in one of
//!   96 bits or more: an IPv6 network wider than that is no IPv4 one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipguard::blocklist::config::BlocklistConfig;
use sipguard::blocklist::file::{parse, Net};
use sipguard::blocklist::Blocklist;
use sipguard::shm::store::Store;
use std::net::{Ipv4Addr, Ipv6Addr};

const MAX: usize = 64;

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// Whether `n` lists `bits` (an IPv4 address only in a network of 96
/// bits or more).
fn covers(n: &Net, bits: u128) -> bool {
    bits & mask(n.len) == n.bits && (bits >> 32 != 0xffff || n.len >= 96)
}

/// The text form of a network, as a file would hold it.
fn text(n: &Net) -> String {
    let v4 = n.bits >> 32 == 0xffff && n.len >= 96;
    if v4 {
        format!("{}/{}", Ipv4Addr::from(n.bits as u32), n.len - 96)
    } else {
        format!("{}/{}", Ipv6Addr::from(n.bits), n.len)
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let nets = match parse(data, MAX) {
        Err((line, why)) => {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {why}");
            assert!(!why.is_empty());
            return;
        }
        Ok(nets) => nets,
    };
    assert!(nets.len() <= MAX);
    if !nets.is_empty() {
        let (line, why) = parse(data, nets.len() - 1).expect_err("one entry too many");
        assert!(line >= 1 && why.contains("blocklist_max"), "{line}: {why}");
    }
    for n in &nets {
        assert!(n.len <= 128 && n.bits & !mask(n.len) == 0, "{n:?}");
        assert_eq!(Net::parse(&text(n)), Ok(*n), "{}", text(n));
    }
    let cfg = BlocklistConfig {
        file: Some("fuzz".into()),
        max: MAX as u32,
    };
    let b = Store::alone(|p| Blocklist::plan(p, &cfg), |s, a| Blocklist::attach(s, a, &cfg))
        .expect("store");
    let n = b.publish(&nets).expect("publish");
    let mut distinct = nets.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(n, distinct.len());
    for net in &nets {
        for (end, bits) in [("first", net.bits), ("last", net.bits | !mask(net.len))] {
            assert!(!covers(net, bits) || b.contains(bits), "{end} of {net:?}");
        }
    }
    // a few addresses from the input's bytes: found only inside a network
    for chunk in data.chunks(16) {
        let mut a = [0u8; 16];
        a[..chunk.len()].copy_from_slice(chunk);
        let bits = u128::from_be_bytes(a);
        let inside = nets.iter().any(|n| covers(n, bits));
        assert_eq!(b.contains(bits), inside, "{bits:#x}");
    }
});
