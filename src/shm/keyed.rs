//! Fixed-capacity shared tables keyed by a 128-bit key: one per concept
//! that needs state across processes besides the source table (what a
//! source targets, what happens to a user name, an account's calls).
//!
//! Same design as the source table ([`crate::flood::table`]), made generic: an
//! anonymous `MAP_SHARED` mapping made before the fork, 8-way buckets, one
//! lock word per bucket ([`crate::shm::lock`]), no pointers. An entry type is a
//! `#[repr(C)]` struct of atomics for which all-zero means "empty". A new key
//! takes a free cell, else recycles the least recently touched cell whose
//! entry says it may be evicted; an entry holding live state (a throttle,
//! a call in progress) is never evicted, so the table fails closed on that
//! key ([`KeyedError::Full`]) instead of forgetting it.
//!
//! Names are keyed with a per-start random seed, so an attacker cannot aim
//! many names at one bucket.

use crate::shm::hash::{bucket_hash, parts_key, random_seed};
use crate::shm::lock::{lock, Guard};
use crate::shm::{align64, get_bytes, Mapping, Shared};
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

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
    fn in_use(&self) -> bool {
        self.touched.load(Relaxed) != 0
    }
    fn holds(&self, key: [u64; 2]) -> bool {
        self.in_use() && self.key[0].load(Relaxed) == key[0] && self.key[1].load(Relaxed) == key[1]
    }
    fn claim(&self, key: [u64; 2], now: u64) {
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
    pub fn key(&self) -> [u64; 2] {
        [self.key[0].load(Relaxed), self.key[1].load(Relaxed)]
    }
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

/// A table in its own shared mapping. Children inherit it through fork.
pub struct KeyedTable<T: Entry> {
    map: Mapping,
    buckets: usize,
    cells_offset: usize,
    /// Picks a key's bucket.
    seed: [u64; 2],
    /// Makes a name's key.
    secret: [u64; 2],
    _entry: PhantomData<T>,
}

// SAFETY: the mapping is shared memory accessed only through atomics.
unsafe impl<T: Entry> Send for KeyedTable<T> {}
unsafe impl<T: Entry> Sync for KeyedTable<T> {}

/// A held bucket.
pub struct Bucket<'a, T: Entry> {
    cells: &'a [Cell<T>; WAYS],
    _guard: Guard<'a>,
}

impl<'a, T: Entry> Bucket<'a, T> {
    pub fn find(&self, key: [u64; 2]) -> Option<&'a Cell<T>> {
        self.cells.iter().find(|c| c.holds(key))
    }

    /// The cell for `key`, claiming a free or evictable one; `(cell, new)`.
    pub fn find_or_claim(&self, key: [u64; 2], now: u64) -> Option<(&'a Cell<T>, bool)> {
        if let Some(c) = self.find(key) {
            c.touched.store(now.max(1), Relaxed);
            return Some((c, false));
        }
        let victim = self.cells.iter().find(|c| !c.in_use()).or_else(|| {
            self.cells
                .iter()
                .filter(|c| c.entry.evictable(now))
                .min_by_key(|c| (c.entry.keep_rank(), c.touched.load(Relaxed)))
        })?;
        victim.claim(key, now);
        Some((victim, true))
    }

    pub fn cells(&self) -> impl Iterator<Item = &'a Cell<T>> {
        self.cells.iter().filter(|c| c.in_use())
    }
}

impl<T: Entry> KeyedTable<T> {
    /// Map a table of at least `entries` cells (rounded up to a power of two
    /// of 8-cell buckets), committed now so it never grows.
    pub fn create(entries: u64) -> Result<KeyedTable<T>, String> {
        let buckets = (entries.max(WAYS as u64) as usize)
            .div_ceil(WAYS)
            .next_power_of_two();
        let cells_offset = align64(buckets * size_of::<AtomicU32>());
        let bytes = cells_offset + buckets * WAYS * size_of::<Cell<T>>();
        let map = Mapping::new(bytes)?;
        Ok(KeyedTable {
            map,
            buckets,
            cells_offset,
            seed: random_seed(),
            secret: random_seed(),
            _entry: PhantomData,
        })
    }

    pub fn capacity(&self) -> u64 {
        (self.buckets * WAYS) as u64
    }

    pub fn bytes(&self) -> usize {
        self.map.bytes()
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

    fn bucket_of(&self, key: [u64; 2]) -> usize {
        (bucket_hash(key, self.seed) as usize) & (self.buckets - 1)
    }

    fn lock_index(&self, i: usize) -> Option<Bucket<'_, T>> {
        debug_assert!(i < self.buckets);
        // Offsets derive from the sizes that made the mapping.
        let word = self.map.at::<AtomicU32>(0, i);
        let cells = self.map.at::<[Cell<T>; WAYS]>(self.cells_offset, i);
        lock(word).map(|g| Bucket { cells, _guard: g })
    }

    /// Lock the bucket of `key`.
    pub fn bucket(&self, key: [u64; 2]) -> Result<Bucket<'_, T>, KeyedError> {
        self.lock_index(self.bucket_of(key)).ok_or(KeyedError::Busy)
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
            c.touched.store(now.max(1), Relaxed);
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
