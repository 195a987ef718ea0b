//! The flood defence's shared region: one anonymous `MAP_SHARED` mapping
//! made before the fork, fixed in size, never grown. Its header also holds
//! the event counters of every capability.
//!
//! Layout (all offsets 64-byte aligned):
//!
//! ```text
//! Header         magic, layout version, sizes, hash seed, prefix-ban
//!                horizon, counter stripes
//! locks          one u32 per bucket (holder pid, 0 = free)
//! slots          buckets × 8 slots × 64 bytes
//! prefix locks   one u32 per prefix bucket
//! prefix slots   prefix buckets × 8 slots × 64 bytes (buckets / 8, at least 1)
//! ```
//!
//! Only `#[repr(C)]` structs of atomics live here: no pointers, no heap
//! types, nothing whose meaning depends on the process that reads it.
//! Bytes per entry: 64 (slot) + 0.5 (its share of a bucket lock), plus one
//! eighth of that for the prefix table, so `table_size` 65536 maps 4.5 MiB
//! plus the header. Entries are rounded up to a power of two of 8-entry
//! buckets.

use crate::flood::config::FloodConfig;
use crate::flood::slot::{Slot, SLOTS_PER_BUCKET};
use crate::shm::counters::Counters;
use crate::shm::hash::random_seed;
use crate::shm::{align64, assert_layout, Mapping, Shared};
use crate::util::clock::clock_ns;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const MAGIC: u64 = u64::from_be_bytes(*b"SIPGUARD");
const LAYOUT_VERSION: u32 = 3;

#[repr(C, align(64))]
pub struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    slot_bytes: AtomicU32,
    region_bytes: AtomicU64,
    buckets: AtomicU64,
    seed: [AtomicU64; 2],
    created_ns: AtomicU64,
    /// No prefix ban runs past this (monotonic ns): the request path looks
    /// a prefix up only while `now` is before it. Raised by every prefix
    /// ban, recomputed by the sweep.
    pub(crate) prefix_horizon: AtomicU64,
    /// Prefix bans started so far: tells the sweep that one started while
    /// it recomputed the horizon.
    pub(crate) prefix_gen: AtomicU64,
    pub counters: Counters,
}

// SAFETY: repr(C) of atomics and the counters' atomics.
unsafe impl Shared for Header {}
const _: () = assert_layout::<Header>(128 + 4096, 64);

/// Sizes derived from `table_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub buckets: usize,
    pub locks_offset: usize,
    pub slots_offset: usize,
    /// The prefix table: banned networks and the count of first bans per
    /// network ([`crate::flood::table`]).
    pub prefix_buckets: usize,
    pub prefix_locks_offset: usize,
    pub prefix_slots_offset: usize,
    pub bytes: usize,
}

impl Layout {
    /// Buckets are a power of two so a hash picks one with a mask.
    pub fn for_entries(entries: u64) -> Layout {
        let buckets = (entries as usize).div_ceil(SLOTS_PER_BUCKET).next_power_of_two();
        let prefix_buckets = (buckets / 8).max(1);
        let locks_offset = align64(size_of::<Header>());
        let slots_offset = align64(locks_offset + buckets * size_of::<AtomicU32>());
        let prefix_locks_offset = slots_offset + buckets * SLOTS_PER_BUCKET * size_of::<Slot>();
        let prefix_slots_offset = align64(prefix_locks_offset + prefix_buckets * size_of::<AtomicU32>());
        let bytes = prefix_slots_offset + prefix_buckets * SLOTS_PER_BUCKET * size_of::<Slot>();
        Layout {
            buckets,
            locks_offset,
            slots_offset,
            prefix_buckets,
            prefix_locks_offset,
            prefix_slots_offset,
            bytes,
        }
    }

    pub fn entries(&self) -> u64 {
        (self.buckets * SLOTS_PER_BUCKET) as u64
    }
}

/// The flood defence: process-local handle to the source and prefix tables
/// (where the mapping is) and the (read-only) config. Children inherit it
/// through fork together with the mapping. Its operations are in
/// [`crate::flood::table`] and [`crate::flood::state`].
pub struct Flood {
    /// Owns the mapping; unmapped on drop.
    map: Mapping,
    layout: Layout,
    pub cfg: FloodConfig,
}

// SAFETY: the mapping is shared memory accessed only through atomics.
unsafe impl Send for Flood {}
unsafe impl Sync for Flood {}

