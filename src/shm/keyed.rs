//! The one shared table: fixed capacity, keyed by a 128-bit key, generic
//! over its entry. The source and prefix tables of the flood defence
//! (entry [`crate::flood::slot::Slot`]), what a source targets, what
//! happens to a user name, a transaction's fate and an account's calls are
//! all a `KeyedTable<T>`.
//!
//! A table is one area of a mapping ([`crate::shm::store`]): one lock word
//! per bucket ([`crate::shm::lock`]), then the buckets of [`WAYS`] (8)
//! cells; no pointers. A cell is 64-byte aligned: the key, when it was last
//! touched (0 = free), then the entry, a `#[repr(C)]` struct of atomics for
//! which all-zero means "empty" ([`Entry`]). A key's bucket is picked by a
//! hash seeded per start, so an attacker cannot aim many keys at one
//! bucket.
//!
//! A new key takes a free cell, else recycles the evictable cell of lowest
//! [`Entry::keep_rank`], then least recently touched; an entry holding live
//! state (a ban, a throttle, a call in progress) says it is not evictable,
//! so the table fails closed on that key ([`KeyedError::Full`]) instead of
//! forgetting it. A caller with its own policy (the flood defence's cap on
//! ban ways) works on a held [`Bucket`]: [`Bucket::find`],
//! [`Bucket::victim`], [`Cell::claim`].
//!
//! Bytes per entry: `size_of::<Cell<T>>()` (the entry plus 24, rounded up
//! to 64) plus half a byte for its share of a lock word; entries are
//! rounded up to a power of two of 8-entry buckets.

use crate::shm::hash::{bucket_hash, parts_key};
use crate::shm::lock::{lock, Guard};
use crate::shm::store::{Area, Plan, Store};
use crate::shm::{align64, get_bytes, Shared};
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub const WAYS: usize = 8;

/// What an entry type tells the table. An entry lives in shared memory, so
/// it is [`Shared`].
pub trait Entry: Shared + 'static {
    /// Reset to the empty state (all zero) when a cell is (re)claimed.
    fn clear(&self);
    /// Whether the cell may be recycled for another key at `now`.
    fn evictable(&self, now: u64) -> bool;
    /// Among evictable cells, lower ranks are recycled first (then the
    /// least recently touched).
    fn keep_rank(&self) -> u8 {
        0
    }
}

/// A cell: the key, when it was last touched, then the entry.
#[repr(C, align(64))]
pub struct Cell<T> {
    key: [AtomicU64; 2],
    /// Monotonic ns of the last access; 0 = free.
    touched: AtomicU64,
    entry: T,
}

// SAFETY: repr(C) of atomics and a shared entry.
unsafe impl<T: Shared> Shared for Cell<T> {}

impl<T: Entry> Cell<T> {
    #[inline]
    pub fn in_use(&self) -> bool {
        self.touched.load(Relaxed) != 0
    }
    #[inline]
    fn holds(&self, key: [u64; 2]) -> bool {
        self.in_use() && self.key[0].load(Relaxed) == key[0] && self.key[1].load(Relaxed) == key[1]
    }
    /// Take the cell for `key` (bucket held): its entry starts empty.
    #[inline]
    pub fn claim(&self, key: [u64; 2], now: u64) {
        self.key[0].store(key[0], Relaxed);
        self.key[1].store(key[1], Relaxed);
        self.touched.store(now.max(1), Relaxed);
        self.entry.clear();
    }
    /// Give the cell back (its entry no longer holds anything).
    pub fn release(&self) {
        self.touched.store(0, Relaxed);
        self.entry.clear();
    }
    #[inline]
    pub fn key(&self) -> [u64; 2] {
        [self.key[0].load(Relaxed), self.key[1].load(Relaxed)]
    }
    /// Note an access at `now`.
    #[inline]
    pub fn touch(&self, now: u64) {
        self.touched.store(now.max(1), Relaxed);
    }
    /// Monotonic ns of the last access.
    #[inline]
    pub fn touched(&self) -> u64 {
        self.touched.load(Relaxed)
    }
    #[inline]
    pub fn entry(&self) -> &T {
        &self.entry
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedError {
    /// Key absent and not to be created.
    NotFound,
    /// All cells of the bucket hold live entries.
    Full,
    /// Bucket lock not obtained in time (a stuck holder).
    Busy,
}

/// Where a table lies in a [`Plan`]: one area, its lock words then its
/// cells.
pub struct TableArea<T> {
    area: Area,
    buckets: usize,
    _entry: PhantomData<fn() -> T>,
}

impl<T> TableArea<T> {
    /// The area the table takes.
    pub fn area(&self) -> Area {
        self.area
    }
}

impl<T> Clone for TableArea<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TableArea<T> {}

/// A table in an area of a shared mapping. Children inherit it through fork.
pub struct KeyedTable<T: Entry> {
    store: Arc<Store>,
    buckets: usize,
    locks: usize,
    cells: usize,
    /// Picks a key's bucket.
    seed: [u64; 2],
    /// Makes a name's key.
    secret: [u64; 2],
    _entry: PhantomData<fn() -> T>,
}

/// A held bucket.
pub struct Bucket<'a, T: Entry> {
    cells: &'a [Cell<T>; WAYS],
    _guard: Guard<'a>,
}

impl<'a, T: Entry> Bucket<'a, T> {
    #[inline]
    pub fn find(&self, key: [u64; 2]) -> Option<&'a Cell<T>> {
        self.cells.iter().find(|c| c.holds(key))
    }

