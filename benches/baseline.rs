//! The learnt baselines' costs (`fraud::baseline`): a dial check with
//! baselines off and on (one more bucket lock), the timer's spend
//! comparison over a full account table, seeding from a CSV of past calls,
//! and building the per-country length table. Printed, never asserted.

use sipguard::fraud::accounts::CallTicket;
use sipguard::fraud::config::FraudConfig;
use sipguard::fraud::money::Money;
use sipguard::fraud::Fraud;
use sipguard::util::clock::wall_ms;
use sipguard::util::fixed_buf::FixedBuf;
use std::hint::black_box;
use std::time::Instant;

const S: u64 = 1_000_000_000;
const N: u64 = 200_000;
const ACCOUNTS: u64 = 4096;

fn fraud(dir: &std::path::Path, baselines: bool) -> Fraud {
    let rules = dir.join("rules.txt");
    std::fs::write(
        &rules,
        "prefix 1 domestic 0.01\nprefix 44 international 0.05\naccount default all\n",
    )
    .unwrap();
    let mut c = FraudConfig {
        rules_file: Some(rules),
        ..Default::default()
    };
    if baselines {
        c.set("baseline_days", "28").unwrap();
        c.set("spend_anomaly_floor", "0.0001").unwrap();
    }
    Fraud::create(&c, S).unwrap()
}

fn dial_ns(f: &Fraud, number: &str) -> f64 {
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i}")).collect();
    let wall = wall_ms();
    let t = Instant::now();
    for i in 0..N {
        let mut why = FixedBuf::<128>::new();
        // A minute apart per account: no velocity threshold is set anyway.
        let d = f.dial_check(
            names[(i % ACCOUNTS) as usize].as_bytes(),
            number.as_bytes(),
            S + i,
            wall,
            &mut why,
        );
        black_box(d);
    }
    t.elapsed().as_secs_f64() * 1e9 / N as f64
}

fn main() {
    let dir = std::env::temp_dir().join(format!("sipguard-bench-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    let _ = phonenumber::metadata::DATABASE.by_code(&1);
    let meta = t.elapsed();
    let t = Instant::now();
    sipguard::fraud::lengths::load();
    println!(
        "lengths: table of national number lengths built in {:.1} ms (after the metadata load, {:.1} ms)",
        t.elapsed().as_secs_f64() * 1e3,
        meta.as_secs_f64() * 1e3
    );

    let off = fraud(&dir, false);
    let on = fraud(&dir, true);
    for (what, number) in [("domestic", "+12125550100"), ("international", "+442071234567")] {
        println!(
            "dial check ({what}, {ACCOUNTS} accounts): baselines off {:.0} ns, on {:.0} ns",
            dial_ns(&off, number),
            dial_ns(&on, number)
        );
    }

    // Every account spending: the timer compares each with its usual.
    let tickets: Vec<CallTicket> = (0..ACCOUNTS).map(|_| CallTicket::default()).collect();
    let mut why = FixedBuf::<64>::new();
    for (i, t) in tickets.iter().enumerate() {
        on.call_start(format!("acct{i}").as_bytes(), 0, Money(600_000), S, t, &mut why);
        on.call_answered(t, S).unwrap();
    }
    let t = Instant::now();
    on.tick_keeping_events(10 * S, wall_ms());
    println!(
        "timer: {ACCOUNTS} accounts spending over the floor, compared with their usual in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let csv = dir.join("cdr.csv");
    let now = wall_ms() / 1000;
    let mut text = String::new();
    let lines = 100_000u64;
    for i in 0..lines {
        text.push_str(&format!(
            "acct{},{},60,+4420712{:05},0.1000\n",
            i % 1000,
            now - (i % 600) * 3600,
            i % 100_000
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let fresh = fraud(&dir, true);
    let t = Instant::now();
    let r = fresh.seed_baseline(&csv, 20 * S, wall_ms()).unwrap();
    println!(
        "seed: {} calls of {} accounts in {:.0} ms ({:.1} us a line)",
        r.calls,
        r.accounts,
        t.elapsed().as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e6 / lines as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
