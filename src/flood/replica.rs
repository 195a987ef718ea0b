//! The flood defence's side of cluster replication ([`crate::cluster`]): a
//! ban or an RPC unban made on this node is queued for the peers; a peer's
//! change is applied here and never queued again (no loops). Bans travel
//! with their end as wall time and their offence count, and expire on
//! every node by themselves (an expiry needs no message).

use crate::cluster::{wall_us, Change, Kind, PERMANENT_MS};
use crate::flood::ban::{BanEvent, Reason};
use crate::flood::region::Flood;
use crate::flood::state::{mono_to_wall_ms, wall_to_mono};
use crate::flood::table::{Restored, TableError, PERMANENT};
use crate::sip::addr::Key;
use crate::util::clock::{wall_ms, NS_PER_MS};

impl Flood {
    /// Whether `bits` is a cluster peer's address (exempt like the allowlist).
    pub(crate) fn is_cluster_peer(&self, bits: u128) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.is_peer(bits))
    }

    /// Whether a ban's key is a network of the prefix table.
    fn is_prefix_key(&self, key: &Key) -> bool {
        self.is_network_key(key) && key.prefix < Key::from_address_bits(key.bits, self.cfg.ipv6_prefix).prefix
    }

    /// A ban made on this node (not one restored from the state file or
    /// received from a peer): queue it for the peers.
    pub(super) fn replicate_ban(&self, ban: &BanEvent) {
        let Some(c) = &self.cluster else {
            return;
        };
        if ban.reason == Reason::Restored {
            return;
        }
        let ts_us = wall_us();
        let until_ms = match ban.duration_ns {
            PERMANENT => PERMANENT_MS,
            d => ts_us / 1000 + d.div_ceil(NS_PER_MS),
        };
        c.push(&Change {
            until_ms,
            offences: ban.offences,
            reason: ban.reason as u32,
            ts_us,
            ..Change::of_key(Kind::Ban, ban.key, self.is_prefix_key(&ban.key))
        });
    }

    /// An unban asked of this node (RPC): queue it for the peers.
    pub(super) fn replicate_unban(&self, key: Key, prefix: bool) {
        if let Some(c) = &self.cluster {
            c.push(&Change {
                ts_us: wall_us(),
                ..Change::of_key(Kind::Unban, key, prefix)
            });
        }
    }

    /// Apply a peer's change, already judged newer than what this node knew
    /// ([`crate::cluster::Cluster::admit`]). A ban that ended meanwhile is
    /// kept as offence history only (never resurrected); an unban of a
    /// source not banned here is Ok.
    pub fn apply_change(&self, c: &Change, now: u64) -> Result<(), TableError> {
        if c.prefix != self.is_prefix_key(&c.key) {
            // Not a key of this node's tables (prefix lengths differ).
            return Err(TableError::BadAddress);
        }
        if !c.prefix && self.allowlisted(c.key.bits) {
            return Err(TableError::Allowlisted);
        }
        match c.kind {
            Kind::Ban => {
                let until = match c.until_ms {
                    PERMANENT_MS => PERMANENT,
                    ms => wall_to_mono(ms, now, wall_ms()).ok_or(TableError::BadAddress)?,
                };
                let reason = Reason::from_code(c.reason).unwrap_or(Reason::Flood);
                self.restore(c.key, c.prefix, until, c.offences, reason, now)
                    .map(|_: Restored| ())
            }
            Kind::Unban => match self.unban_key(c.key, c.prefix, now) {
                Err(TableError::NotFound) => Ok(()),
                other => other,
            },
            _ => Err(TableError::BadAddress),
        }
    }

    /// Every ban in force, as changes stamped with `stamp` (the time of
    /// the latest change this node knows of for the key, else 1: older
    /// than any change), for a joining peer.
    pub fn live_bans(&self, now: u64, stamp: impl Fn(&Change) -> u64) -> Vec<Change> {
        let wall_now = wall_ms();
        let mut out = Vec::new();
        self.for_each_entry(now, |e| {
            if e.banned {
                let mut c = Change {
                    until_ms: match e.ban_until {
                        PERMANENT => PERMANENT_MS,
                        u => mono_to_wall_ms(u, now, wall_now),
                    },
                    offences: e.offences,
                    reason: e.reason.unwrap_or(Reason::Flood) as u32,
                    ..Change::of_key(Kind::Ban, e.key, e.prefix)
                };
                c.ts_us = stamp(&c).max(1);
                out.push(c);
            }
            true
        });
        out
    }
}
