//! Cluster replication's shared state, for a node whose bans its peers
//! (other Kamailio nodes, reached over Kamailio's `dmq` module) share:
//!
//! - the **outgoing queue**: a bounded ring of fixed-size [`Change`]
//!   records. Any process appends a change it made itself ([`Cluster::push`]);
//!   the host's timer drains it in batches ([`Cluster::drain`]) into one
//!   message body each ([`wire`]). A full ring drops the change and counts it:
//!   a flood of bans never turns into unbounded memory or messages.
//! - the **who-wins table** (tombstones included): the timestamp of the
//!   latest change known for each key. A received change older than it
//!   is ignored ([`Cluster::admit`]), so applying one twice changes nothing,
//!   concurrent edits settle on the latest, and a late copy of a ban does
//!   not undo the unban that ended it. Direct-mapped and bounded: a key
//!   pushed out by a colliding one forgets its order (then the copy applies).
//! - the **peers** that sent trusted messages: exempt from every check
//!   ([`Cluster::is_peer`]), so cluster traffic is never limited or dropped.
//! - the **peers' counts**: each node sends only its own count for a name
//!   (e.g. a user name's authentication failures); a node's total is its
//!   own plus the peers' counts received recently ([`Cluster::remote_count`]).
//!
//! One robust lock word ([`crate::shm::lock`]) guards the ring and the
//! who-wins table: a change is a rare event (a ban), not a request, and
//! its critical section is a few stores. A writer killed inside it leaves at
//! worst one record that [`Change::load`] refuses.
//!
//! This module knows no capability: the flood defence pushes its changes
//! here, the engine applies received ones ([`crate::engine`]).

pub mod change;
pub mod wire;

pub use change::{wall_us, Change, Kind, PERMANENT_MS, RECORD_WORDS};

use crate::shm::lock::lock;
use crate::shm::store::{Area, Plan, Store};
use crate::shm::{assert_layout, Shared};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Changes the outgoing ring holds (128 bytes each: 1 MiB).
pub const QUEUE_CAPACITY: usize = 8192;
/// Keys the who-wins table remembers.
pub const STAMPS: usize = 16384;
/// Peers remembered for the exemption and the report.
pub const MAX_PEERS: usize = 16;
/// Peers' counts remembered (a count per peer and name), direct-mapped.
pub const COUNT_SLOTS: usize = 8192;

/// Every bit of every word reaches the bits a slot index is taken from.
fn mix(words: &[u64]) -> u64 {
    words.iter().fold(0x243f_6a88_85a3_08d3u64, |h, w| {
        let h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ h >> 29
    })
}

/// The queue's indexes and the replication's own counters.
#[repr(C, align(64))]
pub struct Head {
    lock: AtomicU32,
    peers_known: AtomicU32,
    /// Next record to write / to read (they only grow; index mod capacity).
    write: AtomicU64,
    read: AtomicU64,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
    pub msgs_out: AtomicU64,
    pub changes_out: AtomicU64,
    pub msgs_in: AtomicU64,
    pub changes_in: AtomicU64,
    /// Received changes that were applied (newer than what was known).
    pub applied: AtomicU64,
    /// Messages refused: not from a cluster node, or not ours.
    pub refused: AtomicU64,
    /// Wall ms of the last message sent / received.
    pub last_out_ms: AtomicU64,
    pub last_in_ms: AtomicU64,
    /// Replication lag of received changes (receive time minus change
    /// time, µs): the last one and the largest.
    pub lag_last_us: AtomicU64,
    pub lag_max_us: AtomicU64,
    /// Sync: requests answered, snapshots received, 1 once a sync completed.
    pub syncs_served: AtomicU64,
    pub syncs_received: AtomicU64,
    pub synced: AtomicU64,
    _pad: [AtomicU64; 6],
    peers: [PeerSlot; MAX_PEERS],
}
// SAFETY: repr(C) of atomics.
unsafe impl Shared for Head {}
const _: () = assert_layout::<Head>(192 + 32 * MAX_PEERS, 64);

