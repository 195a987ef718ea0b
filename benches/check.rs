//! ns per `check` in the core: one process, then two processes on one
//! region (hot key and spread keys). Figures are printed, never asserted.
//! `harness = false`: it forks, which a threaded harness must not do.

use sipguard::engine::config::Config;
use sipguard::engine::Engine;
use sipguard::flood::config::FloodConfig;
use std::hint::black_box;
use std::time::Instant;

const N: u64 = 5_000_000;

fn region() -> Engine {
    let mut c = Config {
        flood: FloodConfig {
            table_size: 65536,
            ..Default::default()
        },
        ..Default::default()
    };
    // A rate nobody reaches, so every call does the full counting path.
    c.set("rate", "1000000/1s").unwrap();
    c.set("burst", "1000000").unwrap();
    if std::env::var("NOSCAN").is_ok() {
        c.set("scanner_user_agents", "").unwrap();
        c.set("scanner_from_to", "").unwrap();
    }
    Engine::create(&c).unwrap()
}

fn spread(i: u64) -> [u8; 4] {
    // 50 000 distinct sources, visited in a scattered order.
    let k = (i.wrapping_mul(2_654_435_761) % 50_000) as u32;
    let b = k.to_be_bytes();
    [10, b[1], b[2], b[3]]
}

fn hot(_: u64) -> [u8; 4] {
    [127, 0, 0, 2]
}

/// Run `n` checks from `procs` processes at once; returns ns per check per process.
fn run(r: &Engine, procs: usize, n: u64, key: fn(u64) -> [u8; 4]) -> f64 {
    let now = sipguard::util::clock::clock_ns();
    let start = Instant::now();
    let mut pids = Vec::new();
    for _ in 0..procs {
        // SAFETY: single-threaded program.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            for i in 0..n {
                black_box(r.flood.check(&key(i), now + i).unwrap());
            }
            // SAFETY: child exit without parent cleanup.
            unsafe { libc::_exit(0) };
        }
        pids.push(pid);
    }
    for pid in pids {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// ns per call of one path, in this process.
fn per_call(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The request-time defences (fingerprints, the enumeration set, noting a
/// request with credentials) and the outgoing-reply hook.
fn guessing_defences(r: &Engine) {
    use sipguard::guess::reply::{test_reader, Outcome};
    use sipguard::guess::Request;
    let n = N / 5;
    let now = sipguard::util::clock::clock_ns();
    let users: Vec<String> = (0..64)
        .map(|i| format!("<sip:{}@example.org>", 1000 + i))
        .collect();
    let plain = |i: u64| Request {
        method: b"OPTIONS",
        ruri_user: &users[(i % 64) as usize].as_bytes()[5..9],
        from: b"<sip:1001@example.org>;tag=a1",
        to: users[(i % 64) as usize].as_bytes(),
        to_user: &users[(i % 64) as usize].as_bytes()[5..9],
        call_id: b"4c2a9f0e@192.0.2.1",
        cseq_num: b"1",
        cseq_method: b"OPTIONS",
        user_agents: [b"Yealink SIP-T46S 66.86.0.15", b"", b"", b"", b"", b"", b"", b""],
        user_agent_count: 1,
        ..Default::default()
    };
    let ns = per_call(n, |i| {
        black_box(r.guess_request(&spread(i), &plain(i), now + i));
    });
    println!("{:<34} {ns:>10.1} {:>14.0}", "request, no credentials", 1e9 / ns);
    let ids: Vec<String> = (0..4096).map(|i| format!("{i:08x}@192.0.2.1")).collect();
    let ns = per_call(n, |i| {
        let mut q = plain(i);
        q.method = b"REGISTER";
        q.call_id = ids[(i % 4096) as usize].as_bytes();
        q.credentials = b"Digest username=\"1001\", realm=\"example.org\", nonce=\"abc\", response=\"x\"";
        q.auth_user = b"1001";
        black_box(r.guess_request(&spread(i), &q, now + i));
    });
    println!("{:<34} {ns:>10.1} {:>14.0}", "request with credentials", 1e9 / ns);
    let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:1001@example.org>;tag=a1\r\n\
        To: <sip:1001@example.org>;tag=b2\r\nCall-ID: 4c2a9f0e@192.0.2.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let leaky = String::from_utf8_lossy(ok)
        .replace("200 OK", "404 Not Found")
        .into_bytes();
    let mut out = [0u8; 4096];
    let (ok, leaky) = (test_reader::parse(ok), test_reader::parse(&leaky));
    let (ok, leaky) = (ok.reply(), leaky.reply());
    let ns = per_call(n, |_| {
        black_box(r.reply_out(&ok, &[192, 0, 2, 1], now, &mut out));
    });
    println!(
        "{:<34} {ns:>10.1} {:>14.0}",
        "reply hook, 200 OK (untouched)",
        1e9 / ns
    );
    let ns = per_call(n, |_| {
        assert!(matches!(
            r.reply_out(&leaky, &[192, 0, 2, 1], now, &mut out),
            Outcome::Rewritten(_)
        ));
    });
    println!(
        "{:<34} {ns:>10.1} {:>14.0}",
        "reply hook, 404 rewritten",
        1e9 / ns
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let r = region();
    // Warm the table so the spread case measures lookups, not first inserts.
    run(&r, 1, 100_000, spread);
    println!("sipguard core: ns per check (lower is better), {N} checks per process");
    println!("{:<34} {:>10} {:>14}", "case", "ns/check", "checks/s total");
    for (name, procs, key) in [
        ("1 process, 50k spread sources", 1, spread as fn(u64) -> [u8; 4]),
        ("1 process, one hot source", 1, hot),
        ("2 processes, 50k spread sources", 2, spread),
        ("2 processes, one hot source", 2, hot),
    ] {
        let ns = run(&r, procs, N, key);
        println!("{name:<34} {ns:>10.1} {:>14.0}", procs as f64 * 1e9 / ns);
    }
    let now = sipguard::util::clock::clock_ns();
    let start = Instant::now();
    for i in 0..N {
        black_box(r.flood.drop_check(&spread(i), now).unwrap());
    }
    let ns = start.elapsed().as_nanos() as f64 / N as f64;
    println!("{:<34} {ns:>10.1} {:>14.0}", "drop_check, 1 process", 1e9 / ns);
    guessing_defences(&r);
    let s = sipguard::ffi::Stats::of(&r);
    println!(
        "table: {} entries used of {}, {} bytes mapped",
        s.entries_used, s.table_size, s.region_bytes
    );
}
