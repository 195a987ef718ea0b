use super::wire::{decode, encode, Message, MAX_BODY};
use super::*;
use crate::sip::addr::Key;

fn ban(addr: &str, ts_us: u64) -> Change {
    Change {
        until_ms: 1_795_000_000_000,
        offences: 2,
        reason: 1,
        ts_us,
        ..Change::of_key(Kind::Ban, Key::parse(addr, 64).unwrap(), false)
    }
}

fn unban(addr: &str, ts_us: u64) -> Change {
    Change {
        kind: Kind::Unban,
        until_ms: 0,
        offences: 0,
        reason: 0,
        ..ban(addr, ts_us)
    }
}

#[test]
fn the_ring_is_bounded_drops_are_counted_and_order_kept() {
    let c = Cluster::create().unwrap();
    for i in 0..QUEUE_CAPACITY as u64 + 10 {
        c.push(&ban("192.0.2.7", i + 1));
    }
    assert_eq!(c.depth(), QUEUE_CAPACITY as u64);
    assert_eq!(c.head().dropped.load(Relaxed), 10);
    let mut out = Vec::new();
    c.drain(100, &mut out);
    assert_eq!(out.len(), 100);
    assert_eq!((out[0].ts_us, out[99].ts_us), (1, 100));
    assert_eq!(out[0], ban("192.0.2.7", 1));
    out.clear();
    c.drain(usize::MAX, &mut out);
    assert_eq!(out.len(), QUEUE_CAPACITY - 100);
    assert_eq!(c.depth(), 0);
    // Room again.
    assert!(c.push(&ban("192.0.2.8", 5)));
}

#[test]
fn the_latest_change_wins_and_a_late_ban_does_not_undo_an_unban() {
    let c = Cluster::create().unwrap();
    assert!(c.admit(&ban("192.0.2.7", 100)));
    // The same change again: not applied twice.
    assert!(!c.admit(&ban("192.0.2.7", 100)));
    // The unban that ended it, then a late copy of the ban.
    assert!(c.admit(&unban("192.0.2.7", 200)));
    assert!(!c.admit(&ban("192.0.2.7", 100)));
    assert!(!c.admit(&ban("192.0.2.7", 150)));
    // A later ban is a new change.
    assert!(c.admit(&ban("192.0.2.7", 300)));
    // Same instant: the unban wins on every node.
    assert!(c.admit(&unban("192.0.2.7", 300)));
    assert!(!c.admit(&ban("192.0.2.7", 300)));
    // A local change counts as the latest too.
    c.push(&unban("192.0.2.9", 500));
    // Names: throttles and suspensions of one name are apart.
    let t = Change {
        ts_us: 600,
        ..Change::of_name(Kind::Throttle, b"192.0.2.9")
    };
    assert!(c.admit(&t) && !c.admit(&t));
    let s = Change {
        ts_us: 600,
        ..Change::of_name(Kind::Suspend, b"192.0.2.9")
    };
    assert!(c.admit(&s));
    // A record keeps the name.
    c.push(&s);
    let mut out = Vec::new();
    c.drain(10, &mut out);
    assert_eq!(out.last(), Some(&s));
    assert!(!c.admit(&ban("192.0.2.9", 400)));
    assert_eq!(c.stamp(&ban("192.0.2.9", 0)), 500);
    // Another key is unaffected.
    assert!(c.admit(&ban("192.0.2.10", 1)));
}