    /// The cell a new key would take: a free one (`true`), else the
    /// evictable one of lowest rank, least recently touched (`false`);
    /// None when every cell holds a live entry. Not claimed yet.
    #[inline]
    pub fn victim(&self, now: u64) -> Option<(&'a Cell<T>, bool)> {
        // One pass, the ranks kept in registers (a `min_by_key` over
        // tuples went through the stack: a third of the time of a check).
        let mut best: Option<(&'a Cell<T>, u8, u64)> = None;
        for c in self.cells {
            let touched = c.touched.load(Relaxed);
            if touched == 0 {
                return Some((c, true));
            }
            if !c.entry.evictable(now) {
                continue;
            }
            let rank = c.entry.keep_rank();
            // The first of equals wins.
            if best.is_none_or(|(_, r, t)| (rank, touched) < (r, t)) {
                best = Some((c, rank, touched));
            }
        }
        best.map(|(c, _, _)| (c, false))
    }

    /// The cell for `key`, touched, claiming a free or evictable one;
    /// `(cell, new)`.
    pub fn find_or_claim(&self, key: [u64; 2], now: u64) -> Option<(&'a Cell<T>, bool)> {
        if let Some(c) = self.find(key) {
            c.touch(now);
            return Some((c, false));
        }
        let (victim, _) = self.victim(now)?;
        victim.claim(key, now);
        Some((victim, true))
    }

    #[inline]
    pub fn cells(&self) -> impl Iterator<Item = &'a Cell<T>> {
        self.cells.iter().filter(|c| c.in_use())
    }
}

impl<T: Entry> KeyedTable<T> {
    /// Buckets for at least `entries` cells: a power of two (a hash picks
    /// one with a mask), at least one.
    pub fn buckets_for(entries: u64) -> usize {
        (entries.max(WAYS as u64) as usize)
            .div_ceil(WAYS)
            .next_power_of_two()
    }

    /// Append a table of at least `entries` cells to `plan`.
    pub fn plan(plan: &mut Plan, tag: [u8; 4], entries: u64) -> TableArea<T> {
        Self::plan_buckets(plan, tag, Self::buckets_for(entries))
    }

    /// Append a table of `buckets` (a power of two) buckets to `plan`.
    pub fn plan_buckets(plan: &mut Plan, tag: [u8; 4], buckets: usize) -> TableArea<T> {
        assert!(buckets.is_power_of_two());
        let bytes = align64(buckets * size_of::<AtomicU32>()) + buckets * WAYS * size_of::<Cell<T>>();
        TableArea {
            area: plan.add(tag, bytes, size_of::<Cell<T>>()),
            buckets,
            _entry: PhantomData,
        }
    }

    /// The table at `area` of `store` (made from the plan `area` came from).
    pub fn attach(store: &Arc<Store>, area: TableArea<T>) -> KeyedTable<T> {
        let at = area.area.offset;
        KeyedTable {
            store: store.clone(),
            buckets: area.buckets,
            locks: at,
            cells: at + align64(area.buckets * size_of::<AtomicU32>()),
            seed: store.secret(at as u64),
            secret: store.secret(!(at as u64)),
            _entry: PhantomData,
        }
    }

    /// A table of at least `entries` cells in a mapping of its own,
    /// committed now so it never grows.
    pub fn create(entries: u64) -> Result<KeyedTable<T>, String> {
        Store::alone(|p| Self::plan(p, *b"TABL", entries), Self::attach)
    }

    pub fn capacity(&self) -> u64 {
        (self.buckets * WAYS) as u64
    }

    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// The key of a name (bytes compared exactly).
    pub fn name_key(&self, name: &[u8]) -> [u64; 2] {
        self.parts_key(&[name])
    }

