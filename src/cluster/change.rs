//! One replicated change: what a node tells its peers when a ban, a
//! user-name throttle or an account suspension starts or is lifted. Fixed in size, so the outgoing queue ([`super::Cluster`]) is a
//! ring of records in the mapping; its wire form is in [`super::wire`].

use crate::sip::addr::Key;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `until_ms` of a permanent ban.
pub const PERMANENT_MS: u64 = u64::MAX;

/// Words of one record in the outgoing ring.
pub const RECORD_WORDS: usize = 16;

/// Longest name (user name or account) a change carries.
pub const NAME_MAX: usize = 64;

/// What changed. The values are the record's; never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Ban = 1,
    Unban = 2,
    /// A user name throttled (too many authentication failures).
    Throttle = 3,
    Unthrottle = 4,
    /// An account suspended (toll fraud).
    Suspend = 5,
    Unsuspend = 6,
    /// A node's own count for a name (`reason`: which count, `offences`:
    /// the value): its peers add it to theirs while it is fresh.
    Count = 7,
}

impl Kind {
    fn from_code(c: u8) -> Option<Kind> {
        [
            Kind::Ban,
            Kind::Unban,
            Kind::Throttle,
            Kind::Unthrottle,
            Kind::Suspend,
            Kind::Unsuspend,
            Kind::Count,
        ]
        .into_iter()
        .find(|k| *k as u8 == c)
    }

    /// A ban, a throttle or a suspension (not the lifting of one).
    pub fn starts(self) -> bool {
        matches!(self, Kind::Ban | Kind::Throttle | Kind::Suspend)
    }

    /// A change of a name (user or account), not of an address.
    pub fn named(self) -> bool {
        !matches!(self, Kind::Ban | Kind::Unban)
    }
}

/// A ban or an unban of a source address (or of a network, `prefix`), or
/// a change of a name (`name[..name_len]`; `key` unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub key: Key,
    pub name: [u8; NAME_MAX],
    pub name_len: u8,
    /// A network of the prefix table, not a source.
    pub prefix: bool,
    /// End of a ban or throttle as wall time (ms since the epoch), or
    /// [`PERMANENT_MS`]; start of a suspension.
    pub until_ms: u64,
    /// Offence count of a ban, failures of a throttle.
    pub offences: u32,
    /// `flood::ban::Reason` code of a ban, `fraud` reason of a suspension.
    pub reason: u32,
    /// When the change was made, wall time in µs: the latest one wins.
    pub ts_us: u64,
}

impl Change {
    /// A change of an address key (a ban or an unban).
    pub fn of_key(kind: Kind, key: Key, prefix: bool) -> Change {
        Change {
            kind,
            key,
            name: [0; NAME_MAX],
            name_len: 0,
            prefix,
            until_ms: 0,
            offences: 0,
            reason: 0,
            ts_us: 0,
        }
    }

    /// A change of a name (cut to [`NAME_MAX`] bytes).
    pub fn of_name(kind: Kind, name: &[u8]) -> Change {
        let mut c = Change::of_key(kind, Key { bits: 0, prefix: 0 }, false);
        let n = name.len().min(NAME_MAX);
        c.name[..n].copy_from_slice(&name[..n]);
        c.name_len = n as u8;
        c
    }

    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len as usize]
    }

    /// Which entry of the who-wins table the change speaks of: its key, or
    /// its name and kind family (throttles and suspensions apart).
    pub fn subject(&self) -> [u64; 3] {
        if !self.kind.named() {
            let h = self.key.halves();
            return [h[0], h[1], self.key.prefix as u64 | (self.prefix as u64) << 8];
        }
        let family = match self.kind {
            Kind::Throttle | Kind::Unthrottle => 2u64,
            Kind::Count => 16 + self.reason as u64,
            _ => 3,
        };
        let (mut a, mut b) = (0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4u64);
        for &x in self.name() {
            a = (a ^ x as u64).wrapping_mul(0x100_0000_01b3);
            b = (b ^ x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7);
        }
        [a, b, self.name_len as u64 | family << 16 | 1 << 24]
    }

    pub(super) fn store(&self, rec: &[AtomicU64; RECORD_WORDS]) {
        let h = self.key.halves();
        let head = self.kind as u64
            | (self.prefix as u64) << 8
            | (self.key.prefix as u64) << 16
            | (self.name_len as u64) << 24;
        let mut words = [0u64; RECORD_WORDS];
        words[..6].copy_from_slice(&[
            h[0],
            h[1],
            self.until_ms,
            self.offences as u64 | (self.reason as u64) << 32,
            self.ts_us,
            head,
        ]);
        for (w, chunk) in words[6..].iter_mut().zip(self.name.chunks(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_le_bytes(b);
        }
        for (w, v) in rec.iter().zip(words) {
            w.store(v, Relaxed);
        }
    }

    /// None for a record a killed writer left half-made.
    pub(super) fn load(rec: &[AtomicU64; RECORD_WORDS]) -> Option<Change> {
        let w: [u64; RECORD_WORDS] = std::array::from_fn(|i| rec[i].load(Relaxed));
        let head = w[5];
        let kind = Kind::from_code(head as u8)?;
        let len = (head >> 16) as u8;
        let name_len = (head >> 24) as u8;
        if len > 128 || name_len as usize > NAME_MAX {
            return None;
        }
        let mut name = [0u8; NAME_MAX];
        for (chunk, v) in name.chunks_mut(8).zip(&w[6..]) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        Some(Change {
            kind,
            key: Key {
                bits: (w[0] as u128) << 64 | w[1] as u128,
                prefix: len,
            },
            name,
            name_len,
            prefix: (head >> 8) & 1 == 1,
            until_ms: w[2],
            offences: w[3] as u32,
            reason: (w[3] >> 32) as u32,
            ts_us: w[4],
        })
    }
}

/// Wall time in µs since the epoch (a vDSO read).
pub fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
