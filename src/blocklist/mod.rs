//! A shared blocklist: addresses and networks (IPv4 and IPv6 CIDRs) whose
//! requests are refused and, with early drop, discarded before parsing;
//! read from a file (`blocklist_file`, [`file`]) at start and by an RPC
//! reload in any process.
//!
//! It lives in the engine's mapping as two sets, one active. A reload
//! writes the inactive set and flips the active index, so every forked
//! process sees the new list at once and none reads a file. Each set has a
//! sequence number, odd while it is written; a reader that saw it change
//! retries (a second reload landing on the set it was reading). Readers
//! never lock; reloads are serialized by the robust writer lock (a second
//! one while the first writes is refused; a reloader killed mid-write
//! leaves the set odd and its lock to be taken over).
//!
//! A set is one open-addressing hash table of networks keyed by (first
//! address, prefix length) and a bitmap of the prefix lengths present. A
//! lookup masks the address to each length present and probes once per
//! length: its cost follows the number of distinct prefix lengths (a feed
//! of single addresses has one; at most 129), not the number of entries,
//! and the table is at most half full, so probes stay short at any size.
//! In front of the table, a filter of 8 bits per entry (two bits of one
//! word set per network) answers most lookups of unlisted addresses, the usual traffic,
//! from 1 MiB per million entries that stays in the CPU caches, where the
//! table itself (48 MiB per million) does not. A trie would cost a step
//! per bit (up to 128 dependent loads); sorted ranges a binary search
//! growing with the list.

pub mod config;
pub mod file;

use self::config::BlocklistConfig;
use self::file::Net;
use crate::shm::hash::fold;
use crate::shm::lock::lock;
use crate::shm::store::{Area, Plan, Store};
use crate::shm::{align64, assert_layout, Shared};
use crate::sip::addr::{display_address, is_v4_mapped, mask};
use crate::util::clock::NS_PER_SEC;
use crate::util::log::{log, Level};
use std::mem::size_of;
use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;

/// Reads retried this often before failing open (reloads kept landing on
/// the set being read).
const READ_TRIES: usize = 16;

#[repr(C, align(64))]
struct Control {
    active: AtomicU32,
    writer: AtomicU32,
    /// Sets published so far (0: none).
    generation: AtomicU64,
    /// Second of the last BLOCKLISTED log line (one a second at most).
    logged_s: AtomicU64,
}

#[repr(C, align(64))]
struct SetHeader {
    seq: AtomicU64,
    entries: AtomicU64,
    /// Bit `len` set: some network of that prefix length (0..=128) is listed.
    lengths: [AtomicU64; 3],
}

/// One network; `len` is its prefix length + 1, 0 for a free slot.
#[repr(C)]
struct Slot {
    hi: AtomicU64,
    lo: AtomicU64,
    len: AtomicU64,
}

// SAFETY: repr(C) structs of atomics.
unsafe impl Shared for Control {}
unsafe impl Shared for SetHeader {}
unsafe impl Shared for Slot {}
const _: () = assert_layout::<Control>(64, 64);
const _: () = assert_layout::<SetHeader>(64, 64);
const _: () = assert_layout::<Slot>(24, 8);

/// Where the blocklist lies in a mapping's [`Plan`].
#[derive(Debug, Clone, Copy)]
pub struct BlocklistArea {
    area: Area,
    max: usize,
}

/// The blocklist of a mapping (process-local handle).
pub struct Blocklist {
    store: Arc<Store>,
    control: usize,
    sets: [usize; 2],
    /// Slots per set: a power of two at least twice `max`, or 0.
    slots: usize,
    /// Words of the filter in front of a set's slots (64 bits per 8 entries).
    filter_words: usize,
    max: usize,
    secret: [u64; 2],
    file: Option<PathBuf>,
}

impl Blocklist {
    /// Slots and filter words per set for `max` entries, and the bytes of
    /// a set (header, filter, slots).
    fn set_layout(max: usize) -> (usize, usize, usize) {
        if max == 0 {
            return (0, 0, align64(size_of::<SetHeader>()));
        }
        let slots = (2 * max).next_power_of_two();
        let filter_words = (slots / 16).max(1);
        (
            slots,
            filter_words,
            align64(size_of::<SetHeader>() + filter_words * 8 + slots * size_of::<Slot>()),
        )
    }