    /// The key of a tuple of byte strings (each length-prefixed, so parts
    /// cannot run into each other).
    pub fn parts_key(&self, parts: &[&[u8]]) -> [u64; 2] {
        parts_key(self.secret, parts)
    }

    #[inline]
    fn bucket_of(&self, key: [u64; 2]) -> usize {
        (bucket_hash(key, self.seed) as usize) & (self.buckets - 1)
    }

    /// Lock bucket `i` (< [`KeyedTable::buckets`]); None if its lock could
    /// not be had in time.
    #[inline]
    pub fn lock_index(&self, i: usize) -> Option<Bucket<'_, T>> {
        assert!(i < self.buckets);
        // Offsets derive from the plan that sized the mapping.
        let word = self.store.at::<AtomicU32>(self.locks, i);
        let cells = self.store.at::<[Cell<T>; WAYS]>(self.cells, i);
        lock(word).map(|g| Bucket { cells, _guard: g })
    }

    /// Lock the bucket of `key`.
    #[inline]
    pub fn bucket(&self, key: [u64; 2]) -> Result<Bucket<'_, T>, KeyedError> {
        self.lock_index(self.bucket_of(key)).ok_or(KeyedError::Busy)
    }

    /// Whether `key` is in the table, read without its bucket's lock: keys
    /// are written under the lock, so an insert of the same key racing with
    /// the call may be missed, as if it came just after. For a look that
    /// needs no lock when, as usually, the key is absent.
    #[inline]
    pub fn holds_unlocked(&self, key: [u64; 2]) -> bool {
        let cells = self.store.at::<[Cell<T>; WAYS]>(self.cells, self.bucket_of(key));
        cells.iter().any(|c| c.holds(key))
    }

    /// Run `f` on the entry of `key` under its bucket lock, creating it if
    /// `create`; `f` gets whether the entry is new. Keep `f` short.
    pub fn with<R>(
        &self,
        key: [u64; 2],
        now: u64,
        create: bool,
        f: impl FnOnce(&T, bool) -> R,
    ) -> Result<R, KeyedError> {
        let bucket = self.bucket(key)?;
        let (cell, new) = if create {
            bucket.find_or_claim(key, now).ok_or(KeyedError::Full)?
        } else {
            let c = bucket.find(key).ok_or(KeyedError::NotFound)?;
            c.touch(now);
            (c, false)
        };
        Ok(f(&cell.entry, new))
    }

    /// Visit every used cell, bucket by bucket, under that bucket's lock
    /// (returning false stops). `f` runs with the lock held: it must not
    /// allocate or log (a visitor that does uses
    /// [`KeyedTable::for_each_copied`]). Returns how many buckets could not
    /// be locked and were left out.
    pub fn for_each(&self, mut f: impl FnMut(&Cell<T>) -> bool) -> usize {
        let mut skipped = 0;
        for i in 0..self.buckets {
            let Some(bucket) = self.lock_index(i) else {
                skipped += 1;
                continue;
            };
            for c in bucket.cells() {
                if !f(c) {
                    return skipped;
                }
            }
        }
        skipped
    }
}

impl<T: Entry> KeyedTable<T> {
    /// Like [`KeyedTable::for_each`], but `f` runs with no lock held: each
    /// bucket's used cells are copied out by `copy` (under its lock, into a
    /// fixed array), the lock is released, then `f` sees the copies. For a
    /// visitor that is slow or allocates (an RPC reply). Returns how many
    /// buckets could not be locked and were left out.
    pub fn for_each_copied<C>(
        &self,
        mut copy: impl FnMut(&Cell<T>) -> C,
        mut f: impl FnMut(C) -> bool,
    ) -> usize {
        let mut skipped = 0;
        for i in 0..self.buckets {
            let mut out: [Option<C>; WAYS] = std::array::from_fn(|_| None);
            match self.lock_index(i) {
                Some(bucket) => {
                    for (o, c) in out.iter_mut().zip(bucket.cells()) {
                        *o = Some(copy(c));
                    }
                }
                None => {
                    skipped += 1;
                    continue;
                }
            }
            for c in out.into_iter().flatten() {
                if !f(c) {
                    return skipped;
                }
            }
        }
        skipped
    }
}

/// Copy a name into a fixed field for display, cut at `N` bytes; returns
/// the stored length. The key is always the hash of the whole name.
pub fn store_name<const N: usize>(field: &[AtomicU64; N], len: &AtomicU32, name: &[u8]) {
    let n = name.len().min(N * 8);
    for (i, w) in field.iter().enumerate() {
        let mut b = [0u8; 8];
        let from = (i * 8).min(n);
        let to = (i * 8 + 8).min(n);
        b[..to - from].copy_from_slice(&name[from..to]);
        w.store(u64::from_le_bytes(b), Relaxed);
    }
    len.store(n as u32, Relaxed);
}

