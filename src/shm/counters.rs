//! Event counters in the shared region, striped by process.
//!
//! Every request bumps a counter; one shared cache line bumped from every
//! core would bounce between them on each request. Each process adds to the
//! stripe its pid picks, and readers (statistics, RPC) sum the stripes.

use crate::shm::lock::my_pid;
use crate::shm::{assert_layout, Shared};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Passed,
    Allowlisted,
    Limited,
    Rejected,
    Untracked,
    Bans,
    Unbans,
    Dropped,
    Evictions,
    EntriesUsed,
    /// A gauge: recounted by the sweep, stored in stripe 0.
    ActiveBans,
    Scanners,
    Enumerations,
    AuthFailures,
    AuthBans,
    Throttles,
    /// Credentials not checked: the user name is throttled.
    ThrottledAuth,
    /// A gauge, like ActiveBans.
    ThrottledUsers,
    /// Replies rewritten into a challenge.
    Normalized,
    /// Requests and packets refused because their source is on the blocklist.
    Blocklisted,
}

const SLOTS: usize = 32;
const STRIPES: usize = 16;

#[repr(C, align(64))]
struct Stripe([AtomicU64; SLOTS]);

#[repr(C)]
pub struct Counters {
    stripes: [Stripe; STRIPES],
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for Stripe {}
const _: () = assert_layout::<Stripe>(SLOTS * 8, 64);
// SAFETY: repr(C) of stripes.
unsafe impl Shared for Counters {}
const _: () = assert_layout::<Counters>(STRIPES * SLOTS * 8, 64);

impl Counters {
    pub fn bump(&self, c: Counter) {
        self.stripes[my_pid() as usize % STRIPES].0[c as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0[c as usize].load(Relaxed)))
    }

    /// Set a gauge that nothing bumps.
    pub fn set_gauge(&self, c: Counter, value: u64) {
        self.stripes[0].0[c as usize].store(value, Relaxed);
    }
}