#[test]
fn peers_are_remembered_and_exempt() {
    let c = Cluster::create().unwrap();
    let a = Key::parse("127.0.1.2", 64).unwrap().bits;
    let b = Key::parse("127.0.1.3", 64).unwrap().bits;
    assert!(!c.is_peer(a));
    c.peer_seen(a, 1000);
    c.peer_seen(a, 2000);
    assert!(c.is_peer(a) && !c.is_peer(b));
    let p = c.peers();
    assert_eq!((p.len(), p[0].last_in_ms, p[0].msgs_in), (1, 2000, 2)); // A peer's count adds while fresh, then ages out; the latest replaces.
    let n = |v: u32| Change {
        reason: 1,
        offences: v,
        ..Change::of_name(Kind::Count, b"alice")
    };
    let pa = c.peer_seen(a, 3000).unwrap();
    let pb = c.peer_seen(b, 3000).unwrap();
    assert_ne!(pa, pb);
    c.set_count(pa, &n(2), 3000);
    c.set_count(pa, &n(3), 3100);
    c.set_count(pb, &n(4), 3200);
    assert_eq!(c.remote_count(&n(0), 3500, 1000), 7);
    assert_eq!(c.remote_count(&n(0), 4150, 1000), 4);
    assert_eq!(c.remote_count(&n(0), 9000, 1000), 0);
    let other = Change::of_name(Kind::Count, b"bob");
    assert_eq!(c.remote_count(&other, 3500, 1000), 0);
    // Counts of another kind for the same name and peer are kept apart.
    for which in 2..40 {
        c.set_count(
            pa,
            &Change {
                reason: which,
                ..n(100 + which)
            },
            3300,
        );
    }
    assert_eq!(c.remote_count(&n(0), 3500, 1000), 7);
    assert_eq!(c.remote_count(&Change { reason: 9, ..n(0) }, 3500, 1000), 109);
}

#[test]
fn bodies_round_trip_and_split_under_the_limit() {
    let mut changes: Vec<Change> = (0..2000u32)
        .map(|i| ban(&format!("10.{}.{}.1", i / 256, i % 256), i as u64 + 1))
        .collect();
    changes.push(unban("2001:db8::1", 7));
    changes.push(Change {
        until_ms: 1_795_000_000_000,
        offences: 5,
        ts_us: 11,
        ..Change::of_name(Kind::Throttle, b"alice smith\n")
    });
    changes.push(Change {
        ts_us: 12,
        ..Change::of_name(Kind::Unthrottle, b"alice")
    });
    changes.push(Change {
        reason: 2,
        until_ms: 1_794_000_000_000,
        ts_us: 13,
        ..Change::of_name(Kind::Suspend, b"acct-7")
    });
    changes.push(Change {
        ts_us: 14,
        ..Change::of_name(Kind::Unsuspend, b"acct-7")
    });
    changes.push(Change {
        prefix: true,
        key: Key::parse_network("198.51.100.0/24").unwrap(),
        until_ms: PERMANENT_MS,
        ..ban("198.51.100.0", 9)
    });
    let bodies = encode(&changes, false, MAX_BODY);
    assert!(bodies.len() > 1);
    let mut back = Vec::new();
    for b in &bodies {
        assert!(b.len() <= MAX_BODY);
        let (m, c) = decode(b.as_bytes()).unwrap();
        assert_eq!(m, Message::Changes);
        back.extend(c);
    }
    assert_eq!(back, changes);
    // Snapshots are numbered and the last one says so; an empty one exists.
    let snap = encode(&changes, true, MAX_BODY);
    let last = decode(snap.last().unwrap().as_bytes()).unwrap().0;
    assert_eq!(
        last,
        Message::Snapshot {
            index: snap.len() as u32 - 1,
            last: true
        }
    );
    assert_eq!(
        decode(snap[0].as_bytes()).unwrap().0,
        Message::Snapshot {
            index: 0,
            last: false
        }
    );
    let empty = encode(&[], true, MAX_BODY);
    assert_eq!(
        decode(empty[0].as_bytes()).unwrap(),
        (Message::Snapshot { index: 0, last: true }, vec![])
    );
    assert!(encode(&[], false, MAX_BODY).is_empty());
}

#[test]
fn foreign_or_bad_bodies_are_refused_whole() {
    for bad in [
        "",
        "hello",
        "sipguard-cluster/2 changes\n",
        "sipguard-cluster/1 dance\n",
        "sipguard-cluster/1 changes\nB 192.0.2.7 x 1 1 1\n",
        "sipguard-cluster/1 changes\nB 999.0.2.7 1 1 1 1\n",
        "sipguard-cluster/1 changes\nX 192.0.2.7\n",
    ] {
        assert!(decode(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(
        decode(wire::sync_request().as_bytes()).unwrap(),
        (Message::Sync, vec![])
    );
}
