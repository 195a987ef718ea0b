//! Toll fraud's side of cluster replication ([`crate::cluster`]): an
//! account suspended here (a threshold crossed, or RPC) or lifted by RPC is
//! queued for the peers; a peer's is applied here and never queued again.
//! An applied suspension refuses the account's calls here too, and its
//! event route runs here once, as for a suspension of this node's own.
//! An account's concurrent calls are counted across the cluster: each node
//! sends its own count when a call starts and every second while calls are
//! up; a call is admitted while this node's calls plus the peers' fresh
//! counts are under the limit. Attempts per minute and spend per hour are
//! sent every second (when not zero) and added to this node's before its
//! thresholds are compared: a burst split across nodes crosses them.

use super::accounts::{Account, Accounts, Crossing, Reason, Usage};
use super::money::Money;
use super::{Fraud, Printable};
use crate::cluster::{wall_us, Change, Kind};
use crate::util::log::{log, Level};
use std::sync::atomic::Ordering::Relaxed;

/// Which count a [`Kind::Count`] change carries: an account's calls up.
pub const COUNT_ACCOUNT_CALLS: u32 = 2;

/// Which count: an account's call attempts in the sliding minute, and its
/// spend in the sliding hour (ten-thousandths, saturating at u32).
pub const COUNT_ACCOUNT_CPM: u32 = 3;
pub const COUNT_ACCOUNT_SPEND: u32 = 4;

/// A peer's count of calls up (or usage) stops counting this long after it
/// was sent (it is sent again every second while not zero).
const CALLS_MAX_AGE_MS: u64 = 3000;

fn count_of(which: u32, name: &[u8], value: u64) -> Change {
    Change {
        reason: which,
        offences: value.min(u32::MAX as u64) as u32,
        ts_us: wall_us(),
        ..Change::of_name(Kind::Count, name)
    }
}

impl Accounts {
    /// The usage the peers count for `a`'s account (bucket locked; reads
    /// atomics only). Nothing without clustering.
    pub(super) fn remote_usage(&self, a: &Account) -> Usage {
        let Some(c) = &self.cluster else {
            return Usage::default();
        };
        let name = a.name_copy();
        let remote = |which| {
            let q = count_of(which, name.as_bytes(), 0);
            c.remote_count(&q, q.ts_us / 1000, CALLS_MAX_AGE_MS)
        };
        Usage {
            cpm: remote(COUNT_ACCOUNT_CPM),
            spend: Money(remote(COUNT_ACCOUNT_SPEND)),
        }
    }
}

impl Fraud {
    /// Cluster replication on (or off): this handle and its account table.
    pub fn set_cluster(&mut self, c: Option<crate::cluster::Cluster>) {
        self.accounts.cluster = c.clone();
        self.cluster = c;
    }

    fn calls_count(name: &[u8], active: u32) -> Change {
        count_of(COUNT_ACCOUNT_CALLS, name, active as u64)
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

    /// Once a second: this node's counts of each account's calls up,
    /// attempts per minute and spend per hour, those not zero, so they stay
    /// fresh at the peers (a count that fell to zero stops being sent and
    /// ages out there).
    pub(super) fn refresh_usage(&self, now: u64) {
        let Some(c) = &self.cluster else {
            return;
        };
        let mut counts = Vec::new();
        self.list(now, |a| {
            for (which, v) in [
                (COUNT_ACCOUNT_CALLS, a.active as u64),
                (COUNT_ACCOUNT_CPM, a.usage.cpm),
                (COUNT_ACCOUNT_SPEND, a.usage.spend.0),
            ] {
                if v > 0 {
                    counts.push(count_of(which, &a.name, v));
                }
            }
            true
        });
        for ch in &counts {
            c.push(ch);
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
