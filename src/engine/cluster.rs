//! Cluster replication composed with the capabilities: the changes this
//! node queued leave as message bodies ([`Engine::cluster_outgoing`]); a
//! body from a peer is judged and applied to the capability it speaks of
//! (bans: flood, throttles: guess, suspensions: fraud)
//! ([`Engine::cluster_receive`]); a joining peer gets the current bans,
//! throttles and suspensions ([`Engine::cluster_snapshot`]).
//! The host (the Kamailio shim) carries the bodies over DMQ and says
//! whether a message came from a cluster node: one that did not changes
//! nothing.

use super::Engine;
use crate::cluster::wire::{self, Message, MAX_BODY};
use crate::cluster::{wall_us, Change, Kind};
use crate::fraud::Fraud;
use crate::util::log::{log, Level};
use std::sync::atomic::Ordering::Relaxed;

/// Most changes one drain of the queue sends (a few bodies); the host
/// drains at most every 100 ms, so at most ~20 000 changes a second leave,
/// in at most ~40 messages; the rest wait in the queue (or are dropped when
/// it is full).
pub const CHANGES_PER_DRAIN: usize = 2000;

/// What a received message was and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub message: Message,
    pub changes: usize,
    pub applied: usize,
}

/// Why a received message changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Clustering is off on this node.
    Off,
    /// Not from a cluster node.
    Untrusted,
    /// Not a body of ours (the reason).
    Bad(String),
}

impl Engine {
    /// Bodies of the changes queued since the last drain (at most
    /// [`CHANGES_PER_DRAIN`] of them), counted as sent.
    pub fn cluster_outgoing(&self) -> Vec<String> {
        let Some(c) = &self.cluster else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        c.drain(CHANGES_PER_DRAIN, &mut changes);
        let bodies = wire::encode(&changes, false, MAX_BODY);
        let h = c.head();
        if !bodies.is_empty() {
            h.msgs_out.fetch_add(bodies.len() as u64, Relaxed);
            h.changes_out.fetch_add(changes.len() as u64, Relaxed);
            h.last_out_ms.store(wall_us() / 1000, Relaxed);
        }
        bodies
    }

    /// A body from `src` (address bits); `trusted`: the host found `src`
    /// among the cluster's nodes. An untrusted or foreign body is counted
    /// and changes nothing. Each change is applied if it is newer than
    /// what this node knows of its key (so twice is once, and a late ban
    /// does not undo a later unban), without being queued again.
    /// Suspensions need the toll-fraud handle (`fraud`; without it they
    /// are not applied).
    pub fn cluster_receive(
        &self,
        src: u128,
        trusted: bool,
        body: &[u8],
        now: u64,
        fraud: Option<&Fraud>,
    ) -> Result<Received, Refused> {
        let c = self.cluster.as_ref().ok_or(Refused::Off)?;
        let h = c.head();
        if !trusted {
            h.refused.fetch_add(1, Relaxed);
            return Err(Refused::Untrusted);
        }
        let (message, changes) = wire::decode(body).map_err(|e| {
            h.refused.fetch_add(1, Relaxed);
            Refused::Bad(e)
        })?;
        let now_us = wall_us();
        let peer = c.peer_seen(src, now_us / 1000);
        h.msgs_in.fetch_add(1, Relaxed);
        h.changes_in.fetch_add(changes.len() as u64, Relaxed);
        h.last_in_ms.store(now_us / 1000, Relaxed);
        let mut applied = 0;
        for ch in &changes {
            if matches!(message, Message::Changes) {
                c.note_lag(now_us.saturating_sub(ch.ts_us));
            }
            if ch.kind == Kind::Count {
                // The peer's own count: kept beside the others', not ordered.
                if let Some(p) = peer {
                    c.set_count(p, ch, now_us / 1000);
                    applied += 1;
                }
            } else if c.admit(ch) && self.apply(ch, now, fraud) {
                applied += 1;
            }
        }
        h.applied.fetch_add(applied as u64, Relaxed);
        if let Message::Snapshot { last: true, .. } = message {
            h.syncs_received.fetch_add(1, Relaxed);
            h.synced.store(1, Relaxed);
        }
        Ok(Received {
            message,
            changes: changes.len(),
            applied,
        })
    }

    fn apply(&self, ch: &Change, now: u64, fraud: Option<&Fraud>) -> bool {
        match ch.kind {
            Kind::Ban | Kind::Unban => match self.flood.apply_change(ch, now) {
                Ok(()) => true,
                Err(e) => {
                    log(
                        Level::Debug,
                        format_args!("sipguard: cluster change for {} not applied: {e:?}", ch.key),
                    );
                    false
                }
            },
            Kind::Throttle | Kind::Unthrottle => self.defences().apply_throttle(ch, now),
            Kind::Suspend | Kind::Unsuspend => fraud.is_some_and(|f| f.apply_suspension(ch, now)),
            Kind::Count => false,
        }
    }

    /// The body that asks the peers for their current state.
    pub fn cluster_sync_request(&self) -> String {
        wire::sync_request()
    }

    /// The current bans, throttles and suspensions (those of `fraud`) as
    /// snapshot chunks (each under the size limit) for a peer that asked;
    /// counted as a sync served.
    pub fn cluster_snapshot(&self, now: u64, fraud: Option<&Fraud>) -> Vec<String> {
        let Some(c) = &self.cluster else {
            return Vec::new();
        };
        let mut bans = self.flood.live_bans(now, |ch| c.stamp(ch));
        bans.extend(self.defences().throttle_changes(now, |ch| c.stamp(ch)));
        if let Some(f) = fraud {
            bans.extend(f.suspension_changes(now, |ch| c.stamp(ch)));
        }
        c.head().syncs_served.fetch_add(1, Relaxed);
        wire::encode(&bans, true, MAX_BODY)
    }
}
