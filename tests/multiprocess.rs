//! Several processes on one region, as Kamailio's forked workers use it.
//!
//! `harness = false`: the standard test harness runs tests on threads, and
//! forking a multi-threaded process is unsafe, so this is a plain program
//! that forks, waits with a deadline, and checks exact totals.

mod forking;

use forking::{check_eq, kill_rounds, spawn, wait_all};
use sipguard::engine::config::Config;
use sipguard::engine::Engine;
use sipguard::ffi::Stats;
use sipguard::flood::ban::Reason;
use sipguard::flood::config::FloodConfig;
use sipguard::flood::table::{Verdict, BAN_WAYS};
use sipguard::guess::reply::{test_reader, Outcome};
use sipguard::guess::{PolicyMark, Request};
use sipguard::util::clock::clock_ns;
use std::time::{Duration, Instant};

const S: u64 = 1_000_000_000;
fn region(cfg: impl FnOnce(&mut Config)) -> Engine {
    let mut c = Config {
        flood: FloodConfig {
            table_size: 4096,
            ..Default::default()
        },
        ..Default::default()
    };
    cfg(&mut c);
    Engine::create(&c).expect("region")
}

fn addr(i: u32) -> [u8; 4] {
    let b = i.to_be_bytes();
    [10, b[1], b[2], b[3]]
}

fn total_hits(r: &Engine) -> u64 {
    let mut n = 0;
    r.flood.for_each_entry(S, |e| {
        n += e.hits;
        true
    });
    n
}

