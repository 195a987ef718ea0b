//! Two engines as two nodes: bodies carried by hand between them.

use super::*;
use crate::cluster::wire::Message;
use crate::engine::cluster::Refused;
use crate::sip::addr::Key;
use crate::util::clock::NS_PER_SEC as S;
use std::sync::atomic::Ordering::Relaxed;

fn node() -> Engine {
    small_region(|c| {
        c.cluster = true;
        c.flood.table_size = 1024;
    })
}

const PEER: u128 = 0xffff_7f00_0102; // ::ffff:127.0.1.2

fn carry(from: &Engine, to: &Engine, now: u64) -> usize {
    let mut n = 0;
    for b in from.cluster_outgoing() {
        n += to
            .cluster_receive(PEER, true, b.as_bytes(), now, None)
            .unwrap()
            .applied;
    }
    n
}

fn banned(e: &Engine, addr: &str, now: u64) -> bool {
    let bits = Key::parse(addr, 64).unwrap().bits.to_be_bytes();
    e.flood.drop_check(&bits, now).unwrap()
}

#[test]
fn bans_and_unbans_reach_the_peer_once_and_are_not_sent_back() {
    let (a, b) = (node(), node());
    let t = 1000 * S;
    a.flood.ban("192.0.2.7", Some(300 * S), t).unwrap();
    a.flood.ban("192.0.2.8", None, t).unwrap();
    let first = a.cluster_outgoing();
    for body in &first {
        b.cluster_receive(PEER, true, body.as_bytes(), t, None).unwrap();
    }
    assert!(banned(&b, "192.0.2.7", t) && banned(&b, "192.0.2.8", t));
    // Applied changes are not queued again: no loop.
    assert!(b.cluster_outgoing().is_empty());
    // The same body twice changes nothing the second time.
    a.flood.ban("192.0.2.9", None, t).unwrap();
    let bodies = a.cluster_outgoing();
    let r = b
        .cluster_receive(PEER, true, bodies[0].as_bytes(), t, None)
        .unwrap();
    assert_eq!((r.message, r.applied), (Message::Changes, 1));
    assert_eq!(
        b.cluster_receive(PEER, true, bodies[0].as_bytes(), t, None)
            .unwrap()
            .applied,
        0
    );
    // An unban at B reaches A...
    b.flood.unban("192.0.2.7", t + S).unwrap();
    assert_eq!(carry(&b, &a, t + S), 1);
    assert!(!banned(&a, "192.0.2.7", t + S) && banned(&a, "192.0.2.8", t + S));
    // ... and a late copy of the ban it ended does not undo it, anywhere.
    let again = b
        .cluster_receive(PEER, true, first[0].as_bytes(), t + S, None)
        .unwrap();
    assert_eq!(again.applied, 0);
    assert!(!banned(&b, "192.0.2.7", t + S));
}

#[test]
fn untrusted_or_foreign_messages_change_nothing() {
    let (a, b) = (node(), node());
    let t = 1000 * S;
    a.flood.ban("192.0.2.7", None, t).unwrap();
    let body = a.cluster_outgoing().remove(0);
    assert_eq!(
        b.cluster_receive(PEER, false, body.as_bytes(), t, None),
        Err(Refused::Untrusted)
    );
    assert!(!banned(&b, "192.0.2.7", t));
    assert!(matches!(
        b.cluster_receive(PEER, true, b"REGISTER sip:x SIP/2.0", t, None),
        Err(Refused::Bad(_))
    ));
    assert_eq!(b.cluster.as_ref().unwrap().head().refused.load(Relaxed), 2);
    // With clustering off nothing is mapped and nothing received.
    let off = small_region(|_| {});
    assert!(off.cluster.is_none() && off.cluster_outgoing().is_empty());
    assert_eq!(
        off.cluster_receive(PEER, true, body.as_bytes(), t, None),
        Err(Refused::Off)
    );
}

#[test]
fn a_peer_is_exempt_and_an_expired_ban_is_not_resurrected() {
    let (a, b) = (node(), node());
    let t = 1000 * S;
    a.flood.ban("192.0.2.7", Some(2 * S), t).unwrap();
    let body = a.cluster_outgoing().remove(0);
    // Delivered after its end (a node stopped meanwhile): history only.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    b.cluster_receive(PEER, true, body.as_bytes(), t, None).unwrap();
    assert!(!banned(&b, "192.0.2.7", t));
    // The peer that sent it is exempt from every check, bans included.
    let peer = Key::parse("127.0.1.2", 64).unwrap();
    assert!(b.flood.allowlisted(peer.bits));
    assert!(b.flood.ban("127.0.1.2", None, t).is_err());
}

