//! Shared memory: an anonymous `MAP_SHARED` mapping of fixed size, made
//! before the fork and committed at once (it never grows), read through
//! `#[repr(C)]` atomics at fixed offsets ([`Mapping`], [`Shared`]).
//!
//! - [`store`]: the one mapping of a composition root, carved into areas
//!   by a [`store::Plan`], with a header checked when it is made;
//! - [`keyed`]: the one table, generic over its entry, in an area;
//! - [`hash`]: the keyed hashes of table keys and buckets;
//! - [`lock`]: the bucket lock that survives a killed holder;
//! - [`counters`]: the event counters, striped per process.
//!
//! Atomics are address-free: the same bytes work at each process's own
//! address of the mapping, across fork.

pub mod counters;
pub mod hash;
pub mod keyed;
pub mod lock;
pub mod store;

use std::sync::atomic::AtomicU64;

pub struct Mapping {
    base: *mut u8,
    bytes: usize,
}

// SAFETY: shared memory accessed only through atomics.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

/// Types that may live in a shared mapping: the only types [`Mapping::at`]
/// (and so every table) hands out references to.
///
/// Several processes read and write the same bytes, each at its own
/// address, from a zero-filled start: so a shared type holds no pointer or
/// reference, no heap or process-local type (a `std` lock, a `Vec`), and
/// nothing that is not valid as all zero bytes or that needs a `Drop`.
/// Each implementor also states its size and alignment at compile time
/// with [`assert_layout`], so a field added by mistake changes no layout
/// unseen.
///
/// # Safety
/// The implementor is `#[repr(C)]` (or an atomic, or an array of shared
/// types), made only of atomics and arrays of them, plain integers that
/// are never written after the fork, and padding; all zero is a valid
/// value of it.
pub unsafe trait Shared: Sync {}

// SAFETY: atomics are address-free, valid as zero, and work across processes.
unsafe impl Shared for std::sync::atomic::AtomicU8 {}
// SAFETY: as above.
unsafe impl Shared for std::sync::atomic::AtomicU16 {}
// SAFETY: as above.
unsafe impl Shared for std::sync::atomic::AtomicU32 {}
// SAFETY: as above.
unsafe impl Shared for AtomicU64 {}
// SAFETY: an array of shared types has their layout, repeated.
unsafe impl<T: Shared, const N: usize> Shared for [T; N] {}

/// The compile-time layout check of a shared type:
/// `const _: () = assert_layout::<Slot>(64, 64);` fails the build when the
/// size or alignment of `Slot` is not 64.
pub const fn assert_layout<T: Shared>(size: usize, align: usize) {
    assert!(std::mem::size_of::<T>() == size, "size of a shared type changed");
    assert!(
        std::mem::align_of::<T>() == align,
        "alignment of a shared type changed"
    );
}

impl Mapping {
    pub fn new(bytes: usize) -> Result<Mapping, String> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot map {bytes} bytes of shared memory: {}",
                std::io::Error::last_os_error()
            ));
        }
        for off in (0..bytes).step_by(4096) {
            // SAFETY: off < bytes, inside the mapping: every page is
            // committed now, so the mapping never grows after the fork.
            unsafe { std::ptr::write_volatile((base as *mut u8).add(off), 0) };
        }
        Ok(Mapping {
            base: base.cast(),
            bytes,
        })
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The `i`th `T` of an array starting at `offset`: the one way into the
    /// mapping's bytes, for [`Shared`] types only.
    pub fn at<T: Shared>(&self, offset: usize, i: usize) -> &T {
        let off = offset + i * std::mem::size_of::<T>();
        assert!(
            off + std::mem::size_of::<T>() <= self.bytes && off.is_multiple_of(std::mem::align_of::<T>())
        );
        // SAFETY: in bounds and aligned (checked); T is valid for any bit
        // pattern of its atomics, including the mapping's initial zeros.
        unsafe { &*(self.base.add(off) as *const T) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/bytes are exactly what mmap returned.
        unsafe { libc::munmap(self.base.cast(), self.bytes) };
    }
}

pub fn align64(n: usize) -> usize {
    (n + 63) & !63
}

/// Read words back into `out` (`out.len() == N * 8`); allocates nothing.
pub fn get_bytes<const N: usize>(field: &[AtomicU64; N], out: &mut [u8]) {
    use std::sync::atomic::Ordering::Relaxed;
    for (w, chunk) in field.iter().zip(out.chunks_mut(8)) {
        chunk.copy_from_slice(&w.load(Relaxed).to_le_bytes()[..chunk.len()]);
    }
}
