//! One entry of the source and prefix tables, as it lies in shared memory:
//! a 64-byte `#[repr(C)]` line of atomics ([`crate::shm::Shared`]), and how
//! its fields read. The table logic is in [`crate::flood::table`], the
//! mapping that holds the slots in [`crate::flood::region`].

use crate::flood::ban::{Reason, PERMANENT};
use crate::shm::{assert_layout, Shared};
use crate::sip::addr::Key;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

pub const SLOTS_PER_BUCKET: usize = 8;

pub(super) const IN_USE: u32 = 1;
/// A ban was announced and its end not yet logged.
pub(super) const ANNOUNCED: u32 = 2;
pub(super) const REASON_SHIFT: u32 = 8;
/// Prefix entries: first bans counted in the current window.
pub(super) const MEMBERS_SHIFT: u32 = 16;
pub(super) const LOW_META: u32 = (1 << MEMBERS_SHIFT) - 1;

/// Which table a bucket belongs to, and how its keys read back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    /// Bits of an IPv4 key (32: whole addresses) and of an IPv6 key.
    pub(super) v4: u8,
    pub(super) v6: u8,
    /// The source table (counted in `entries_used` and `evictions`).
    pub(super) sources: bool,
}

/// One source (or, in the prefix table, one network). 64 bytes: one cache line.
#[repr(C, align(64))]
pub struct Slot {
    pub(super) key: [AtomicU64; 2],
    /// GCRA theoretical arrival time. In a prefix entry: when the window of
    /// its member count began.
    pub(super) tat: AtomicU64,
    /// End of the current or last ban; 0 = never banned; PERMANENT.
    pub(super) ban_until: AtomicU64,
    pub(super) last_seen: AtomicU64,
    pub(super) hits: AtomicU64,
    pub(super) offences: AtomicU32,
    /// IN_USE | ANNOUNCED | reason << REASON_SHIFT | members << MEMBERS_SHIFT
    pub(super) meta: AtomicU32,
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for Slot {}
const _: () = assert_layout::<Slot>(64, 64);

impl Slot {
    pub(super) fn in_use(&self) -> bool {
        self.meta.load(Relaxed) & IN_USE != 0
    }
    pub(super) fn holds(&self, key: [u64; 2]) -> bool {
        self.in_use() && self.key[0].load(Relaxed) == key[0] && self.key[1].load(Relaxed) == key[1]
    }
    pub(super) fn banned_at(&self, now: u64) -> bool {
        now < self.ban_until.load(Relaxed)
    }
    pub(super) fn reason(&self) -> Option<Reason> {
        Reason::from_code((self.meta.load(Relaxed) >> REASON_SHIFT) & 0xff)
    }
    pub(super) fn key(&self, shape: Shape) -> Key {
        Key::from_halves_with(
            [self.key[0].load(Relaxed), self.key[1].load(Relaxed)],
            shape.v4,
            shape.v6,
        )
    }
    pub(super) fn members(&self) -> u32 {
        self.meta.load(Relaxed) >> MEMBERS_SHIFT
    }
    pub(super) fn set_members(&self, n: u32) {
        let low = self.meta.load(Relaxed) & LOW_META;
        self.meta
            .store(low | n.min(u16::MAX as u32) << MEMBERS_SHIFT, Relaxed);
    }
    /// Which live ban goes first when a bucket's ban ways are all taken:
    /// the lowest. Permanent bans last, then manual ones, then by offences,
    /// then by end.
    pub(super) fn ban_rank(&self) -> (bool, bool, u32, u64) {
        let until = self.ban_until.load(Relaxed);
        (
            until == PERMANENT,
            self.reason() == Some(Reason::Manual),
            self.offences.load(Relaxed),
            until,
        )
    }
    /// End a live ban now; the offence count stays.
    pub(super) fn lift(&self, now: u64) {
        self.ban_until.store(now.max(1), Relaxed);
        self.tat.store(0, Relaxed);
        self.meta.fetch_and(!ANNOUNCED, Relaxed);
    }
    pub(super) fn reset(&self, key: [u64; 2], now: u64) {
        self.key[0].store(key[0], Relaxed);
        self.key[1].store(key[1], Relaxed);
        self.tat.store(0, Relaxed);
        self.ban_until.store(0, Relaxed);
        self.last_seen.store(now, Relaxed);
        self.hits.store(0, Relaxed);
        self.offences.store(0, Relaxed);
        self.meta.store(IN_USE, Relaxed);
    }
}
