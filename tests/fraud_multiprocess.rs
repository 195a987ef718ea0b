//! Toll-fraud state across forked processes, as Kamailio's workers, RPC and
//! timer processes share it: concurrency limits, calls ended by another
//! process (twice), rules reloaded in one process and seen by the others,
//! and workers killed mid-update.

mod forking;

use forking::{check_eq, kill_rounds, spawn, wait_all};
use sipguard::fraud::accounts::CallTicket;
use sipguard::fraud::config::FraudConfig;
use sipguard::fraud::money::Money;
use sipguard::fraud::{DialVerdict, Fraud, StartVerdict};
use sipguard::shm::{Mapping, Shared};
use sipguard::sip::addr::FixedBuf;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const S: u64 = 1_000_000_000;

fn rules(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipguard-fraud-mp-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("rules.txt");
    std::fs::write(&p, text).unwrap();
    p
}

fn fraud(name: &str, text: &str, f: impl FnOnce(&mut FraudConfig)) -> Fraud {
    let mut c = FraudConfig {
        rules_file: Some(rules(name, text)),
        ..Default::default()
    };
    f(&mut c);
    Fraud::create(&c, S).expect("fraud")
}

/// Tickets in shared memory, as the shim keeps them in Kamailio's shm.
fn tickets(n: usize) -> Mapping {
    Mapping::new(n * std::mem::size_of::<CallTicket>()).unwrap()
}

fn start(f: &Fraud, t: &CallTicket, limit: u32) -> StartVerdict {
    let mut why = FixedBuf::<64>::new();
    f.call_start(b"alice", limit, Money(100), S, t, &mut why)
}

fn dial(f: &Fraud, number: &str) -> DialVerdict {
    let mut why = FixedBuf::<64>::new();
    f.dial_check(b"alice", number.as_bytes(), S, 0, &mut why).verdict
}

const LIMIT: u32 = 7;
const PER_CHILD: usize = 100;