/// Read a name stored by [`store_name`] into `out` (at least `N * 8`
/// bytes); returns its length. Allocates nothing.
pub fn load_name_into<const N: usize>(field: &[AtomicU64; N], len: &AtomicU32, out: &mut [u8]) -> usize {
    get_bytes(field, &mut out[..N * 8]);
    (len.load(Relaxed) as usize).min(N * 8)
}

/// A name copied out of a table into a fixed array: what a visitor takes
/// under a bucket lock (no allocation there) and turns into a `Vec` or a
/// log line after the lock is released.
#[derive(Clone, Copy)]
pub struct FixedName<const B: usize> {
    bytes: [u8; B],
    len: usize,
}

impl<const B: usize> FixedName<B> {
    /// Copy a name stored by [`store_name`]; `B` must be at least `N * 8`.
    pub fn load<const N: usize>(field: &[AtomicU64; N], len: &AtomicU32) -> Self {
        let mut bytes = [0u8; B];
        let len = load_name_into(field, len, &mut bytes);
        FixedName { bytes, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Read back a name stored by [`store_name`].
pub fn load_name<const N: usize>(field: &[AtomicU64; N], len: &AtomicU32) -> Vec<u8> {
    let mut out = vec![0u8; N * 8];
    let n = load_name_into(field, len, &mut out);
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Default)]
    struct Counted {
        n: AtomicU64,
        pinned: AtomicU32,
    }

    // SAFETY: repr(C) of atomics.
    unsafe impl Shared for Counted {}
    const _: () = crate::shm::assert_layout::<Counted>(16, 8);

    impl Entry for Counted {
        fn clear(&self) {
            self.n.store(0, Relaxed);
            self.pinned.store(0, Relaxed);
        }
        fn evictable(&self, _now: u64) -> bool {
            self.pinned.load(Relaxed) == 0
        }
    }

    #[test]
    fn create_count_and_find() {
        let t: KeyedTable<Counted> = KeyedTable::create(64).unwrap();
        assert_eq!(t.capacity(), 64);
        let k = t.name_key(b"alice");
        assert_ne!(k, t.name_key(b"alicf"));
        for i in 1..=3u64 {
            let (n, new) = t
                .with(k, i, true, |e, new| (e.n.fetch_add(1, Relaxed) + 1, new))
                .unwrap();
            assert_eq!((n, new), (i, i == 1));
        }
        assert_eq!(
            t.with(t.name_key(b"bob"), 5, false, |_, _| ()),
            Err(KeyedError::NotFound)
        );
        // The same answers without the lock.
        assert!(t.holds_unlocked(k));
        assert!(!t.holds_unlocked(t.name_key(b"bob")));
    }

    #[test]
    fn two_tables_key_a_name_differently() {
        let a: KeyedTable<Counted> = KeyedTable::create(8).unwrap();
        let b: KeyedTable<Counted> = KeyedTable::create(8).unwrap();
        assert_eq!(a.name_key(b"alice"), a.name_key(b"alice"));
        assert_ne!(a.name_key(b"alice"), b.name_key(b"alice"));
        assert_ne!(a.parts_key(&[b"al", b"ice"]), a.parts_key(&[b"ali", b"ce"]));
    }

    #[test]
    fn pinned_entries_are_never_evicted() {
        // One bucket: 8 cells.
        let t: KeyedTable<Counted> = KeyedTable::create(8).unwrap();
        for i in 0..8u64 {
            t.with([i, 1], 1 + i, true, |e, _| e.pinned.store(1, Relaxed))
                .unwrap();
        }
        assert_eq!(t.with([99, 1], 100, true, |_, _| ()), Err(KeyedError::Full));
        // Unpin the oldest but one: it is the one recycled.
        t.with([3, 1], 50, false, |e, _| e.pinned.store(0, Relaxed))
            .unwrap();
        assert!(t.with([99, 1], 101, true, |_, new| new).unwrap());
        assert_eq!(t.with([3, 1], 102, false, |_, _| ()), Err(KeyedError::NotFound));
        let mut n = 0;
        assert_eq!(
            t.for_each(|_| {
                n += 1;
                true
            }),
            0
        );
        assert_eq!(n, 8);
    }

    #[test]
    fn names_round_trip_and_cut() {
        let f: [AtomicU64; 3] = Default::default();
        let len = AtomicU32::new(0);
        store_name(&f, &len, b"alice@example.org");
        assert_eq!(load_name(&f, &len), b"alice@example.org");
        store_name(&f, &len, &[b'x'; 40]);
        assert_eq!(load_name(&f, &len), vec![b'x'; 24]);
    }
}
