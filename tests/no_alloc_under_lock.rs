//! Nothing allocates while a bucket lock is held: the sweeps and listings
//! of the guessing and fraud tables copy what they need into fixed arrays
//! under the lock and allocate (build `Vec`s, log) only after releasing it.
//! A lock held across `malloc` would make every other process spin on that
//! bucket for as long as the allocator takes (a page fault, a `brk`, a
//! contended arena).
//!
//! A counting global allocator records each allocation made by a thread
//! that holds a bucket lock ([`sipguard::shm::lock::probe`]).

use sipguard::engine::config::Config;
use sipguard::engine::Engine;
use sipguard::flood::config::FloodConfig;
use sipguard::fraud::accounts::{Accounts, CallTicket, Reason, Thresholds};
use sipguard::fraud::money::Money;
use sipguard::guess::Request;
use sipguard::shm::lock::{lock, probe};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

struct Counting;

static UNDER_LOCK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if probe::held() > 0 {
            UNDER_LOCK.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if probe::held() > 0 {
            UNDER_LOCK.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The count is global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const S: u64 = 1_000_000_000;

/// Allocations made under a bucket lock while `f` runs.
fn under_lock(f: impl FnOnce()) -> usize {
    probe::enable();
    let before = UNDER_LOCK.load(Relaxed);
    f();
    UNDER_LOCK.load(Relaxed) - before
}

#[test]
fn the_probe_sees_an_allocation_under_a_lock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let word = AtomicU32::new(0);
    let n = under_lock(|| {
        let g = lock(&word).unwrap();
        assert_eq!(probe::held(), 1);
        std::hint::black_box(vec![1u8; 10]);
        drop(g);
        assert_eq!(probe::held(), 0);
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}

fn request<'a>(user: &'a [u8], to: &'a [u8], call_id: &'a [u8]) -> Request<'a> {
    Request {
        method: b"REGISTER",
        to,
        to_user: user,
        from: to,
        call_id,
        cseq_num: b"1",
        cseq_method: b"REGISTER",
        auth_user: user,
        credentials: b"Digest username=\"x\", realm=\"example.org\"",
        ..Default::default()
    }
}

#[test]
fn guessing_sweep_and_listing_allocate_nothing_under_a_lock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Config {
        flood: FloodConfig {
            table_size: 256,
            ..Default::default()
        },
        ..Default::default()
    };
    c.set("auth_maxretry", "1000000").unwrap();
    c.set("user_maxretry", "2").unwrap();
    c.set("user_throttle_time", "1s").unwrap();
    let r = Engine::create(&c).expect("region");
    // Many user names, some throttled, spread over the buckets.
    for u in 0..40u32 {
        let user = format!("user{u}");
        let to = format!("<sip:{user}@example.org>");
        for i in 0..(1 + u % 3) {
            let id = format!("{u}-{i}");
            let req = request(user.as_bytes(), to.as_bytes(), id.as_bytes());
            r.guess_auth_failed(&[10, 0, (u >> 8) as u8, u as u8], &req, S);
        }
    }
    let mut listed = 0;
    let mut throttled = 0;
    let n = under_lock(|| {
        r.guess_sweep(S);
        let users = r.guess_users(S, 1000);
        listed = users.len();
        throttled = users.iter().filter(|u| u.throttled_s > 0).count();
        // The throttles end: the sweep logs each one.
        r.guess_sweep(10 * S);
        r.guess_sweep(11 * S);
        listed += r.guess_users(11 * S, 5).len();
    });
    assert_eq!(n, 0, "allocations under a bucket lock");
    assert!(listed >= 40 && throttled > 0, "{listed} {throttled}");
}

#[test]
fn fraud_sweep_listing_and_save_allocate_nothing_under_a_lock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Room to spare: 30 names in 8-way buckets of a random hash must never
    // fill one (64 entries did, now and then).
    let a = Accounts::create(
        4096,
        Thresholds {
            spend_warning: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let tickets: Vec<CallTicket> = (0..30).map(|_| CallTicket::default()).collect();
    for (i, t) in tickets.iter().enumerate() {
        let name = format!("account-{i}");
        a.start(name.as_bytes(), 0, Money(1_000_000), S, t).unwrap();
        a.answer(t, S).unwrap();
        if i % 4 == 0 {
            a.suspend(name.as_bytes(), Reason::Rpc, S, 1).unwrap();
        }
    }
    let dir = std::env::temp_dir().join(format!("sipguard-noalloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("accounts.state");
    let (mut crossed, mut pending, mut listed) = (0, 0, 0);
    let n = under_lock(|| {
        let (c, p) = a.sweep(120 * S, 120_000, true);
        (crossed, pending) = (c.len(), p.len());
        a.list(120 * S, |i| {
            listed += usize::from(!i.name.is_empty());
            true
        });
        sipguard::fraud::persist::save(&a, &path, 120 * S, &[]).unwrap();
    });
    assert_eq!(n, 0, "allocations under a bucket lock");
    assert_eq!((pending, listed), (8, 30));
    assert!(crossed > 0, "the sweep found crossings");
}

#[test]
fn ban_state_save_allocates_nothing_under_a_lock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Room to spare: 50 bans must never meet the 6-ban cap of a bucket.
    let r = Engine::create(&Config {
        flood: FloodConfig {
            table_size: 8192,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("region");
    for i in 0..50 {
        r.flood.ban(&format!("192.0.2.{i}"), Some(100 * S), S).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("sipguard-noalloc-bans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = under_lock(|| {
        assert_eq!(
            sipguard::flood::state::save(&r.flood, &dir.join("bans.state"), S).unwrap(),
            50
        );
    });
    assert_eq!(n, 0, "allocations under a bucket lock");
}