#[repr(C, align(64))]
struct Record([AtomicU64; RECORD_WORDS]);
// SAFETY: repr(C) of atomics.
unsafe impl Shared for Record {}
const _: () = assert_layout::<Record>(128, 64);

/// The latest change known for one key.
#[repr(C)]
struct Stamp {
    subject: [AtomicU64; 3],
    /// Wall µs of the change, 0 = free.
    ts_us: AtomicU64,
}
// SAFETY: repr(C) of atomics.
unsafe impl Shared for Stamp {}
const _: () = assert_layout::<Stamp>(32, 8);

/// One peer's own count for one name.
#[repr(C)]
struct CountSlot {
    subject: [AtomicU64; 3],
    peer: AtomicU64,
    value: AtomicU64,
    /// Wall ms it arrived, 0 = free.
    at_ms: AtomicU64,
}
// SAFETY: repr(C) of atomics.
unsafe impl Shared for CountSlot {}
const _: () = assert_layout::<CountSlot>(48, 8);

/// A node that sent trusted messages.
#[repr(C)]
struct PeerSlot {
    addr: [AtomicU64; 2],
    /// Wall ms of its last message, 0 = free.
    last_in_ms: AtomicU64,
    msgs_in: AtomicU64,
}
// SAFETY: repr(C) of atomics.
unsafe impl Shared for PeerSlot {}
const _: () = assert_layout::<PeerSlot>(32, 8);

/// A peer as the report gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// Address bits (IPv4 mapped into IPv6).
    pub addr: u128,
    pub last_in_ms: u64,
    pub msgs_in: u64,
}

/// Where the areas lie in the mapping's plan.
pub struct ClusterPlan {
    head: Area,
    ring: Area,
    stamps: Area,
    counts: Area,
}

/// Process-local handle on the replication's areas; cheap to clone (the
/// flood defence holds one to push its changes).
#[derive(Clone)]
pub struct Cluster {
    store: Arc<Store>,
    head: usize,
    ring: usize,
    stamps: usize,
    counts: usize,
}

impl Cluster {
    pub fn plan(plan: &mut Plan) -> ClusterPlan {
        ClusterPlan {
            head: plan.array::<Head>(*b"CLHD", 1),
            ring: plan.array::<Record>(*b"CLRG", QUEUE_CAPACITY),
            stamps: plan.array::<Stamp>(*b"CLST", STAMPS),
            counts: plan.array::<CountSlot>(*b"CLCN", COUNT_SLOTS),
        }
    }

    pub fn attach(store: &Arc<Store>, p: ClusterPlan) -> Cluster {
        Cluster {
            store: store.clone(),
            head: p.head.offset,
            ring: p.ring.offset,
            stamps: p.stamps.offset,
            counts: p.counts.offset,
        }
    }

    /// A cluster state in a mapping of its own (tests).
    pub fn create() -> Result<Cluster, String> {
        Store::alone(Cluster::plan, Cluster::attach)
    }

    pub fn head(&self) -> &Head {
        self.store.at(self.head, 0)
    }

    fn record(&self, seq: u64) -> &Record {
        self.store.at(self.ring, (seq % QUEUE_CAPACITY as u64) as usize)
    }

    fn stamp_of(&self, subject: &[u64; 3]) -> &Stamp {
        self.store.at(self.stamps, (mix(subject) >> 40) as usize % STAMPS)
    }

    /// A change made on this node: remember it as the latest for its key
    /// and queue it for the peers. False when the ring was full (dropped,
    /// counted) or its lock could not be had in time.
    pub fn push(&self, c: &Change) -> bool {
        let h = self.head();
        let Some(_guard) = lock(&h.lock) else {
            h.dropped.fetch_add(1, Relaxed);
            return false;
        };
        self.set_stamp(c);
        let (w, r) = (h.write.load(Relaxed), h.read.load(Relaxed));
        if w.wrapping_sub(r) >= QUEUE_CAPACITY as u64 {
            h.dropped.fetch_add(1, Relaxed);
            return false;
        }
        c.store(&self.record(w).0);
        h.write.store(w + 1, Relaxed);
        h.queued.fetch_add(1, Relaxed);
        true
    }

