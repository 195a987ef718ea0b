//! The one mapping of a composition root, carved by offsets.
//!
//! Before the mapping exists, each capability appends the areas it needs to
//! a [`Plan`] (a table's lock words and cells, a struct of counters, the
//! rule sets), each 64-byte aligned; the plan's end is the mapping's size.
//! [`Store::create`] then maps that many bytes once, zero-filled and
//! committed, and writes the [`Header`] at offset 0: magic, layout version,
//! total size, every area's tag, offset, size and entry size, the per-start
//! hash seed and the creation time. The capabilities attach to their areas
//! by the offsets the plan gave them. [`Store::verify`] compares the header
//! with the plan and refuses a mapping that does not match it, with a
//! message that names what differs; the engine runs it when it hands out a
//! freshly made store.
//!
//! ```text
//! 0        Header (640 bytes)
//! 640      area 0 (64-aligned)
//!          area 1 ...
//! ```

use crate::shm::hash::{fold, random_seed};
use crate::shm::{align64, assert_layout, Mapping, Shared};
use crate::util::clock::clock_ns;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;

const MAGIC: u64 = u64::from_be_bytes(*b"SIPGUARD");
/// Raised whenever the header or any area's layout changes.
pub const LAYOUT_VERSION: u32 = 10;
/// Most areas one mapping holds.
pub const MAX_AREAS: usize = 24;

/// Where one area lies in the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub offset: usize,
    pub bytes: usize,
}

/// One area as the header records it.
#[repr(C)]
struct AreaRecord {
    /// Four ASCII letters naming the area (`b"FSRC"`).
    tag: AtomicU32,
    entry_bytes: AtomicU32,
    offset: AtomicU64,
    bytes: AtomicU64,
}

/// The start of every mapping.
#[repr(C, align(64))]
pub struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    areas: AtomicU32,
    bytes: AtomicU64,
    /// The per-start secret of every keyed hash in the mapping.
    seed: [AtomicU64; 2],
    /// Monotonic ns when the mapping was made.
    created_ns: AtomicU64,
    area: [AreaRecord; MAX_AREAS],
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for AreaRecord {}
const _: () = assert_layout::<AreaRecord>(24, 8);
// SAFETY: repr(C) of atomics and arrays of them.
unsafe impl Shared for Header {}
const _: () = assert_layout::<Header>(640, 64);

/// The areas of a mapping to be made: an offset allocator, computed before
/// the mapping so its size is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    areas: Vec<([u8; 4], Area, u32)>,
    end: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Plan::new()
    }
}

impl Plan {
    pub fn new() -> Plan {
        Plan {
            areas: Vec::new(),
            end: align64(size_of::<Header>()),
        }
    }

    /// Append an area of `bytes` (entries of `entry_bytes`), 64-aligned.
    pub fn add(&mut self, tag: [u8; 4], bytes: usize, entry_bytes: usize) -> Area {
        assert!(self.areas.len() < MAX_AREAS, "more than {MAX_AREAS} areas");
        let area = Area {
            offset: self.end,
            bytes,
        };
        self.end = align64(self.end + bytes);
        self.areas.push((tag, area, entry_bytes as u32));
        area
    }

    /// Append an array of `n` shared `T`.
    pub fn array<T: Shared>(&mut self, tag: [u8; 4], n: usize) -> Area {
        self.add(tag, n * size_of::<T>(), size_of::<T>())
    }

    /// Bytes of the whole mapping, header included.
    pub fn bytes(&self) -> usize {
        self.end
    }
}

/// One mapping with its header; shared by the capabilities carved from it
/// (each holds an `Arc`), unmapped when the last of them is dropped.
/// Children inherit it through fork.
pub struct Store {
    map: Mapping,
}

impl Store {
    /// Map `plan`'s bytes and write the header; then check it
    /// ([`Store::verify`]). Before the fork.
    pub fn create(plan: &Plan) -> Result<Arc<Store>, String> {
        let store = Store {
            map: Mapping::new(plan.bytes())?,
        };
        let h = store.header();
        let seed = random_seed();
        h.version.store(LAYOUT_VERSION, Relaxed);
        h.bytes.store(plan.bytes() as u64, Relaxed);
        h.seed[0].store(seed[0], Relaxed);
        h.seed[1].store(seed[1], Relaxed);
        h.created_ns.store(clock_ns(), Relaxed);
        h.areas.store(plan.areas.len() as u32, Relaxed);
        for (r, (tag, area, entry)) in h.area.iter().zip(&plan.areas) {
            r.tag.store(u32::from_le_bytes(*tag), Relaxed);
            r.entry_bytes.store(*entry, Relaxed);
            r.offset.store(area.offset as u64, Relaxed);
            r.bytes.store(area.bytes as u64, Relaxed);
        }
        h.magic.store(MAGIC, Release);
        crate::shm::lock::my_pid();
        store.verify(plan)?;
        Ok(Arc::new(store))
    }