/// Four processes race to start calls: exactly `limit` are up; then four
/// processes end every call (each end twice over): the count is back to 0.
fn limit_holds_and_ends_count_once() -> Result<(), String> {
    let f = fraud("limit", "account default all\n", |_| {});
    let t = tickets(4 * PER_CHILD);
    let pids: Vec<_> = (0..4)
        .map(|c| {
            spawn(|| {
                for i in 0..PER_CHILD {
                    start(&f, t.at::<CallTicket>(0, c * PER_CHILD + i), LIMIT);
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    check_eq("calls up", f.active_calls_counted(), LIMIT as u64)?;
    check_eq("active_calls gauge", f.stats().active_calls, LIMIT as u64)?;
    let pids: Vec<_> = (0..4)
        .map(|c| {
            spawn(|| {
                for i in 0..4 * PER_CHILD {
                    let ticket = t.at::<CallTicket>(0, (i + c * 37) % (4 * PER_CHILD));
                    if c % 2 == 0 {
                        f.call_answered(ticket, 2 * S).unwrap();
                    }
                    f.call_end(ticket, 3 * S).unwrap();
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    check_eq("calls up after ends", f.active_calls_counted(), 0)?;
    check_eq("active_calls gauge after ends", f.stats().active_calls, 0)
}

/// A reload by one process (the RPC's) is what every other process reads
/// next, with no file read of theirs.
fn reload_is_seen_by_every_process() -> Result<(), String> {
    let f = fraud(
        "reload",
        "prefix 44 premium 1\naccount default domestic\n",
        |_| {},
    );
    check_eq(
        "before",
        (dial(&f, "+4420") == DialVerdict::ClassDenied) as u64,
        1,
    )?;
    let path = f.cfg.rules_file.clone().unwrap();
    std::fs::write(&path, "prefix 44 domestic 0.01\naccount default domestic\n").unwrap();
    let reloader = spawn(|| {
        f.reload().unwrap();
    });
    wait_all(&[reloader])?;
    // The file is gone: nobody can read it again; the published set stays.
    std::fs::remove_file(&path).unwrap();
    let readers: Vec<_> = (0..3)
        .map(|_| spawn(|| assert_eq!(dial(&f, "0044 20"), DialVerdict::Allowed)))
        .collect();
    wait_all(&readers)?;
    check_eq(
        "parent after reload",
        (dial(&f, "+4420") == DialVerdict::Allowed) as u64,
        1,
    )
}

/// A flag in shared memory: the reloader says it is done.
#[repr(C)]
struct Done(AtomicU32);
// SAFETY: repr(C), one atomic.
unsafe impl Shared for Done {}

/// Readers in three processes while another reloads two rule sets back and
/// forth: every read sees one whole set (class and rate of the same set),
/// never half of each, and each reader sees both sets.
fn readers_never_see_half_a_reload() -> Result<(), String> {
    const A: &str = "prefix 44 international 1\naccount default all\n";
    const B: &str = "prefix 44 premium 2\nprefix 4 mobile 3\naccount default all\n";
    let f = fraud("torn", A, |_| {});
    let path = f.cfg.rules_file.clone().unwrap();
    let (path_a, path_b) = (path.with_extension("a"), path.with_extension("b"));
    std::fs::write(&path_a, A).unwrap();
    std::fs::write(&path_b, B).unwrap();
    let done = Mapping::new(64).unwrap();
    let (f, done) = (&f, done.at::<Done>(0, 0));
    let readers: Vec<_> = (0..3)
        .map(|c| {
            spawn(move || {
                let account = format!("reader{c}");
                let stop = Instant::now() + Duration::from_secs(20);
                let mut why = FixedBuf::<64>::new();
                let mut seen_sets = [0u64; 2];
                // Bounded: until the reloader is done, at most 20 s or 10^7 reads.
                for i in 0..10_000_000u64 {
                    if done.0.load(Ordering::Acquire) == 1 || Instant::now() > stop {
                        break;
                    }
                    let d = f.dial_check(account.as_bytes(), b"+4420", S + i, 0, &mut why);
                    match (d.verdict, d.class.map(|c| c.name()), d.rate.0) {
                        (DialVerdict::Unavailable, _, _) => {}
                        (_, Some("international"), 10_000) => seen_sets[0] += 1,
                        (_, Some("premium"), 20_000) => seen_sets[1] += 1,
                        torn => panic!("torn read: {torn:?}"),
                    }
                }
                assert!(
                    seen_sets[0] > 0 && seen_sets[1] > 0,
                    "reads did not overlap reloads: {seen_sets:?}"
                );
            })
        })
        .collect();
    let reloader = spawn(|| {
        for i in 0..2000 {
            let from = if i % 2 == 0 { &path_b } else { &path_a };
            std::fs::copy(from, &path).unwrap();
            f.reload().unwrap();
        }
        done.0.store(1, Ordering::Release);
    });
    wait_all(&[reloader])?;
    wait_all(&readers)
}

/// A suspension made in one process refuses the account in all.
fn suspension_is_seen_by_every_process() -> Result<(), String> {
    let f = fraud("susp", "prefix 1 domestic 0\naccount default domestic\n", |c| {
        c.cpm_critical = 5
    });
    let pids: Vec<_> = (0..3)
        .map(|_| {
            spawn(|| {
                for _ in 0..10 {
                    dial(&f, "1212");
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    check_eq("suspensions", f.stats().suspensions, 1)?;
    check_eq("refused", (dial(&f, "1212") == DialVerdict::Suspended) as u64, 1)
}

/// Workers killed at random points of their calls; later ones go on.
fn killed_workers_do_not_wedge() -> Result<(), String> {
    let f = fraud("kill", "account default all\nprefix 1 domestic 0.1\n", |_| {});
    let t = tickets(64);
    kill_rounds(10, 3, |c| {
        // Bounded: at most 5 s of work, killed long before.
        let stop = Instant::now() + Duration::from_secs(5);
        let mut i = c;
        while Instant::now() < stop {
            let ticket = t.at::<CallTicket>(0, i % 64);
            start(&f, ticket, 0);
            dial(&f, "1212");
            f.call_end(ticket, 2 * S).unwrap();
            i += 3;
        }
    });
    let survivor = spawn(|| {
        for i in 0..1000 {
            let ticket = t.at::<CallTicket>(0, i % 64);
            f.call_end(ticket, 3 * S).unwrap();
            assert_eq!(start(&f, ticket, 0), StartVerdict::Admitted);
            assert_eq!(f.call_end(ticket, 3 * S), Ok(true));
        }
    });
    wait_all(&[survivor])
}

/// Four processes dial the same eight new countries at once, with
/// baselines on (warn): each destination is an anomaly exactly once (judged
/// and learnt under one bucket lock), whichever process came first.
fn a_new_destination_is_one_anomaly_across_processes() -> Result<(), String> {
    let f = fraud(
        "baseline",
        "prefix 3 international 0\nprefix 4 international 0\naccount default all\n",
        |c| c.set("baseline_days", "28").unwrap(),
    );
    const COUNTRIES: [&str; 8] = ["44", "33", "49", "39", "34", "31", "32", "41"];
    let pids: Vec<_> = (0..4)
        .map(|c| {
            spawn(|| {
                for i in 0..200 {
                    let number = format!("+{}20712345", COUNTRIES[(i + c) % 8]);
                    let mut why = FixedBuf::<64>::new();
                    let v = f.dial_check(b"alice", number.as_bytes(), S, 1_796_000_000_000, &mut why);
                    assert_eq!(v.verdict, DialVerdict::Allowed);
                }
            })
        })
        .collect();
    wait_all(&pids)?;
    check_eq(
        "destination anomalies",
        f.anomaly_counts().0,
        COUNTRIES.len() as u64,
    )?;
    let mut events = 0;
    f.anomaly_events(|_, _| events += 1);
    check_eq("events (one pending per account)", events, 1)
}

/// Workers killed at random points of dial checks that learn (baselines
/// on) and of call ends that learn spend; a later process goes on.
fn killed_learners_do_not_wedge() -> Result<(), String> {
    let f = fraud(
        "killbase",
        "prefix 3 international 0\nprefix 4 international 0.1\naccount default all\n",
        |c| {
            c.set("baseline_days", "28").unwrap();
            c.set("baseline_table_size", "8").unwrap();
        },
    );
    let t = tickets(64);
    let wall = 1_796_000_000_000;
    kill_rounds(10, 3, |c| {
        // Bounded: at most 5 s of work, killed long before.
        let stop = Instant::now() + Duration::from_secs(5);
        let mut i = c;
        while Instant::now() < stop {
            let mut why = FixedBuf::<64>::new();
            let number = format!("+4{}20712345", i % 10);
            f.dial_check(
                format!("a{}", i % 20).as_bytes(),
                number.as_bytes(),
                S,
                wall,
                &mut why,
            );
            let ticket = t.at::<CallTicket>(0, i % 64);
            start(&f, ticket, 0);
            f.call_answered(ticket, S).unwrap();
            f.call_end(ticket, 2 * S).unwrap();
            i += 3;
        }
    });
    // The baseline table is one bucket: a lock left held by a killed
    // worker would make every later dial check skip the baseline (Busy),
    // and no new destination would be counted.
    let survivor = spawn(|| {
        for i in 0..100 {
            f.anomaly_events(|_, _| {});
            let before = f.anomaly_counts().0;
            let mut why = FixedBuf::<64>::new();
            let number = format!("+33{:09}", 612_345_000 + i);
            let v = f.dial_check(format!("z{i}").as_bytes(), number.as_bytes(), S, wall, &mut why);
            assert_eq!(v.verdict, DialVerdict::Allowed, "{}", why.as_str());
            assert_eq!(
                f.anomaly_counts().0,
                before + 1,
                "a new destination of z{i} counted"
            );
        }
    });
    wait_all(&[survivor])
}

fn main() {
    forking::run(
        "fraud_multiprocess",
        &[
            ("limit_holds_and_ends_count_once", limit_holds_and_ends_count_once),
            ("reload_is_seen_by_every_process", reload_is_seen_by_every_process),
            ("readers_never_see_half_a_reload", readers_never_see_half_a_reload),
            (
                "suspension_is_seen_by_every_process",
                suspension_is_seen_by_every_process,
            ),
            ("killed_workers_do_not_wedge", killed_workers_do_not_wedge),
            (
                "a_new_destination_is_one_anomaly_across_processes",
                a_new_destination_is_one_anomaly_across_processes,
            ),
            ("killed_learners_do_not_wedge", killed_learners_do_not_wedge),
        ],
    );
}