impl Flood {
    /// Map and initialise a new region for `cfg`. Pages are touched now, so
    /// memory use is fixed from the start and never grows under a flood.
    /// `cfg` is validated already ([`crate::engine::Engine::create`]).
    pub fn create(cfg: &FloodConfig) -> Result<Flood, String> {
        let layout = Layout::for_entries(cfg.table_size);
        // Committed at once: memory use is fixed from the start. Zero-filled:
        // all locks free, all slots empty.
        let map = Mapping::new(layout.bytes).map_err(|e| format!("{e} (table_size {})", cfg.table_size))?;
        let region = Flood {
            map,
            layout,
            cfg: cfg.clone(),
        };
        let h = region.header();
        let seed = random_seed();
        h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        h.slot_bytes.store(size_of::<Slot>() as u32, Ordering::Relaxed);
        h.region_bytes.store(layout.bytes as u64, Ordering::Relaxed);
        h.buckets.store(layout.buckets as u64, Ordering::Relaxed);
        h.seed[0].store(seed[0], Ordering::Relaxed);
        h.seed[1].store(seed[1], Ordering::Relaxed);
        h.created_ns.store(clock_ns(), Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        crate::shm::lock::my_pid();
        Ok(region)
    }

    pub fn header(&self) -> &Header {
        self.map.at::<Header>(0, 0)
    }

    /// Refuse a region whose header does not describe this layout.
    pub fn verify(&self) -> Result<(), String> {
        let h = self.header();
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err("shared region has no sipguard header".into());
        }
        let version = h.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(format!(
                "shared region layout {version}, expected {LAYOUT_VERSION}"
            ));
        }
        if h.region_bytes.load(Ordering::Relaxed) != self.layout.bytes as u64
            || h.buckets.load(Ordering::Relaxed) != self.layout.buckets as u64
            || h.slot_bytes.load(Ordering::Relaxed) != size_of::<Slot>() as u32
        {
            return Err("shared region sizes do not match this build".into());
        }
        Ok(())
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn counters(&self) -> &Counters {
        &self.header().counters
    }

    pub fn seed(&self) -> [u64; 2] {
        let s = &self.header().seed;
        [s[0].load(Ordering::Relaxed), s[1].load(Ordering::Relaxed)]
    }

    /// The lock word and slots of bucket `i` (i < buckets).
    pub fn bucket(&self, i: usize) -> (&AtomicU32, &[Slot; SLOTS_PER_BUCKET]) {
        assert!(i < self.layout.buckets);
        self.bucket_at(self.layout.locks_offset, self.layout.slots_offset, i)
    }

    /// The lock word and slots of prefix bucket `i` (i < prefix_buckets).
    pub fn prefix_bucket(&self, i: usize) -> (&AtomicU32, &[Slot; SLOTS_PER_BUCKET]) {
        assert!(i < self.layout.prefix_buckets);
        self.bucket_at(
            self.layout.prefix_locks_offset,
            self.layout.prefix_slots_offset,
            i,
        )
    }

    fn bucket_at(&self, locks: usize, slots: usize, i: usize) -> (&AtomicU32, &[Slot; SLOTS_PER_BUCKET]) {
        // Offsets come from `layout`, which sized the mapping; callers check
        // `i` against the area's bucket count.
        (
            self.map.at::<AtomicU32>(locks, i),
            self.map.at::<[Slot; SLOTS_PER_BUCKET]>(slots, i),
        )
    }
}

/// A 64-entry source table for tests, after `f` adjusts the defaults.
#[cfg(test)]
pub fn small_flood(f: impl FnOnce(&mut FloodConfig)) -> Flood {
    let mut cfg = FloodConfig {
        table_size: 64,
        ..Default::default()
    };
    f(&mut cfg);
    Flood::create(&cfg).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_math() {
        let l = Layout::for_entries(65536);
        assert_eq!(l.buckets, 8192);
        assert_eq!(l.entries(), 65536);
        assert_eq!(l.prefix_buckets, 1024);
        assert_eq!(l.prefix_locks_offset, l.slots_offset + 65536 * 64);
        assert_eq!(l.bytes, l.prefix_slots_offset + 8192 * 64);
        assert!(l.bytes < 4 * 1024 * 1024 + 512 * 1024 + 64 * 1024);
        // Rounded up to whole buckets, then to a power of two.
        assert_eq!(Layout::for_entries(100).entries(), 128);
        // The smallest table still has one prefix bucket.
        assert_eq!(Layout::for_entries(64).prefix_buckets, 1);
        assert_eq!(Layout::for_entries(64).prefix_slots_offset % 64, 0);
    }

    #[test]
    fn created_region_verifies() {
        let r = small_flood(|_| {});
        r.verify().unwrap();
        assert_eq!(r.layout().entries(), 64);
    }
}