    fn set_stamp(&self, c: &Change) {
        let subject = c.subject();
        let s = self.stamp_of(&subject);
        for (w, v) in s.subject.iter().zip(subject) {
            w.store(v, Relaxed);
        }
        s.ts_us.store(c.ts_us, Relaxed);
    }

    /// Up to `max` queued changes, oldest first, taken off the ring.
    pub fn drain(&self, max: usize, out: &mut Vec<Change>) {
        let h = self.head();
        let Some(_guard) = lock(&h.lock) else {
            return;
        };
        let (w, mut r) = (h.write.load(Relaxed), h.read.load(Relaxed));
        while r < w && out.len() < max {
            if let Some(c) = Change::load(&self.record(r).0) {
                out.push(c);
            }
            r += 1;
        }
        h.read.store(r, Relaxed);
    }

    /// Changes waiting in the ring.
    pub fn depth(&self) -> u64 {
        let h = self.head();
        h.write.load(Relaxed).saturating_sub(h.read.load(Relaxed))
    }

    /// Whether a received change is newer than the latest known for its key;
    /// if so it becomes the latest. Equal times: the same change again (not
    /// applied twice; a lifting applied twice is a no-op), or a ban and an
    /// unban made in the same µs (the unban wins, on every node alike).
    pub fn admit(&self, c: &Change) -> bool {
        let h = self.head();
        let Some(_guard) = lock(&h.lock) else {
            return false;
        };
        let subject = c.subject();
        let s = self.stamp_of(&subject);
        let known = s.subject.iter().zip(subject).all(|(w, v)| w.load(Relaxed) == v);
        let ts = s.ts_us.load(Relaxed);
        if known && ts != 0 && (c.ts_us < ts || (c.ts_us == ts && c.kind.starts())) {
            return false;
        }
        self.set_stamp(c);
        true
    }

    /// Latest change time known for a key (0 when none): what a snapshot
    /// entry carries, so a receiver that knows better keeps its own.
    pub fn stamp(&self, c: &Change) -> u64 {
        let subject = c.subject();
        let s = self.stamp_of(&subject);
        let known = s.subject.iter().zip(subject).all(|(w, v)| w.load(Relaxed) == v);
        if known {
            s.ts_us.load(Relaxed)
        } else {
            0
        }
    }

    fn peer(&self, i: usize) -> &PeerSlot {
        &self.head().peers[i]
    }

    /// A trusted message came from `addr`: remember the peer (its traffic
    /// is exempt from every check from now on). Its slot, None when every
    /// slot is taken.
    pub fn peer_seen(&self, addr: u128, now_ms: u64) -> Option<usize> {
        let halves = [(addr >> 64) as u64, addr as u64];
        let find = || {
            (0..MAX_PEERS).find(|&i| {
                let p = self.peer(i);
                p.last_in_ms.load(Relaxed) != 0
                    && p.addr[0].load(Relaxed) == halves[0]
                    && p.addr[1].load(Relaxed) == halves[1]
            })
        };
        if let Some(i) = find() {
            let p = self.peer(i);
            p.last_in_ms.store(now_ms.max(1), Relaxed);
            p.msgs_in.fetch_add(1, Relaxed);
            return Some(i);
        }
        let h = self.head();
        let _guard = lock(&h.lock)?;
        // Re-checked under the lock: two processes may add the same peer.
        if let Some(i) = find() {
            return Some(i);
        }
        let i = (0..MAX_PEERS).find(|&i| self.peer(i).last_in_ms.load(Relaxed) == 0)?;
        let p = self.peer(i);
        p.addr[0].store(halves[0], Relaxed);
        p.addr[1].store(halves[1], Relaxed);
        p.msgs_in.store(1, Relaxed);
        p.last_in_ms.store(now_ms.max(1), Relaxed);
        h.peers_known.fetch_add(1, Relaxed);
        Some(i)
    }

