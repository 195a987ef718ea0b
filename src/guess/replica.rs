//! The guessing defences' side of cluster replication ([`crate::cluster`]):
//! a user-name throttle started here, or lifted by RPC, is queued for the
//! peers (through the cluster handle the flood defence holds); a peer's is
//! applied here and never queued again. The throttle travels with its end
//! as wall time, so it ends on every node at once without a message.
//! A user name's authentication failures are counted across the cluster:
//! each node sends its own count, and compares its own plus its peers'
//! fresh counts with `user_maxretry`.

use super::{secs, Defences, UserEntry, USER_ANNOUNCED, USER_NAME_BYTES};
use crate::cluster::{wall_us, Change, Kind};
use crate::shm::keyed::{load_name_into, store_name};
use crate::util::clock::NS_PER_MS;
use crate::util::log::{log, Level};
use std::sync::atomic::Ordering::Relaxed;

/// Which count a [`Kind::Count`] change carries: a user name's
/// authentication failures within `user_findtime`.
pub const COUNT_USER_FAILURES: u32 = 1;

impl Defences<'_> {
    /// This node's `n` failures for the user name of `u` (bucket locked):
    /// queued for the peers, and returned with the peers' counts received
    /// within `user_findtime` added (a dead peer's age out).
    pub(super) fn cluster_failures(&self, u: &UserEntry, n: u32) -> u32 {
        let Some(c) = &self.flood.cluster else {
            return n;
        };
        let mut name = [0u8; USER_NAME_BYTES];
        let len = load_name_into(&u.name, &u.name_len, &mut name);
        let ts_us = wall_us();
        let count = Change {
            reason: COUNT_USER_FAILURES,
            offences: n,
            ts_us,
            ..Change::of_name(Kind::Count, &name[..len])
        };
        c.push(&count);
        let max_age_ms = self.guess.cfg.user_findtime_ns / NS_PER_MS;
        let remote = c.remote_count(&count, ts_us / 1000, max_age_ms);
        n.saturating_add(remote.min(u32::MAX as u64) as u32)
    }

    /// A throttle of `name` started here, for `secs_left` seconds.
    pub(super) fn replicate_throttle(&self, name: &[u8], secs_left: u32, failures: u32) {
        if let Some(c) = &self.flood.cluster {
            let ts_us = wall_us();
            c.push(&Change {
                until_ms: ts_us / 1000 + secs_left as u64 * 1000,
                offences: failures,
                ts_us,
                ..Change::of_name(Kind::Throttle, name)
            });
        }
    }

    /// A throttle of `name` lifted here by RPC.
    pub(super) fn replicate_unthrottle(&self, name: &[u8]) {
        if let Some(c) = &self.flood.cluster {
            c.push(&Change {
                ts_us: wall_us(),
                ..Change::of_name(Kind::Unthrottle, name)
            });
        }
    }

    /// Apply a peer's throttle or unthrottle (judged newer already). A
    /// throttle that ended meanwhile changes nothing.
    pub fn apply_throttle(&self, c: &Change, now: u64) -> bool {
        let g = self.guess;
        let name = c.name();
        match c.kind {
            Kind::Throttle => {
                let left_ms = c.until_ms.saturating_sub(wall_us() / 1000);
                if left_ms == 0 {
                    return false;
                }
                let until = secs(now).saturating_add(left_ms.div_ceil(1000).min(u32::MAX as u64) as u32);
                let set = g.users.with(g.users.name_key(name), now, true, |u, new| {
                    if new {
                        store_name(&u.name, &u.name_len, name);
                    }
                    u.throttled_until.store(until, Relaxed);
                    u.flags.fetch_or(USER_ANNOUNCED, Relaxed);
                });
                if set.is_ok() {
                    log(
                        Level::Notice,
                        format_args!(
                            "sipguard: THROTTLE user={} failures={} duration={} (cluster)",
                            String::from_utf8_lossy(name).escape_debug(),
                            c.offences,
                            left_ms.div_ceil(1000)
                        ),
                    );
                }
                set.is_ok()
            }
            Kind::Unthrottle => {
                self.lift_throttle(name, now);
                true
            }
            _ => false,
        }
    }

    /// Every throttle in force, as changes stamped by `stamp` (else 1),
    /// for a joining peer.
    pub fn throttle_changes(&self, now: u64, stamp: impl Fn(&Change) -> u64) -> Vec<Change> {
        let wall_now_ms = wall_us() / 1000;
        self.guess_users(now, usize::MAX)
            .into_iter()
            .filter(|u| u.throttled_s > 0)
            .map(|u| {
                let mut c = Change {
                    until_ms: wall_now_ms + u.throttled_s as u64 * 1000,
                    offences: u.failures,
                    ..Change::of_name(Kind::Throttle, &u.name)
                };
                c.ts_us = stamp(&c).max(1);
                c
            })
            .collect()
    }
}