#[test]
fn a_snapshot_gives_a_joining_node_every_ban() {
    let (a, b) = (node(), node());
    let t = 1000 * S;
    for i in 0..300 {
        a.flood
            .ban(&format!("10.0.{}.{}", i / 200, i % 200 + 1), None, t)
            .unwrap();
    }
    let chunks = a.cluster_snapshot(t, None);
    assert!(!chunks.is_empty());
    let mut applied = 0;
    for c in &chunks {
        applied += b
            .cluster_receive(PEER, true, c.as_bytes(), t, None)
            .unwrap()
            .applied;
    }
    // Every ban A holds (a crowded bucket may have lifted a few of the 300).
    let held = a.flood.live_bans(t, |_| 1).len();
    assert!(held > 250, "{held}");
    assert_eq!(applied, held);
    assert!(banned(&b, "10.0.1.50", t));
    assert_eq!(b.cluster.as_ref().unwrap().head().synced.load(Relaxed), 1);
}

#[test]
fn throttles_and_suspensions_reach_the_peer_and_their_liftings_too() {
    use crate::cluster::{wall_us, wire, Change, Kind};
    let (a, b) = (node(), node());
    let t = 1000 * S;
    let (fa, fb) = (a.fraud(t).unwrap(), b.fraud(t).unwrap());
    // A suspension at A (RPC here; a crossed threshold goes the same way).
    assert!(fa.suspend(b"acct-7", t, 1_700_000_000_000).unwrap());
    let body = a.cluster_outgoing().remove(0);
    assert!(body.contains("\nS 616363742d37 3 "), "{body}");
    let r = b
        .cluster_receive(PEER, true, body.as_bytes(), t, Some(&fb))
        .unwrap();
    assert_eq!(r.applied, 1);
    let suspended = |f: &crate::fraud::Fraud| {
        let mut s = false;
        f.list(t, |i| {
            s |= i.name == b"acct-7" && i.suspended.is_some();
            true
        });
        s
    };
    assert!(suspended(&fb));
    // Not sent back; lifted at B, lifted at A.
    assert!(b.cluster_outgoing().is_empty());
    fb.unsuspend(b"acct-7", t).unwrap();
    let back = b.cluster_outgoing().remove(0);
    a.cluster_receive(PEER, true, back.as_bytes(), t, Some(&fa))
        .unwrap();
    assert!(!suspended(&fa));
    // A throttle from a peer, then its lifting by RPC here, which goes out.
    let th = Change {
        until_ms: wall_us() / 1000 + 60_000,
        offences: 5,
        ts_us: wall_us(),
        ..Change::of_name(Kind::Throttle, b"alice")
    };
    let body = wire::encode(&[th], false, 60_000).remove(0);
    assert_eq!(
        b.cluster_receive(PEER, true, body.as_bytes(), t, None)
            .unwrap()
            .applied,
        1
    );
    let users = b.guess_users(t, 10);
    assert!(
        users.iter().any(|u| u.name == b"alice" && u.throttled_s > 50),
        "{users:?}"
    );
    // A joining node gets the throttle and the suspension from a snapshot.
    let c = node();
    let fc = c.fraud(t).unwrap();
    fb.suspend(b"acct-8", t, 1_700_000_000_000).unwrap();
    let _ = b.cluster_outgoing();
    for chunk in b.cluster_snapshot(t, Some(&fb)) {
        c.cluster_receive(PEER, true, chunk.as_bytes(), t, Some(&fc))
            .unwrap();
    }
    assert!(c
        .guess_users(t, 10)
        .iter()
        .any(|u| u.name == b"alice" && u.throttled_s > 0));
    let mut has = false;
    fc.list(t, |i| {
        has |= i.name == b"acct-8" && i.suspended.is_some();
        true
    });
    assert!(has);
    assert!(b.guess_unthrottle(b"alice", t));
    let out = b.cluster_outgoing();
    assert!(out[0].contains("\nt 616c696365 "), "{out:?}");
    // An unsuspend of an account not suspended here still reaches the
    // peers, which may hold the suspension.
    assert!(fa.unsuspend(b"acct-8", t).is_err());
    let out = a.cluster_outgoing();
    assert!(out[0].contains("\ns 616363742d38 "), "{out:?}");
}