/// Four processes, 16 shared sources, no limit reached: every request counted once.
fn exact_totals_across_processes() -> Result<(), String> {
    let r = region(|c| c.set("rate", "1000000/1s").unwrap());
    const CHILDREN: u32 = 4;
    const PER_CHILD: u32 = 50_000;
    let pids: Vec<_> = (0..CHILDREN)
        .map(|_| {
            spawn(|| {
                for i in 0..PER_CHILD {
                    let v = r.flood.check(&addr(i % 16), S + i as u64).unwrap().verdict;
                    assert_eq!(v, Verdict::Pass);
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    let stats = Stats::of(&r);
    let expected = (CHILDREN * PER_CHILD) as u64;
    check_eq("checked", stats.checked, expected)?;
    check_eq("passed", stats.passed, expected)?;
    check_eq("hits in table", total_hits(&r), expected)?;
    check_eq("entries", stats.entries_used, 16)
}

/// Four processes flood one source at one instant: exactly `burst` pass and one ban.
fn one_ban_under_contention() -> Result<(), String> {
    let r = region(|_| {});
    let pids: Vec<_> = (0..4)
        .map(|_| {
            spawn(|| {
                for _ in 0..1000 {
                    r.flood.check(&[127, 0, 0, 2], 10 * S).unwrap();
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    let s = Stats::of(&r);
    check_eq("passed", s.passed, 30)?;
    check_eq("limited", s.limited, 1)?;
    check_eq("bans", s.bans, 1)?;
    check_eq("rejected", s.rejected, 4000 - 31)
}

/// A worker SIGKILLed while holding bucket locks does not wedge the others.
fn killed_lock_holder_does_not_wedge() -> Result<(), String> {
    let r = region(|c| c.set("rate", "1000000/1s").unwrap());
    let buckets = r.flood.sources().buckets();
    // The victim takes every bucket lock and then waits to die with them held.
    let mut ready = [0i32; 2];
    // SAFETY: a plain pipe for the victim to say it holds the locks.
    assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0);
    let victim = spawn(|| {
        for i in 0..buckets {
            std::mem::forget(r.flood.sources().lock_index(i).expect("lock"));
        }
        // SAFETY: writing one byte to our pipe.
        unsafe { libc::write(ready[1], b"x".as_ptr().cast(), 1) };
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut b = [0u8; 1];
    // SAFETY: reading one byte from our pipe.
    unsafe { libc::read(ready[0], b.as_mut_ptr().cast(), 1) };
    // SAFETY: kill our own child, mid "update".
    unsafe { libc::kill(victim, libc::SIGKILL) };
    wait_all(&[victim]).ok();
    let pids: Vec<_> = (0..2)
        .map(|_| {
            spawn(|| {
                for i in 0..20_000u32 {
                    assert_eq!(
                        r.flood.check(&addr(i % 256), S + i as u64).unwrap().verdict,
                        Verdict::Pass
                    );
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    check_eq("passed after takeover", Stats::of(&r).passed, 40_000)
}

/// A worker that exits holding bucket locks and is not reaped yet (a
/// zombie: `kill(pid, 0)` still succeeds on it) does not wedge the others:
/// they take its locks over within the takeover time.
fn unreaped_lock_holder_does_not_wedge() -> Result<(), String> {
    let r = region(|c| c.set("rate", "1000000/1s").unwrap());
    let buckets = r.flood.sources().buckets();
    let victim = spawn(|| {
        for i in 0..buckets {
            std::mem::forget(r.flood.sources().lock_index(i).expect("lock"));
        }
    });
    // Wait for its exit but leave it unreaped.
    // SAFETY: a zeroed siginfo is a valid out-buffer for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child; WNOWAIT leaves it a zombie.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            victim as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        return Err(format!("waitid: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::kill(victim, 0) } != 0 {
        return Err("the victim was reaped early: not a zombie".into());
    }
    let r = &r;
    let pids: Vec<_> = (0..2usize)
        .map(|c| {
            spawn(move || {
                // Each lock the victim left is taken over within the
                // takeover time (1 ms of spinning, then the check), before a
                // waiter gives up (20 ms): `lock` returns it. (Before, a
                // zombie counted as alive and every waiter gave up.) Each
                // child takes over its own half of the buckets.
                for i in (c..buckets).step_by(2) {
                    let g = r.flood.sources().lock_index(i);
                    assert!(g.is_some(), "bucket {i}: lock not taken over from a zombie");
                }
            })
        })
        .collect();
    let res = wait_all(&pids);
    wait_all(&[victim])?;
    res?;
    // Then every bucket is free for all.
    let pids: Vec<_> = (0..2)
        .map(|_| {
            spawn(|| {
                for i in 0..2_000u32 {
                    assert_eq!(
                        r.flood.check(&addr(i % 256), S + i as u64).unwrap().verdict,
                        Verdict::Pass
                    );
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    check_eq("passed after takeover", Stats::of(r).passed, 4_000)
}

/// Workers killed at random points of their updates; survivors and later workers go on.
fn random_kills_mid_update() -> Result<(), String> {
    let r = region(|c| c.set("rate", "1000000/1s").unwrap());
    let started = Instant::now();
    kill_rounds(20, 3, |_| {
        let mut i = 0u32;
        // Bounded: at most 5 s of work, killed long before.
        let stop = Instant::now() + Duration::from_secs(5);
        while Instant::now() < stop {
            r.flood.check(&addr(i % 64), S + i as u64).unwrap();
            i = i.wrapping_add(1);
        }
    });
    let before = Stats::of(&r).checked;
    let survivor = spawn(|| {
        for i in 0..10_000u32 {
            r.flood.check(&addr(i % 64), S + i as u64).unwrap();
        }
    });
    wait_all(&[survivor])?;
    check_eq("survivor's requests", Stats::of(&r).checked - before, 10_000)?;
    println!("    (20 rounds of kills in {:?})", started.elapsed());
    Ok(())
}

/// Bans in force in the table: (source entries, prefix entries).
fn live_bans(r: &Engine, now: u64) -> (u64, u64) {
    let (mut own, mut prefix) = (0, 0);
    r.flood.for_each_entry(now, |e| {
        if e.banned {
            if e.prefix {
                prefix += 1
            } else {
                own += 1
            }
        }
        true
    });
    (own, prefix)
}

/// A 64-entry table (8 buckets of 8) without prefix bans, and four
/// processes that each make `per_child` one-packet bans of distinct
/// sources at once, the `i`th at `now(i)`; each ban starts. Then checks
/// that every ban was recorded, that 6 of each bucket's 8 ways hold live
/// bans at `at` and that every other ban was lifted, counted once.
fn ban_cap_after_sprays(
    per_child: u32,
    now: impl Fn(u32) -> u64 + Copy,
    at: impl FnOnce() -> u64,
) -> Result<Engine, String> {
    let r = region(|c| {
        c.flood.table_size = 64;
        c.flood.ban_prefix_threshold = 0;
    });
    let pids: Vec<_> = (0..4u32)
        .map(|p| {
            let r = &r;
            spawn(move || {
                for i in 0..per_child {
                    let bits = u128::from_be_bytes(addr16(addr(p * per_child + i)));
                    let ban = r.flood.ban_offender(bits, Reason::Scanner, now(i)).unwrap();
                    assert!(ban.is_some());
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    let s = Stats::of(&r);
    check_eq("bans", s.bans, 4 * u64::from(per_child))?;
    let (own, prefix) = live_bans(&r, at());
    check_eq("live bans", own, (BAN_WAYS * 8) as u64)?;
    check_eq("prefix bans", prefix, 0)?;
    check_eq("unbans (evicted)", s.unbans, s.bans - own)?;
    Ok(r)
}

/// Four processes make 20 000 one-packet bans at once in a 64-entry table
/// (no prefix bans): every ban is recorded, at most 6 of each bucket's 8
/// ways hold bans, and a new flooder is then tracked and banned.
fn ban_cap_under_contention() -> Result<(), String> {
    let r = &ban_cap_after_sprays(5_000, |_| S, || S)?;
    let v: Vec<Verdict> = (0..31)
        .map(|_| r.flood.check(&[192, 0, 2, 1], 2 * S).unwrap().verdict)
        .collect();
    check_eq(
        "flooder passed",
        v.iter().filter(|v| **v == Verdict::Pass).count() as u64,
        30,
    )?;
    check_eq("flooder limited", u64::from(v[30] == Verdict::Limited), 1)?;
    check_eq("untracked", Stats::of(r).untracked, 0)
}

/// As Kamailio's workers do, each process reads the clock before it calls
/// in (and before the bucket lock): one preempted in between bans with a
/// `now` earlier than that of a ban another process lifted meanwhile
/// (yielding there makes that common). A lifted ban stays over for it all
/// the same: never lifted (and counted) twice, never a seventh live ban in
/// a bucket; once swept, active bans = bans - unbans.
fn ban_cap_with_clocks_read_before_locking() -> Result<(), String> {
    let now = |i: u32| {
        let now = clock_ns();
        if i.is_multiple_of(2) {
            std::thread::yield_now();
        }
        now
    };
    let r = ban_cap_after_sprays(20_000, now, clock_ns)?;
    r.flood.sweep(clock_ns());
    let s = Stats::of(&r);
    check_eq("untracked", s.untracked, 0)?;
    check_eq("active bans", s.active_bans, s.bans - s.unbans)
}

/// Four processes ban /64s of one /48 at once, each its own 1000: the
/// /48 is banned exactly once, after 8 to 11 bans of /64s (each process may
/// be one ban past the count when the prefix ban lands); the rest are
/// covered and make no ban.
fn one_prefix_ban_under_contention() -> Result<(), String> {
    let r = region(|c| {
        c.flood.table_size = 64;
        c.flood.ban_prefix_threshold = 8;
    });
    let r = &r;
    let pids: Vec<_> = (0..4u32)
        .map(|p| {
            spawn(move || {
                for i in 0..1_000u32 {
                    let n = p * 1_000 + i;
                    let a = format!("2001:db8:1:{n:x}::1")
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap();
                    r.flood.ban_offender(u128::from(a), Reason::Scanner, S).unwrap();
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    let (own, prefix) = live_bans(r, S);
    check_eq("prefix bans", prefix, 1)?;
    if !(8..=11).contains(&own) {
        return Err(format!("{own} bans of /64s, expected 8..=11"));
    }
    check_eq("bans", Stats::of(r).bans, own + 1)?;
    let a = "2001:db8:1:ffff::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    check_eq(
        "covered",
        u64::from(r.flood.check(&a, S).unwrap().verdict == Verdict::Banned),
        1,
    )
}

fn addr16(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[10] = 0xff;
    b[11] = 0xff;
    b[12..].copy_from_slice(&a);
    b
}

/// A REGISTER with credentials for user 1001, transaction `i`.
fn credentialed(call_id: &str) -> Request<'_> {
    Request {
        method: b"REGISTER",
        to: b"<sip:1001@example.org>",
        to_user: b"1001",
        from: b"<sip:1001@example.org>;tag=f",
        call_id: call_id.as_bytes(),
        cseq_num: b"1",
        cseq_method: b"REGISTER",
        auth_user: b"1001",
        credentials: b"Digest username=\"1001\", realm=\"example.org\"",
        ..Default::default()
    }
}

/// Requests noted in one process, their 401s sent from four others (each
/// reply four times, like retransmissions): every failure counts exactly
/// once, and the user name is throttled exactly once.
fn auth_failures_count_once_across_processes() -> Result<(), String> {
    const TXNS: usize = 200;
    let r = region(|c| {
        c.set("auth_maxretry", "1000000").unwrap();
        c.set("user_maxretry", "50").unwrap();
    });
    let ids: Vec<String> = (0..TXNS).map(|i| format!("txn-{i}")).collect();
    let noter = spawn(|| {
        for (i, id) in ids.iter().enumerate() {
            r.guess_request(&addr(i as u32), &credentialed(id), S);
        }
    });
    wait_all(&[noter])?;
    let pids: Vec<_> = (0..4)
        .map(|_| {
            spawn(|| {
                let mut out = [0u8; 4096];
                for id in &ids {
                    let reply = format!(
                        "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:1001@example.org>;tag=f\r\n\
                         To: <sip:1001@example.org>;tag=t\r\nCall-ID: {id}\r\nCSeq: 1 REGISTER\r\n\
                         Content-Length: 0\r\n\r\n"
                    );
                    let parsed = test_reader::parse(reply.as_bytes());
                    assert_eq!(r.reply_out(&parsed.reply(), &[127, 0, 0, 1], 2 * S, &mut out), Outcome::Unchanged);
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    let s = Stats::of(&r);
    check_eq("auth failures", s.auth_failures, TXNS as u64)?;
    check_eq("throttles", s.throttles, 1)?;
    let users = r.guess_users(3 * S, 10);
    let u = users
        .iter()
        .find(|u| u.name == b"1001")
        .ok_or("user 1001 not listed")?;
    check_eq("throttled", u64::from(u.throttled_s > 0), 1)
}

/// A policy mark holds only for the replies of the process that set it
/// (the worker that ran the script and answers the refusal). An attacker
/// who sends a second request under the same Call-ID and CSeq, handled by
/// another worker while the first one's mark is held, must not have that
/// request's reply pass as a policy reply (a 404 left as it is would tell a
/// missing user): in another process the mark is not seen, in its own it is.
fn policy_mark_holds_only_in_the_marking_process() -> Result<(), String> {
    const TXNS: usize = 50;
    let r = region(|c| c.set("auth_maxretry", "1000").unwrap());
    let ids: Vec<String> = (0..TXNS).map(|i| format!("policy-{i}")).collect();
    let reply_to = |id: &str| {
        format!(
            "SIP/2.0 403 TLS required\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:1001@example.org>;tag=f\r\n\
             To: <sip:1001@example.org>;tag=t\r\nCall-ID: {id}\r\nCSeq: 1 REGISTER\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    // the first half marked here, its replies sent by another process
    let (other, own) = ids.split_at(TXNS / 2);
    let marker = spawn(|| {
        for id in other {
            let q = credentialed(id);
            r.guess_request(&addr(7), &q, S);
            r.guess_policy_reply(&q, PolicyMark::Script, S);
        }
    });
    wait_all(&[marker])?;
    let replier = spawn(|| {
        let mut out = [0u8; 4096];
        for id in other {
            let reply = reply_to(id);
            let parsed = test_reader::parse(reply.as_bytes());
            assert!(matches!(
                r.reply_out(&parsed.reply(), &[127, 0, 0, 1], 2 * S, &mut out),
                Outcome::Rewritten(_)
            ));
        }
    });
    // the second half marked and answered by one process
    let own_replies = spawn(|| {
        let mut out = [0u8; 4096];
        for id in own {
            let q = credentialed(id);
            r.guess_request(&addr(7), &q, S);
            r.guess_policy_reply(&q, PolicyMark::Script, S);
            let reply = reply_to(id);
            let parsed = test_reader::parse(reply.as_bytes());
            assert_eq!(
                r.reply_out(&parsed.reply(), &[127, 0, 0, 1], 2 * S, &mut out),
                Outcome::Unchanged
            );
        }
    });
    wait_all(&[replier, own_replies])?;
    // only the replies the marking process did not send count, once each
    check_eq("auth failures", Stats::of(&r).auth_failures, (TXNS / 2) as u64)
}

fn main() {
    forking::run(
        "multiprocess",
        &[
            ("exact_totals_across_processes", exact_totals_across_processes),
            ("one_ban_under_contention", one_ban_under_contention),
            (
                "killed_lock_holder_does_not_wedge",
                killed_lock_holder_does_not_wedge,
            ),
            (
                "unreaped_lock_holder_does_not_wedge",
                unreaped_lock_holder_does_not_wedge,
            ),
            ("random_kills_mid_update", random_kills_mid_update),
            ("ban_cap_under_contention", ban_cap_under_contention),
            (
                "ban_cap_with_clocks_read_before_locking",
                ban_cap_with_clocks_read_before_locking,
            ),
            ("one_prefix_ban_under_contention", one_prefix_ban_under_contention),
            (
                "auth_failures_count_once_across_processes",
                auth_failures_count_once_across_processes,
            ),
            (
                "policy_mark_holds_only_in_the_marking_process",
                policy_mark_holds_only_in_the_marking_process,
            ),
        ],
    );
}
