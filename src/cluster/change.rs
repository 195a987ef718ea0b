//! One replicated change: what a node tells its peers when a ban starts or
//! is lifted. Fixed in size, so the outgoing queue ([`super::Cluster`]) is a
//! ring of records in the mapping; its wire form is in [`super::wire`].

use crate::sip::addr::Key;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `until_ms` of a permanent ban.
pub const PERMANENT_MS: u64 = u64::MAX;

/// Words of one record in the outgoing ring.
pub const RECORD_WORDS: usize = 8;

/// What changed. The values are the record's; never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Ban = 1,
    Unban = 2,
}

impl Kind {
    fn from_code(c: u8) -> Option<Kind> {
        match c {
            1 => Some(Kind::Ban),
            2 => Some(Kind::Unban),
            _ => None,
        }
    }
}

/// A ban or an unban of a source address (or of a network, `prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub key: Key,
    /// A network of the prefix table, not a source.
    pub prefix: bool,
    /// End of a ban as wall time (ms since the epoch), or [`PERMANENT_MS`].
    pub until_ms: u64,
    /// Offence count of a ban.
    pub offences: u32,
    /// `flood::ban::Reason` code of a ban.
    pub reason: u32,
    /// When the change was made, wall time in µs: the latest one wins.
    pub ts_us: u64,
}

impl Change {
    /// Which entry of the who-wins table the change speaks of.
    pub fn subject(&self) -> [u64; 3] {
        let h = self.key.halves();
        [h[0], h[1], self.key.prefix as u64 | (self.prefix as u64) << 8]
    }

    pub(super) fn store(&self, rec: &[AtomicU64; RECORD_WORDS]) {
        let h = self.key.halves();
        let head = self.kind as u64 | (self.prefix as u64) << 8 | (self.key.prefix as u64) << 16;
        let words = [
            head,
            h[0],
            h[1],
            self.until_ms,
            self.offences as u64 | (self.reason as u64) << 32,
            self.ts_us,
            0,
            0,
        ];
        for (w, v) in rec.iter().zip(words) {
            w.store(v, Relaxed);
        }
    }

    /// None for a record a killed writer left half-made.
    pub(super) fn load(rec: &[AtomicU64; RECORD_WORDS]) -> Option<Change> {
        let w: [u64; RECORD_WORDS] = std::array::from_fn(|i| rec[i].load(Relaxed));
        let kind = Kind::from_code(w[0] as u8)?;
        let len = (w[0] >> 16) as u8;
        if len > 128 {
            return None;
        }
        Some(Change {
            kind,
            key: Key {
                bits: (w[1] as u128) << 64 | w[2] as u128,
                prefix: len,
            },
            prefix: (w[0] >> 8) & 1 == 1,
            until_ms: w[3],
            offences: w[4] as u32,
            reason: (w[4] >> 32) as u32,
            ts_us: w[5],
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
