//! The flood defence's shared state, in areas of the engine's mapping
//! ([`crate::shm::store`]): the source table and the prefix table (both
//! [`KeyedTable`]s of [`Slot`]), and the prefix-ban horizon. The event
//! counters of every capability are an area the engine hands in.
//!
//! Bytes per entry: 64 (a cell: key, last access, the 32-byte [`Slot`]) +
//! 0.5 (its share of a bucket lock), plus one eighth of that for the prefix
//! table, so `table_size` 65536 takes 4.5 MiB of the mapping. Entries are
//! rounded up to a power of two of 8-entry buckets.

use crate::cluster::Cluster;
use crate::flood::config::FloodConfig;
use crate::flood::slot::Slot;
use crate::shm::counters::Counters;
use crate::shm::keyed::{KeyedTable, TableArea};
use crate::shm::store::{Area, Plan, Store};
use crate::shm::{assert_layout, Shared};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// What the flood defence shares besides its tables.
#[repr(C, align(64))]
pub struct FloodShared {
    /// No prefix ban runs past this (monotonic ns): the request path looks
    /// a prefix up only while `now` is before it. Raised by every prefix
    /// ban, recomputed by the sweep.
    pub(crate) prefix_horizon: AtomicU64,
    /// Prefix bans started so far: tells the sweep that one started while
    /// it recomputed the horizon.
    pub(crate) prefix_gen: AtomicU64,
    /// The same for source bans: the early drop looks a source up only
    /// while a source ban may be in force.
    pub(crate) source_horizon: AtomicU64,
    pub(crate) source_gen: AtomicU64,
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for FloodShared {}
const _: () = assert_layout::<FloodShared>(64, 64);

/// Where the flood defence's areas lie in a mapping's [`Plan`].
pub struct FloodPlan {
    shared: Area,
    sources: TableArea<Slot>,
    prefixes: TableArea<Slot>,
}

/// The flood defence: process-local handle to the source and prefix tables
/// and the (read-only) config. Children inherit it through fork together
/// with the mapping. Its operations are in [`crate::flood::table`] and
/// [`crate::flood::state`].
pub struct Flood {
    store: Arc<Store>,
    shared: usize,
    counters: usize,
    pub(crate) sources: KeyedTable<Slot>,
    /// Banned networks and the count of first bans per network
    /// ([`crate::flood::table`]): one eighth of the source table's buckets.
    pub(crate) prefixes: KeyedTable<Slot>,
    pub cfg: FloodConfig,
    /// Cluster replication, when on: bans made here are queued for the
    /// peers, and the peers' addresses are exempt ([`crate::flood::replica`]).
    pub cluster: Option<Cluster>,
}

impl Flood {
    /// Source-table buckets for `table_size` entries.
    pub fn buckets_for(table_size: u64) -> usize {
        KeyedTable::<Slot>::buckets_for(table_size)
    }

    /// Plan the areas for `cfg` (validated already,
    /// [`crate::engine::Engine::create`]).
    pub fn plan(plan: &mut Plan, cfg: &FloodConfig) -> FloodPlan {
        let buckets = Self::buckets_for(cfg.table_size);
        FloodPlan {
            shared: plan.array::<FloodShared>(*b"FSHR", 1),
            sources: KeyedTable::plan_buckets(plan, *b"FSRC", buckets),
            prefixes: KeyedTable::plan_buckets(plan, *b"FPFX", (buckets / 8).max(1)),
        }
    }

    /// The flood defence at the areas of `p` in `store`, counting in the
    /// `counters` area.
    pub fn attach(store: &Arc<Store>, p: FloodPlan, counters: Area, cfg: &FloodConfig) -> Flood {
        Flood {
            store: store.clone(),
            shared: p.shared.offset,
            counters: counters.offset,
            sources: KeyedTable::attach(store, p.sources),
            prefixes: KeyedTable::attach(store, p.prefixes),
            cfg: cfg.clone(),
            cluster: None,
        }
    }

    /// A flood defence in a mapping of its own, with its own counters.
    pub fn create(cfg: &FloodConfig) -> Result<Flood, String> {
        Store::alone(
            |p| (p.array::<Counters>(*b"CNTR", 1), Flood::plan(p, cfg)),
            |s, (c, f)| Flood::attach(s, f, c, cfg),
        )
    }

    pub(crate) fn shared(&self) -> &FloodShared {
        self.store.at(self.shared, 0)
    }

    pub fn counters(&self) -> &Counters {
        self.store.at(self.counters, 0)
    }

    /// Entries of the source table.
    pub fn entries(&self) -> u64 {
        self.sources.capacity()
    }

    /// The source table (for tests that hold its buckets).
    pub fn sources(&self) -> &KeyedTable<Slot> {
        &self.sources
    }

    /// The prefix table.
    pub fn prefixes(&self) -> &KeyedTable<Slot> {
        &self.prefixes
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

    use crate::shm::keyed::Cell;

    #[test]
    fn layout_math() {
        let mut plan = Plan::new();
        let cfg = FloodConfig::default();
        let p = Flood::plan(&mut plan, &cfg);
        assert_eq!(std::mem::size_of::<Cell<Slot>>(), 64);
        assert_eq!(Flood::buckets_for(65536), 8192);
        assert_eq!(p.sources.area().offset % 64, 0);
        // Lock words (4 bytes a bucket, 64-aligned), then 64 bytes a cell.
        assert_eq!(p.sources.area().bytes, 8192 * 4 + 65536 * 64);
        assert_eq!(p.prefixes.area().bytes, 1024 * 4 + 8192 * 64);
        let flood = plan.bytes() - p.shared.offset;
        assert!(flood < 4 * 1024 * 1024 + 512 * 1024 + 64 * 1024, "{flood}");
        // Rounded up to whole buckets, then to a power of two.
        assert_eq!(Flood::buckets_for(100) * 8, 128);
        // The smallest table still has one prefix bucket.
        let r = small_flood(|_| {});
        assert_eq!((r.entries(), r.prefixes().buckets()), (64, 1));
    }
}