    /// Plan one area: the control block, then two sets of room for
    /// `cfg.planned()` entries each (nothing but headers without a file).
    pub fn plan(plan: &mut Plan, cfg: &BlocklistConfig) -> BlocklistArea {
        let max = cfg.planned();
        let (_, _, set_bytes) = Self::set_layout(max);
        BlocklistArea {
            area: plan.add(*b"BLST", size_of::<Control>() + 2 * set_bytes, size_of::<Slot>()),
            max,
        }
    }

    /// The blocklist at `a` of `store` (empty until [`Blocklist::reload`]).
    pub fn attach(store: &Arc<Store>, a: BlocklistArea, cfg: &BlocklistConfig) -> Blocklist {
        let (slots, filter_words, set_bytes) = Self::set_layout(a.max);
        let first = a.area.offset + size_of::<Control>();
        Blocklist {
            store: store.clone(),
            control: a.area.offset,
            sets: [first, first + set_bytes],
            slots,
            filter_words,
            max: a.max,
            secret: store.secret(a.area.offset as u64),
            file: cfg.file.clone(),
        }
    }

    fn control(&self) -> &Control {
        self.store.at(self.control, 0)
    }

    fn header(&self, set: usize) -> &SetHeader {
        self.store.at(self.sets[set], 0)
    }

    fn filter(&self, set: usize, i: usize) -> &AtomicU64 {
        self.store.at(self.sets[set] + size_of::<SetHeader>(), i)
    }

    fn slot(&self, set: usize, i: usize) -> &Slot {
        self.store
            .at(self.sets[set] + size_of::<SetHeader>() + self.filter_words * 8, i)
    }

    /// The keyed hash of a network: its home slot in the low bits, its
    /// filter bit in the high ones.
    fn hash(&self, net: u128, len: u32) -> u64 {
        let h = fold(
            (net >> 64) as u64 ^ self.secret[0],
            net as u64 ^ self.secret[1] ^ u64::from(len).rotate_left(56),
        );
        fold(h, self.secret[0] | 1)
    }

    /// The filter word and its two bits for hash `h` (a blocked filter:
    /// one word read per lookup, about 5 % false positives when full).
    fn filter_bit(&self, h: u64) -> (usize, u64) {
        let f = fold(h, self.secret[1] | 1);
        let word = (f >> 12) as usize & (self.filter_words - 1);
        (word, 1 << (f & 63) | 1 << ((f >> 6) & 63))
    }

    /// Whether `net`/`len` may be in `set`: false is certain.
    fn may_hold(&self, set: usize, h: u64) -> bool {
        let (w, b) = self.filter_bit(h);
        self.filter(set, w).load(Relaxed) & b == b
    }

    /// The slot holding `net`/`len` (hash `h`) in `set`, else the free
    /// slot that ends its probe (None only in a full table, which `max`
    /// rules out).
    fn probe(&self, set: usize, net: u128, len: u32, h: u64) -> Option<(&Slot, bool)> {
        let mut i = h as usize & (self.slots - 1);
        for _ in 0..self.slots {
            let s = self.slot(set, i);
            match s.len.load(Relaxed) {
                0 => return Some((s, false)),
                l if l == u64::from(len) + 1
                    && s.hi.load(Relaxed) == (net >> 64) as u64
                    && s.lo.load(Relaxed) == net as u64 =>
                {
                    return Some((s, true))
                }
                _ => i = (i + 1) & (self.slots - 1),
            }
        }
        None
    }

    /// No list can be published (no `blocklist_file`): nothing is ever listed.
    pub fn is_off(&self) -> bool {
        self.slots == 0
    }