#[test]
fn a_guess_split_across_nodes_reaches_the_threshold_of_the_cluster() {
    use crate::guess::Request;
    let cfg = |c: &mut crate::engine::config::Config| {
        c.cluster = true;
        c.guess.user_maxretry = 4;
        c.guess.auth_maxretry = 100;
    };
    let (a, b) = (small_region(cfg), small_region(cfg));
    let creds = b"Digest username=\"1001\"";
    let reg = |call_id: &'static str| Request {
        method: b"REGISTER",
        to: b"<sip:1001@example.org>",
        to_user: b"1001",
        call_id: call_id.as_bytes(),
        cseq_num: b"1",
        cseq_method: b"REGISTER",
        from: b"<sip:x@example.org>;tag=ft",
        auth_user: b"1001",
        credentials: creds,
        ..Default::default()
    };
    let owner = [127, 0, 0, 50];
    b.guess_authenticated(&owner, &reg("ok"), 1);
    let guess = |e: &Engine, i: u8, call_id: &'static str| {
        let src = [127, 0, 2, i];
        e.guess_request(&src, &reg(call_id), 2);
        e.guess_auth_failed(&src, &reg(call_id), 2);
    };
    // Two guesses at A, two at B: under the threshold on each node alone.
    guess(&a, 1, "g1");
    guess(&a, 2, "g2");
    for body in a.cluster_outgoing() {
        b.cluster_receive(PEER, true, body.as_bytes(), 2, None).unwrap();
    }
    let throttled = |e: &Engine| {
        e.guess_users(3, 10)
            .iter()
            .any(|u| u.name == b"1001" && u.throttled_s > 0)
    };
    guess(&b, 3, "g3");
    assert!(!throttled(&b));
    guess(&b, 4, "g4");
    // 2 here + 2 at A: the cluster's threshold.
    assert!(throttled(&b));
    assert!(!b.guess_auth_allowed(&[127, 0, 2, 9], &reg("x"), 3));
    assert!(b.guess_auth_allowed(&owner, &reg("y"), 3));
    // The throttle itself reaches A.
    for body in b.cluster_outgoing() {
        a.cluster_receive(PEER, true, body.as_bytes(), 2, None).unwrap();
    }
    assert!(throttled(&a));
}

#[test]
fn an_accounts_calls_count_across_the_nodes_and_age_out() {
    use crate::fraud::accounts::CallTicket;
    use crate::fraud::money::Money;
    use crate::fraud::StartVerdict;
    use crate::util::fixed_buf::FixedBuf;
    let (a, b) = (node(), node());
    let t = 1000 * S;
    let (fa, fb) = (a.fraud(t).unwrap(), b.fraud(t).unwrap());
    let tickets: Vec<CallTicket> = (0..6).map(|_| CallTicket::default()).collect();
    let mut why = FixedBuf::<96>::new();
    let mut start =
        |f: &crate::fraud::Fraud, i: usize| f.call_start(b"carol", 3, Money(0), t, &tickets[i], &mut why);
    // Alternating nodes, limit 3: A, B, A admitted, then B refused.
    assert_eq!(start(&fa, 0), StartVerdict::Admitted);
    for body in a.cluster_outgoing() {
        b.cluster_receive(PEER, true, body.as_bytes(), t, Some(&fb))
            .unwrap();
    }
    assert_eq!(start(&fb, 1), StartVerdict::Admitted);
    for body in b.cluster_outgoing() {
        a.cluster_receive(PEER, true, body.as_bytes(), t, Some(&fa))
            .unwrap();
    }
    assert_eq!(start(&fa, 2), StartVerdict::Admitted);
    for body in a.cluster_outgoing() {
        b.cluster_receive(PEER, true, body.as_bytes(), t, Some(&fb))
            .unwrap();
    }
    assert_eq!(start(&fb, 3), StartVerdict::LimitReached);
    assert_eq!(start(&fa, 4), StartVerdict::LimitReached);
    // A's calls stop counting at B once A stops sending (a dead peer).
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(start(&fb, 5), StartVerdict::Admitted);
}

#[test]
fn attempts_split_across_nodes_cross_the_clusters_threshold() {
    use crate::fraud::DialVerdict;
    use crate::util::fixed_buf::FixedBuf;
    let rules = std::env::temp_dir().join(format!("sipguard-cluster-cpm-{}.txt", std::process::id()));
    std::fs::write(&rules, "prefix 1 domestic 0.01\naccount default domestic\n").unwrap();
    let cfg = |c: &mut crate::engine::config::Config| {
        c.cluster = true;
        c.fraud.rules_file = Some(rules.clone());
        c.fraud.cpm_critical = 5;
    };
    let (a, b) = (small_region(cfg), small_region(cfg));
    let t = 1000 * S;
    let (fa, fb) = (a.fraud(t).unwrap(), b.fraud(t).unwrap());
    let dial = |f: &crate::fraud::Fraud| {
        let mut why = FixedBuf::<128>::new();
        f.dial_check(b"dave", b"12125550100", t, 0, &mut why).verdict
    };
    for _ in 0..3 {
        assert_eq!(dial(&fa), DialVerdict::Allowed);
    }
    // A's tick sends its usage; B adds it to its own.
    fa.tick(t, 0, |_, _| {});
    for body in a.cluster_outgoing() {
        b.cluster_receive(PEER, true, body.as_bytes(), t, Some(&fb))
            .unwrap();
    }
    assert_eq!(dial(&fb), DialVerdict::Allowed);
    assert_eq!(dial(&fb), DialVerdict::Allowed);
    // 3 at A + 3 here = 6 > 5: suspended here, and so at A.
    assert_eq!(dial(&fb), DialVerdict::Velocity);
    for body in b.cluster_outgoing() {
        a.cluster_receive(PEER, true, body.as_bytes(), t, Some(&fa))
            .unwrap();
    }
    assert_eq!(dial(&fa), DialVerdict::Suspended);
    let _ = std::fs::remove_file(&rules);
}
