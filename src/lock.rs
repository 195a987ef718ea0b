//! A bucket lock that lives in the shared region and survives a dead holder.
//!
//! The lock word holds the pid of its holder (0 = free). Atomics are
//! address-free, so the word works across forked processes, unlike a futex
//! based `std`/`parking_lot` lock. Critical sections are a handful of loads
//! and stores with no syscall and no allocation, so waiting is a spin. A
//! waiter that has spun for `STEAL_CHECK_NS` asks the kernel whether the
//! holder still exists (the only syscall, and only on this abnormal path);
//! if it was killed mid-update, the waiter takes the lock over. A holder that
//! is alive but stuck (stopped by a debugger) makes waiters give up after
//! `GIVE_UP_NS`, and the caller fails open rather than wedging a worker.

use crate::clock::clock_ns;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// Spin this long before checking whether the holder is alive.
const STEAL_CHECK_NS: u64 = 1_000_000;
/// Give up after this long; the caller treats the entry as untracked.
const GIVE_UP_NS: u64 = 20_000_000;
/// Spins between clock reads.
const SPINS_PER_CLOCK_READ: u32 = 256;

static MY_PID: AtomicU32 = AtomicU32::new(0);
static AT_FORK: Once = Once::new();

extern "C" fn refresh_pid_after_fork() {
    // SAFETY: getpid has no preconditions.
    MY_PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
}

/// This process's pid, cached; a fork handler refreshes it in each child so
/// the request path makes no getpid syscall.
pub fn my_pid() -> u32 {
    AT_FORK.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe { libc::pthread_atfork(None, None, Some(refresh_pid_after_fork)) };
        refresh_pid_after_fork();
    });
    MY_PID.load(Ordering::Relaxed)
}

fn holder_is_dead(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Held lock; released on drop, including during a panic unwind.
pub struct Guard<'a> {
    word: &'a AtomicU32,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.word.store(0, Ordering::Release);
    }
}

/// Take the lock, or None if it could not be had within `GIVE_UP_NS`.
pub fn lock(word: &AtomicU32) -> Option<Guard<'_>> {
    let me = my_pid();
    if word
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return Some(Guard { word });
    }
    lock_slow(word, me)
}

#[cold]
fn lock_slow(word: &AtomicU32, me: u32) -> Option<Guard<'_>> {
    let start = clock_ns();
    let mut spins = 0u32;
    loop {
        let holder = word.load(Ordering::Relaxed);
        if holder == 0 {
            if word
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(Guard { word });
            }
            continue;
        }
        std::hint::spin_loop();
        spins += 1;
        if !spins.is_multiple_of(SPINS_PER_CLOCK_READ) {
            continue;
        }
        let waited = clock_ns().saturating_sub(start);
        if waited >= STEAL_CHECK_NS && holder_is_dead(holder) {
            // The holder was killed inside its critical section. Whatever it
            // left half-written is plain numbers in one bucket; take over.
            if word
                .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(Guard { word });
            }
        }
        if waited >= GIVE_UP_NS {
            return None;
        }
        if waited >= STEAL_CHECK_NS {
            // SAFETY: sched_yield has no preconditions; only on this slow path.
            unsafe { libc::sched_yield() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_and_release() {
        let w = AtomicU32::new(0);
        {
            let _g = lock(&w).unwrap();
            assert_eq!(w.load(Ordering::Relaxed), my_pid());
        }
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn dead_holder_is_taken_over() {
        // A pid that cannot exist (above pid_max's ceiling).
        let w = AtomicU32::new(0x3fff_fff0);
        let g = lock(&w).expect("stolen from a dead holder");
        assert_eq!(w.load(Ordering::Relaxed), my_pid());
        drop(g);
    }

    #[test]
    fn live_holder_makes_waiter_give_up() {
        // pid 1 always exists: a live holder that never releases.
        let w = AtomicU32::new(1);
        assert!(lock(&w).is_none());
        assert_eq!(w.load(Ordering::Relaxed), 1);
    }
}
