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
//! A holder that exited but is not yet reaped (a zombie: `kill(pid, 0)`
//! still succeeds on it) counts as dead too.
//!
//! Unlocking clears the word only if it still holds this process's pid (a
//! compare-exchange, not a blind store): if a waiter took the lock over
//! (it judged this process dead), a late unlock must not free the lock the
//! new holder holds. Such a mismatch is counted ([`unlock_mismatches`]) and
//! logged; it never panics.

use crate::util::clock::clock_ns;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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

/// Whether `pid` no longer runs: gone (ESRCH), or a zombie (exited, not
/// yet reaped by its parent; `kill(pid, 0)` succeeds on it). Allocates
/// nothing.
fn holder_is_dead(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return true;
    }
    is_zombie(pid)
}

/// `/proc/<pid>/stat` says state `Z` (zombie) or `X` (dead). Unknown (no
/// /proc, unreadable) is "not a zombie".
fn is_zombie(pid: u32) -> bool {
    let mut path = [0u8; 32];
    let mut n = 0;
    for b in b"/proc/" {
        path[n] = *b;
        n += 1;
    }
    let mut digits = [0u8; 10];
    let (mut d, mut v) = (0, pid);
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        path[n] = digits[d];
        n += 1;
    }
    for b in b"/stat" {
        path[n] = *b;
        n += 1;
    }
    // path[n] is already the terminating NUL.
    let mut buf = [0u8; 512];
    // SAFETY: a NUL-terminated path; read into a stack buffer of its size.
    let len = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let len = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        len
    };
    if len <= 0 {
        return false;
    }
    stat_state(&buf[..len as usize]).is_some_and(|s| s == b'Z' || s == b'X')
}

/// The state letter of a `/proc/<pid>/stat` line: the field after the
/// command name, which is in parentheses and may itself hold `)`.
fn stat_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 1..)?.iter().copied().find(|b| *b != b' ')
}

static UNLOCK_MISMATCHES: AtomicU64 = AtomicU64::new(0);

/// How many unlocks in this process found the word no longer holding this
/// process's pid (the lock was taken over meanwhile) and left it alone.
pub fn unlock_mismatches() -> u64 {
    UNLOCK_MISMATCHES.load(Ordering::Relaxed)
}

/// Held lock; released on drop, including during a panic unwind.
pub struct Guard<'a> {
    word: &'a AtomicU32,
    me: u32,
}

impl Guard<'_> {
    fn new(word: &AtomicU32, me: u32) -> Guard<'_> {
        probe::taken();
        Guard { word, me }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        probe::released();
        if let Err(holder) = self
            .word
            .compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed)
        {
            unlock_mismatch(self.me, holder);
        }
    }
}

#[cold]
fn unlock_mismatch(me: u32, holder: u32) {
    UNLOCK_MISMATCHES.fetch_add(1, Ordering::Relaxed);
    crate::util::log::log(
        crate::util::log::Level::Err,
        format_args!(
            "sipguard: bucket lock released by pid {me} was held by pid {holder} \
             (taken over while {me} held it); left as it was"
        ),
    );
}

/// For tests: whether this thread holds a bucket lock, so a test can check
/// that nothing allocates under one. Off unless a test turns it on; then
/// costs one relaxed load of a static per lock and unlock.
#[doc(hidden)]
pub mod probe {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    static ON: AtomicBool = AtomicBool::new(false);

    thread_local! {
        static HELD: Cell<u32> = const { Cell::new(0) };
    }

    /// Start counting the locks each thread holds.
    pub fn enable() {
        ON.store(true, Relaxed);
    }

    /// How many bucket locks this thread holds (0 unless [`enable`]d).
    pub fn held() -> u32 {
        HELD.try_with(Cell::get).unwrap_or(0)
    }

    #[inline]
    pub(super) fn taken() {
        if ON.load(Relaxed) {
            let _ = HELD.try_with(|h| h.set(h.get() + 1));
        }
    }

    #[inline]
    pub(super) fn released() {
        if ON.load(Relaxed) {
            let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(1)));
        }
    }
}

/// Take the lock, or None if it could not be had within `GIVE_UP_NS`.
pub fn lock(word: &AtomicU32) -> Option<Guard<'_>> {
    let me = my_pid();
    if word
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return Some(Guard::new(word, me));
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
                return Some(Guard::new(word, me));
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
                return Some(Guard::new(word, me));
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
    fn unlock_releases_only_its_own_word() {
        let w = AtomicU32::new(0);
        let g = lock(&w).unwrap();
        // Taken over meanwhile (this process was judged dead).
        w.store(1, Ordering::Relaxed);
        let before = unlock_mismatches();
        drop(g);
        assert_eq!(w.load(Ordering::Relaxed), 1, "the new holder keeps its lock");
        assert_eq!(unlock_mismatches(), before + 1);
    }

    #[test]
    fn stat_state_reads_past_the_command_name() {
        assert_eq!(stat_state(b"42 (sh) S 1 42"), Some(b'S'));
        assert_eq!(stat_state(b"42 (a) b) Z 1 42"), Some(b'Z'));
        assert_eq!(stat_state(b"42 (sh"), None);
        assert!(!is_zombie(my_pid()));
        assert!(!holder_is_dead(my_pid()));
    }

    #[test]
    fn zombie_holder_is_taken_over() {
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        // Wait for the exit but leave the child unreaped: a zombie.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child with a valid siginfo buffer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: kill with signal 0 only checks for existence.
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "a zombie still exists");
        assert!(holder_is_dead(pid as u32));
        let w = AtomicU32::new(pid as u32);
        assert!(lock(&w).is_some(), "taken over from a zombie");
        // SAFETY: reap it now.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }

    #[test]
    fn live_holder_makes_waiter_give_up() {
        // pid 1 always exists: a live holder that never releases.
        let w = AtomicU32::new(1);
        assert!(lock(&w).is_none());
        assert_eq!(w.load(Ordering::Relaxed), 1);
    }
}