    fn count_slot(&self, subject: &[u64; 3], peer: usize) -> &CountSlot {
        let h = mix(&[subject[0], subject[1], subject[2], peer as u64]);
        self.store.at(self.counts, (h >> 40) as usize % COUNT_SLOTS)
    }

    /// Peer `peer`'s own count for a name (a [`Kind::Count`] change it
    /// sent), received at `now_ms`: the latest one replaces the earlier.
    pub fn set_count(&self, peer: usize, c: &Change, now_ms: u64) {
        let subject = c.subject();
        let s = self.count_slot(&subject, peer);
        // Several dmq workers may write one slot: the last write wins, and
        // a torn slot is at worst one count that a later message corrects.
        s.at_ms.store(0, Relaxed);
        for (w, v) in s.subject.iter().zip(subject) {
            w.store(v, Relaxed);
        }
        s.peer.store(peer as u64, Relaxed);
        s.value.store(c.offences as u64, Relaxed);
        s.at_ms.store(now_ms.max(1), Relaxed);
    }

    /// The peers' counts for the name of `c` (a [`Kind::Count`] change),
    /// those received within `max_age_ms` of `now_ms`: a peer that died
    /// stops counting once its last count ages out. Allocates nothing,
    /// takes no lock.
    pub fn remote_count(&self, c: &Change, now_ms: u64, max_age_ms: u64) -> u64 {
        let h = self.head();
        if h.peers_known.load(Relaxed) == 0 {
            return 0;
        }
        let subject = c.subject();
        (0..MAX_PEERS)
            .filter(|&i| self.peer(i).last_in_ms.load(Relaxed) != 0)
            .map(|i| {
                let s = self.count_slot(&subject, i);
                let at = s.at_ms.load(Relaxed);
                let mine = at != 0
                    && now_ms.saturating_sub(at) <= max_age_ms
                    && s.peer.load(Relaxed) == i as u64
                    && s.subject.iter().zip(subject).all(|(w, v)| w.load(Relaxed) == v);
                if mine {
                    s.value.load(Relaxed)
                } else {
                    0
                }
            })
            .sum()
    }

    /// Whether `addr` is a peer that sent trusted messages. One atomic load
    /// while none did.
    pub fn is_peer(&self, addr: u128) -> bool {
        if self.head().peers_known.load(Relaxed) == 0 {
            return false;
        }
        let halves = [(addr >> 64) as u64, addr as u64];
        (0..MAX_PEERS).any(|i| {
            let p = self.peer(i);
            p.last_in_ms.load(Relaxed) != 0
                && p.addr[0].load(Relaxed) == halves[0]
                && p.addr[1].load(Relaxed) == halves[1]
        })
    }

    pub fn peers(&self) -> Vec<PeerInfo> {
        (0..MAX_PEERS)
            .map(|i| self.peer(i))
            .filter(|p| p.last_in_ms.load(Relaxed) != 0)
            .map(|p| PeerInfo {
                addr: (p.addr[0].load(Relaxed) as u128) << 64 | p.addr[1].load(Relaxed) as u128,
                last_in_ms: p.last_in_ms.load(Relaxed),
                msgs_in: p.msgs_in.load(Relaxed),
            })
            .collect()
    }

    /// A received change was `lag_us` old when it arrived.
    pub fn note_lag(&self, lag_us: u64) {
        let h = self.head();
        h.lag_last_us.store(lag_us, Relaxed);
        h.lag_max_us.fetch_max(lag_us, Relaxed);
    }
}

#[cfg(test)]
mod tests;
