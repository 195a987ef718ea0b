//! Toll fraud's side of cluster replication ([`crate::cluster`]): an
//! account suspended here (a threshold crossed, or RPC) or lifted by RPC is
//! queued for the peers; a peer's is applied here and never queued again.
//! An applied suspension refuses the account's calls here too, and its
//! event route runs here once, as for a suspension of this node's own.
//! An account's concurrent calls are counted across the cluster: each node
//! sends its own count when a call starts and every second while calls are
//! up; a call is admitted while this node's calls plus the peers' fresh
//! counts are under the limit.

use super::accounts::{Crossing, Reason};
use super::{Fraud, Printable};
use crate::cluster::{wall_us, Change, Kind};
use crate::util::log::{log, Level};
use std::sync::atomic::Ordering::Relaxed;

/// Which count a [`Kind::Count`] change carries: an account's calls up.
pub const COUNT_ACCOUNT_CALLS: u32 = 2;

/// A peer's count of calls up stops counting this long after it was sent
/// (it is sent again every second while calls are up).
const CALLS_MAX_AGE_MS: u64 = 3000;

impl Fraud {
    fn calls_count(name: &[u8], active: u32) -> Change {
        Change {
            reason: COUNT_ACCOUNT_CALLS,
            offences: active,
            ts_us: wall_us(),
            ..Change::of_name(Kind::Count, name)
        }
    }

    /// The peers' fresh counts of `account`'s calls up (0 alone).
    pub(super) fn remote_calls(&self, account: &[u8]) -> u32 {
        self.cluster.as_ref().map_or(0, |c| {
            let q = Self::calls_count(account, 0);
            c.remote_count(&q, q.ts_us / 1000, CALLS_MAX_AGE_MS)
                .min(u32::MAX as u64) as u32
        })
    }

    /// This node has `active` calls of `account` up: tell the peers.
    pub(super) fn replicate_calls(&self, account: &[u8], active: u32) {
        if let Some(c) = &self.cluster {
            c.push(&Self::calls_count(account, active));
        }
    }

    /// Once a second: the counts of accounts with calls up, again, so they
    /// stay fresh at the peers (an account whose calls ended stops being
    /// sent, and its count ages out there).
    pub(super) fn refresh_calls(&self, now: u64) {
        if self.cluster.is_none() {
            return;
        }
        let mut up = Vec::new();
        self.list(now, |a| {
            if a.active > 0 {
                up.push((a.name, a.active));
            }
            true
        });
        for (name, active) in up {
            self.replicate_calls(&name, active);
        }
    }

    pub(super) fn replicate_suspend(&self, name: &[u8], reason: Reason) {
        if let Some(c) = &self.cluster {
            let ts_us = wall_us();
            c.push(&Change {
                reason: reason as u32,
                until_ms: ts_us / 1000,
                ts_us,
                ..Change::of_name(Kind::Suspend, name)
            });
        }
    }

    pub(super) fn replicate_unsuspend(&self, name: &[u8]) {
        if let Some(c) = &self.cluster {
            c.push(&Change {
                ts_us: wall_us(),
                ..Change::of_name(Kind::Unsuspend, name)
            });
        }
    }

    /// Apply a peer's suspension or its lifting (judged newer already).
    pub fn apply_suspension(&self, c: &Change, now: u64) -> bool {
        let name = c.name();
        match c.kind {
            Kind::Suspend => {
                let reason = Reason::from_u32(c.reason).unwrap_or(Reason::Rpc);
                let done = self.accounts.suspend(name, reason, now, c.until_ms);
                if matches!(done, Ok(true)) {
                    let c = Crossing {
                        reason,
                        value: 0,
                        threshold: 0,
                    };
                    self.suspended(Printable(name), &c);
                }
                done.is_ok()
            }
            Kind::Unsuspend => {
                if self.accounts.unsuspend(name, now).is_ok() {
                    self.counters().changes.fetch_add(1, Relaxed);
                    log(
                        Level::Warn,
                        format_args!(
                            "sipguard: UNSUSPEND account={} reason=rpc (cluster)",
                            Printable(name)
                        ),
                    );
                }
                true
            }
            _ => false,
        }
    }

    /// Every suspension in force, as changes stamped by `stamp` (else 1),
    /// for a joining peer.
    pub fn suspension_changes(&self, now: u64, stamp: impl Fn(&Change) -> u64) -> Vec<Change> {
        let mut out = Vec::new();
        self.list(now, |a| {
            if let Some(reason) = a.suspended {
                let mut c = Change {
                    reason: reason as u32,
                    until_ms: a.since_wall_ms,
                    ..Change::of_name(Kind::Suspend, &a.name)
                };
                c.ts_us = stamp(&c).max(1);
                out.push(c);
            }
            true
        });
        out
    }
}