    /// Whether `bits` (an address as [`crate::sip::addr::address_bits`]
    /// gives it) lies in a listed network. Allocates nothing, takes no lock;
    /// fails open (false) when reloads kept overwriting the set it read.
    pub fn contains(&self, bits: u128) -> bool {
        if self.is_off() {
            return false;
        }
        for _ in 0..READ_TRIES {
            let set = self.control().active.load(Acquire) as usize & 1;
            let h = self.header(set);
            let s1 = h.seq.load(Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let found = h.entries.load(Relaxed) > 0 && self.lookup(set, h, bits);
            fence(Acquire);
            if h.seq.load(Relaxed) == s1 {
                return found;
            }
        }
        false
    }

    fn lookup(&self, set: usize, h: &SetHeader, bits: u128) -> bool {
        // An IPv4 address (kept in ::ffff:0:0/96) is matched by networks
        // of 96 bits or more only: an IPv6 one wider than the mapped range
        // ("::/8" of a bogon list) is no IPv4 network.
        let shortest = if is_v4_mapped(bits) { 96 } else { 0 };
        for (w, word) in h.lengths.iter().enumerate() {
            let mut m = word.load(Relaxed);
            while m != 0 {
                let len = w as u32 * 64 + m.trailing_zeros();
                m &= m - 1;
                if len > 128 || len < shortest {
                    continue;
                }
                let net = bits & mask(len as u8);
                let h = self.hash(net, len);
                if self.may_hold(set, h) && matches!(self.probe(set, net, len, h), Some((_, true))) {
                    return true;
                }
            }
        }
        false
    }

    /// Publish `nets` to every process; returns the distinct entries.
    pub fn publish(&self, nets: &[Net]) -> Result<usize, String> {
        if nets.len() > self.max {
            return Err(format!(
                "{} entries, more than blocklist_max ({})",
                nets.len(),
                self.max
            ));
        }
        let c = self.control();
        let _writer = lock(&c.writer).ok_or("another blocklist reload is in progress")?;
        let set = 1 - (c.active.load(Acquire) as usize & 1);
        let h = self.header(set);
        // Odd while written, whatever a writer killed mid-publish left.
        let s = h.seq.load(Relaxed) | 1;
        h.seq.store(s, Relaxed);
        fence(Release);
        for i in 0..self.filter_words {
            self.filter(set, i).store(0, Relaxed);
        }
        for i in 0..self.slots {
            self.slot(set, i).len.store(0, Relaxed);
        }
        let mut lengths = [0u64; 3];
        let mut n = 0;
        for net in nets {
            let len = u32::from(net.len);
            let hash = self.hash(net.bits, len);
            match self.probe(set, net.bits, len, hash) {
                Some((slot, false)) => {
                    let (w, b) = self.filter_bit(hash);
                    self.filter(set, w).fetch_or(b, Relaxed);
                    slot.hi.store((net.bits >> 64) as u64, Relaxed);
                    slot.lo.store(net.bits as u64, Relaxed);
                    slot.len.store(u64::from(len) + 1, Relaxed);
                    lengths[len as usize / 64] |= 1 << (len % 64);
                    n += 1;
                }
                Some((_, true)) => {}
                None => return Err("blocklist table full".into()),
            }
        }
        for (w, v) in h.lengths.iter().zip(lengths) {
            w.store(v, Relaxed);
        }
        h.entries.store(n as u64, Relaxed);
        h.seq.store(s.wrapping_add(1), Release);
        c.active.store(set as u32, Release);
        c.generation.fetch_add(1, Release);
        Ok(n)
    }

    /// Re-read `blocklist_file` and publish it; on error the old list stays.
    /// Returns (distinct entries, generation).
    pub fn reload(&self) -> Result<(usize, u64), String> {
        let path = self.file.as_deref().ok_or("no blocklist_file is set")?;
        let nets = file::load(path, self.max)?;
        let n = self.publish(&nets)?;
        let generation = self.generation();
        log(
            Level::Notice,
            format_args!(
                "sipguard: BLOCKLIST loaded file={} entries={n} generation={generation}",
                path.display()
            ),
        );
        Ok((n, generation))
    }

    /// A request from `addr` (raw bytes) refused because of the list: one
    /// BLOCKLISTED line a second at most. (The count is the engine's
    /// striped `Counter::Blocklisted`: one shared word bumped by every
    /// refusal would bounce the cache line every lookup reads.)
    pub fn log_refused(&self, addr: &[u8], now: u64) {
        let c = self.control();
        let now_s = now / NS_PER_SEC + 1;
        let last = c.logged_s.load(Relaxed);
        if last < now_s && c.logged_s.compare_exchange(last, now_s, Relaxed, Relaxed).is_ok() {
            log(
                Level::Notice,
                format_args!("sipguard: BLOCKLISTED src={}", display_address(addr).as_str()),
            );
        }
    }

    /// Entries of the active set.
    pub fn entries(&self) -> u64 {
        let c = self.control();
        self.header(c.active.load(Acquire) as usize & 1)
            .entries
            .load(Relaxed)
    }

    /// Sets published so far (0: none).
    pub fn generation(&self) -> u64 {
        self.control().generation.load(Acquire)
    }

    /// Most entries a load accepts (0: no blocklist configured).
    pub fn capacity(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests;
