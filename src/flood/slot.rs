//! One entry of the source and prefix tables: a 32-byte `#[repr(C)]`
//! struct of atomics ([`crate::shm::Shared`]) that the generic table
//! ([`crate::shm::keyed`]) keeps in a 64-byte cell beside its key and its
//! last access, and how its fields read. The table logic is in
//! [`crate::flood::table`], the areas that hold the tables in
//! [`crate::flood::region`].

use crate::flood::ban::{Reason, PERMANENT};
use crate::shm::keyed::{Cell, Entry};
use crate::shm::{assert_layout, Shared};
use crate::sip::addr::Key;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

pub use crate::shm::keyed::WAYS as SLOTS_PER_BUCKET;

/// A ban was announced and its end not yet logged. Cleared (bucket held)
/// by whoever logs and counts that end; a ban without it is over for every
/// process, whatever its `now` ([`Slot::banned_at`]).
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

/// One source (or, in the prefix table, one network). Its key and last
/// access are the cell's ([`Cell::key`], [`Cell::touched`]).
#[repr(C)]
pub struct Slot {
    /// GCRA theoretical arrival time. In a prefix entry: when the window of
    /// its member count began.
    pub(super) tat: AtomicU64,
    /// End of the current or last ban; 0 = never banned; PERMANENT.
    pub(super) ban_until: AtomicU64,
    pub(super) hits: AtomicU64,
    pub(super) offences: AtomicU32,
    /// ANNOUNCED | reason << REASON_SHIFT | members << MEMBERS_SHIFT
    pub(super) meta: AtomicU32,
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for Slot {}
const _: () = assert_layout::<Slot>(32, 8);
// A cell of the source table is one cache line.
const _: () = assert_layout::<Cell<Slot>>(64, 64);

impl Entry for Slot {
    fn clear(&self) {
        self.tat.store(0, Relaxed);
        self.ban_until.store(0, Relaxed);
        self.hits.store(0, Relaxed);
        self.offences.store(0, Relaxed);
        self.meta.store(0, Relaxed);
    }
    /// A live ban is never recycled for a new source.
    fn evictable(&self, now: u64) -> bool {
        !self.banned_at(now)
    }
    /// Recycled first: entries with no offence history, so escalation
    /// memory outlives idle traffic; an ended ban whose end is not logged
    /// yet goes last.
    fn keep_rank(&self) -> u8 {
        2 * u8::from(self.unreported()) + u8::from(self.offences.load(Relaxed) > 0)
    }
}

impl Slot {
    /// A ban in force at `now`: announced, its end not logged yet, and not
    /// past. The announcement counts, not only the time: processes read
    /// the clock before they lock a bucket, so one preempted in between
    /// works with a `now` earlier than the `ban_until` another process set
    /// when it lifted a ban ([`Slot::lift`]) or than a ban end the sweep
    /// logged. By time alone that ban would still be live to it: lifted and
    /// counted a second time, or holding a ban way beside a new ban (a
    /// seventh live ban in a bucket, and active bans above bans less unbans).
    pub(super) fn banned_at(&self, now: u64) -> bool {
        self.unreported() && now < self.ban_until.load(Relaxed)
    }
    /// A ban was announced and its end not logged yet.
    pub(super) fn unreported(&self) -> bool {
        self.meta.load(Relaxed) & ANNOUNCED != 0
    }
    pub(super) fn reason(&self) -> Option<Reason> {
        Reason::from_code((self.meta.load(Relaxed) >> REASON_SHIFT) & 0xff)
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
    /// End a live ban now; the offence count stays. Clearing
    /// [`ANNOUNCED`] ends it for every process, also one whose `now` is
    /// earlier than this one.
    pub(super) fn lift(&self, now: u64) {
        self.ban_until.store(now.max(1), Relaxed);
        self.tat.store(0, Relaxed);
        self.meta.fetch_and(!ANNOUNCED, Relaxed);
    }
}

/// The key of a cell of the table of `shape`.
pub(super) fn cell_key(cell: &Cell<Slot>, shape: Shape) -> Key {
    Key::from_halves_with(cell.key(), shape.v4, shape.v6)
}
