//! The shared blocklist across forked processes, as Kamailio's workers use
//! it: a reload in one process is seen by every other at once; readers
//! racing reloads always see one whole list; a reloader killed mid-write
//! wedges nobody. `harness = false` (see tests/multiprocess.rs).

mod forking;

use forking::{kill_rounds, spawn, wait_all};
use sipguard::blocklist::file::Net;
use sipguard::engine::config::Config;
use sipguard::engine::Engine;
use std::time::{Duration, Instant};

fn engine() -> Engine {
    let dir = std::env::temp_dir().join(format!("sipguard-blmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("list.txt");
    std::fs::write(&path, "192.0.2.1\n").unwrap();
    let mut c = Config::default();
    c.set("table_size", "1024").unwrap();
    c.set("blocklist_file", path.to_str().unwrap()).unwrap();
    c.set("blocklist_max", "1000").unwrap();
    let e = Engine::create(&c).expect("engine");
    std::fs::remove_dir_all(&dir).unwrap();
    e
}

fn nets(texts: &[&str]) -> Vec<Net> {
    texts.iter().map(|t| Net::parse(t).unwrap()).collect()
}

const X: [u8; 4] = [192, 0, 2, 1];
const Y: [u8; 4] = [198, 51, 100, 1];

/// Four readers wait for Y to be listed; one other process publishes it.
fn a_reload_in_one_process_reaches_every_other() -> Result<(), String> {
    let e = engine();
    if !e.blocklisted(&X) || e.blocklisted(&Y) {
        return Err("the list loaded at start is not in force".into());
    }
    let readers: Vec<_> = (0..4)
        .map(|_| {
            spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !e.blocklisted(&Y) {
                    assert!(Instant::now() < deadline, "never saw the reload");
                    std::hint::spin_loop();
                }
                assert!(!e.blocklisted(&X), "saw the new list with the old entry");
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let reloader = spawn(|| {
        e.blocklist.publish(&nets(&["198.51.100.0/24"])).unwrap();
    });
    wait_all(&[reloader])?;
    wait_all(&readers)?;
    forking::check_eq("generation", e.blocklist.generation(), 2)
}

/// Two reloaders alternate two lists that both hold X; readers never see
/// X missing (a half-written or cleared set).
fn readers_racing_reloads_see_whole_lists() -> Result<(), String> {
    let e = engine();
    let a = nets(&["192.0.2.1", "198.51.100.1"]);
    let b = nets(&["192.0.2.1", "203.0.113.1"]);
    let reloaders: Vec<_> = [&a, &b]
        .into_iter()
        .map(|list| {
            spawn(|| {
                let mut done = 0;
                while done < 300 {
                    // a reload refused because the other one writes is fine
                    if e.blocklist.publish(list).is_ok() {
                        done += 1;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            spawn(|| {
                for _ in 0..200_000 {
                    assert!(e.blocklisted(&X), "X missing during a reload");
                }
            })
        })
        .collect();
    wait_all(&readers)?;
    wait_all(&reloaders)
}

/// Reloaders killed at random moments, mid-write included: the next
/// reload still goes through (the writer lock of a dead process is taken
/// over) and readers find the list it published.
fn killed_reloaders_do_not_wedge() -> Result<(), String> {
    let e = engine();
    let big: Vec<Net> = (0..1000u32)
        .map(|i| Net::parse(&format!("10.{}.{}.1", i / 256, i % 256)).unwrap())
        .collect();
    kill_rounds(20, 2, |_| {
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            let _ = e.blocklist.publish(&big);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match e.blocklist.publish(&nets(&["198.51.100.1"])) {
            Ok(_) => break,
            Err(err) if Instant::now() > deadline => return Err(format!("wedged: {err}")),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    if !e.blocklisted(&Y) || e.blocklisted(&X) || e.blocklisted(&[10, 0, 0, 1]) {
        return Err("the list published after the kills is not the one in force".into());
    }
    Ok(())
}

fn main() {
    forking::run(
        "blocklist_multiprocess",
        &[
            (
                "a_reload_in_one_process_reaches_every_other",
                a_reload_in_one_process_reaches_every_other,
            ),
            (
                "readers_racing_reloads_see_whole_lists",
                readers_racing_reloads_see_whole_lists,
            ),
            ("killed_reloaders_do_not_wedge", killed_reloaders_do_not_wedge),
        ],
    );
}