    /// A thing planned into a store of its own: `plan` appends its areas,
    /// `attach` makes it from the store (tests, standalone handles).
    pub fn alone<P, T>(
        plan: impl FnOnce(&mut Plan) -> P,
        attach: impl FnOnce(&Arc<Store>, P) -> T,
    ) -> Result<T, String> {
        let mut p = Plan::new();
        let parts = plan(&mut p);
        let store = Store::create(&p)?;
        Ok(attach(&store, parts))
    }

    fn header(&self) -> &Header {
        self.map.at::<Header>(0, 0)
    }

    /// Refuse a mapping whose header does not describe `plan`.
    pub fn verify(&self, plan: &Plan) -> Result<(), String> {
        let h = self.header();
        if h.magic.load(Acquire) != MAGIC {
            return Err("shared memory has no sipguard header".into());
        }
        let version = h.version.load(Relaxed);
        if version != LAYOUT_VERSION {
            return Err(format!(
                "shared memory layout {version}, expected {LAYOUT_VERSION}"
            ));
        }
        let bytes = h.bytes.load(Relaxed);
        if bytes != plan.bytes() as u64 || bytes != self.map.bytes() as u64 {
            return Err(format!(
                "shared memory of {bytes} bytes, expected {}",
                plan.bytes()
            ));
        }
        if h.areas.load(Relaxed) as usize != plan.areas.len() {
            return Err("shared memory holds other areas than this build's".into());
        }
        for (r, (tag, area, entry)) in h.area.iter().zip(&plan.areas) {
            let found = (
                r.tag.load(Relaxed),
                r.entry_bytes.load(Relaxed),
                r.offset.load(Relaxed),
                r.bytes.load(Relaxed),
            );
            if found
                != (
                    u32::from_le_bytes(*tag),
                    *entry,
                    area.offset as u64,
                    area.bytes as u64,
                )
            {
                return Err(format!(
                    "shared memory area {} does not match this build",
                    String::from_utf8_lossy(tag)
                ));
            }
        }
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.map.bytes()
    }

    /// Monotonic ns when the mapping was made.
    pub fn created_ns(&self) -> u64 {
        self.header().created_ns.load(Relaxed)
    }

    /// A per-start 128-bit secret for one use (`salt`: an area's offset,
    /// and which of its hashes): the same in every process.
    pub fn secret(&self, salt: u64) -> [u64; 2] {
        let s = &self.header().seed;
        let (a, b) = (s[0].load(Relaxed), s[1].load(Relaxed));
        [
            fold(a ^ salt, b ^ 0x9e37_79b9_7f4a_7c15),
            fold(b ^ salt.rotate_left(32), a ^ 0xc2b2_ae3d_27d4_eb4f),
        ]
    }

    /// The `i`th `T` of an array starting at `offset` ([`Mapping::at`]).
    #[inline]
    pub fn at<T: Shared>(&self, offset: usize, i: usize) -> &T {
        self.map.at(offset, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_appended_64_aligned_and_verified() {
        let mut p = Plan::new();
        let a = p.array::<AtomicU32>(*b"LOCK", 3);
        let b = p.array::<AtomicU64>(*b"CELL", 10);
        assert_eq!((a.offset, a.bytes), (640, 12));
        assert_eq!((b.offset, b.bytes), (704, 80));
        assert_eq!(p.bytes(), 832);
        let s = Store::create(&p).unwrap();
        s.verify(&p).unwrap();
        assert_eq!(s.bytes(), 832);
        assert!(s.created_ns() > 0);
        // A plan the mapping was not made for is refused, naming the area.
        let mut other = Plan::new();
        other.array::<AtomicU32>(*b"LOCK", 3);
        other.array::<AtomicU32>(*b"CELL", 20);
        let e = s.verify(&other).unwrap_err();
        assert!(e.contains("area CELL"), "{e}");
        let mut bigger = p.clone();
        bigger.array::<AtomicU64>(*b"MORE", 1);
        assert!(s.verify(&bigger).unwrap_err().contains("bytes"));
        // A damaged header is refused.
        s.header().version.store(LAYOUT_VERSION + 1, Relaxed);
        assert!(s.verify(&p).unwrap_err().contains("layout"));
        s.header().magic.store(0, Relaxed);
        assert!(s.verify(&p).unwrap_err().contains("no sipguard header"));
    }

    #[test]
    fn secrets_differ_per_salt_and_per_store() {
        let p = Plan::new();
        let (a, b) = (Store::create(&p).unwrap(), Store::create(&p).unwrap());
        assert_eq!(a.secret(1), a.secret(1));
        assert_ne!(a.secret(1), a.secret(2));
        assert_ne!(a.secret(1), b.secret(1));
    }
}
