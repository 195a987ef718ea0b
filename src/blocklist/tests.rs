use super::file::Net;
use super::*;
use crate::sip::addr::{address_bits, parse_address};

fn list(max: u32) -> Blocklist {
    let cfg = BlocklistConfig {
        file: Some("unused".into()),
        max,
    };
    Store::alone(|p| Blocklist::plan(p, &cfg), |s, a| Blocklist::attach(s, a, &cfg)).unwrap()
}

fn bits(text: &str) -> u128 {
    let raw = parse_address(text).unwrap();
    address_bits(&raw).unwrap()
}

fn nets(texts: &[&str]) -> Vec<Net> {
    texts.iter().map(|t| Net::parse(t).unwrap()).collect()
}

#[test]
fn addresses_and_networks_of_both_families_match() {
    let b = list(16);
    assert!(!b.contains(bits("192.0.2.1")));
    let n = b
        .publish(&nets(&[
            "192.0.2.1",
            "198.51.100.0/24",
            "2001:db8::/32",
            "::1",
            "192.0.2.1",
        ]))
        .unwrap();
    assert_eq!(n, 4, "a duplicate counts once");
    assert_eq!((b.entries(), b.generation()), (4, 1));
    for yes in [
        "192.0.2.1",
        "198.51.100.0",
        "198.51.100.255",
        "2001:db8:1::5",
        "::1",
    ] {
        assert!(b.contains(bits(yes)), "{yes}");
    }
    for no in ["192.0.2.2", "198.51.101.1", "2001:db9::1", "::2", "10.0.0.1"] {
        assert!(!b.contains(bits(no)), "{no}");
    }
    // An IPv4 address is matched only by IPv4 networks (and IPv6 ones
    // inside the mapped range ::ffff:0:0/96).
    let b2 = list(4);
    b2.publish(&nets(&["2000::/3"])).unwrap();
    assert!(!b2.contains(bits("192.0.2.1")));
    b2.publish(&nets(&["0.0.0.0/0"])).unwrap();
    assert!(b2.contains(bits("203.0.113.9")) && !b2.contains(bits("2001:db8::1")));
    b2.publish(&nets(&["::ffff:198.51.100.0/120"])).unwrap();
    assert!(b2.contains(bits("198.51.100.7")) && b2.contains(bits("::ffff:198.51.100.7")));
}

#[test]
fn an_ipv6_network_wider_than_the_mapped_range_spares_ipv4() {
    // "::/8" is in every IPv6 bogon list; it covers ::ffff:0:0/96, where
    // IPv4 sources are kept, but lists no IPv4 address (as in the
    // permissions module, an IPv6 network never matches an IPv4 source).
    let b = list(4);
    b.publish(&nets(&["::/8", "::/0"])).unwrap();
    assert!(!b.contains(bits("192.0.2.1")), "all of IPv4 blocked by ::/8");
    assert!(!b.contains(bits("::ffff:192.0.2.1")));
    assert!(b.contains(bits("::2")) && b.contains(bits("2001:db8::1")));
}

#[test]
fn a_reload_replaces_the_whole_list() {
    let b = list(8);
    b.publish(&nets(&["192.0.2.1", "192.0.2.2"])).unwrap();
    b.publish(&nets(&["192.0.2.3"])).unwrap();
    assert!(!b.contains(bits("192.0.2.1")));
    assert!(b.contains(bits("192.0.2.3")));
    assert_eq!((b.entries(), b.generation()), (1, 2));
    assert!(b
        .publish(&nets(&["192.0.2.1"; 9]))
        .unwrap_err()
        .contains("blocklist_max (8)"));
    assert!(
        b.contains(bits("192.0.2.3")),
        "a refused publish keeps the old list"
    );
    b.publish(&[]).unwrap();
    assert!(!b.contains(bits("192.0.2.3")));
}

#[test]
fn without_a_file_nothing_is_planned_and_nothing_matches() {
    let cfg = BlocklistConfig::default();
    let mut p = Plan::new();
    let a = Blocklist::plan(&mut p, &cfg);
    assert!(p.bytes() < 640 + 64 + 2 * 64 + 64, "{}", p.bytes());
    let s = Store::create(&p).unwrap();
    let b = Blocklist::attach(&s, a, &cfg);
    assert!(!b.contains(bits("192.0.2.1")));
    assert_eq!(b.reload().unwrap_err(), "no blocklist_file is set");
}

#[test]
fn a_full_list_of_the_maximum_size_is_all_found() {
    let max = 20_000;
    let b = list(max);
    let all: Vec<Net> = (0..max)
        .map(|i| Net {
            bits: bits("10.0.0.0") + u128::from(i) * 7,
            len: 128,
        })
        .collect();
    assert_eq!(b.publish(&all).unwrap(), max as usize);
    for (i, n) in all.iter().enumerate().step_by(97) {
        assert!(b.contains(n.bits), "entry {i}");
        assert!(!b.contains(n.bits + 1), "next to entry {i}");
    }
}

#[test]
fn a_reload_while_another_holds_the_writer_is_refused() {
    let b = list(4);
    let held = lock(&b.control().writer).unwrap();
    let e = b.publish(&nets(&["192.0.2.1"])).unwrap_err();
    assert!(e.contains("in progress"), "{e}");
    drop(held);
    b.publish(&nets(&["192.0.2.1"])).unwrap();
    // A set left odd by a writer killed mid-publish is skipped by readers
    // (they fail open) and written over by the next reload.
    let set = b.control().active.load(Relaxed) as usize;
    b.header(set).seq.fetch_add(1, Relaxed);
    assert!(!b.contains(bits("192.0.2.1")));
    b.publish(&nets(&["192.0.2.1"])).unwrap();
    assert!(b.contains(bits("192.0.2.1")));
}
