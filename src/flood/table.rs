//! The source table's policy: the flood defence's operations over its two
//! tables, the source table and the prefix table, each the generic 8-way
//! table of [`crate::shm::keyed`] with [`Slot`] entries.
//!
//! A keyed hash of the source picks one bucket of 8 slots; one lock word per
//! bucket guards them. A new source takes an empty slot, else recycles the
//! least recently active slot that is not banned (sources with no offence
//! history go first, so escalation memory outlives idle traffic: [`Slot`]'s
//! `Entry` ranks). The hash seed is random per start, so an attacker cannot
//! aim sources at one bucket.
//!
//! # No exhaustion
//!
//! An attacker can make a ban with one packet per address (a scanner
//! User-Agent bans at once), so bans must not be able to crowd out rate
//! tracking, and the table must never refuse a ban. Two rules see to it:
//!
//! - **Bans take at most [`BAN_WAYS`] (6) of a bucket's 8 ways.** The other
//!   two always hold ordinary entries, so a new source is always tracked
//!   (it recycles the least recently active non-banned slot). A ban that
//!   would be the seventh in its bucket lifts the lowest-ranked live ban
//!   there first — non-permanent before permanent, automatic before
//!   manual, fewest offences, soonest end — logged `UNBAN … reason=evicted`.
//!   Its slot keeps the offence count, so if that source offends again it
//!   is caught within one burst and banned for longer. A new ban is always
//!   recorded; `sipguard.ban` never fails for lack of room.
//! - **Many first bans in one network ban the network** (`ban_prefix_v4`,
//!   default /24; `ban_prefix_v6`, default /48): `ban_prefix_threshold`
//!   first offences (bans of sources with no earlier offence; RPC bans do
//!   not count) within `ban_time` in one network start one prefix ban, with
//!   its own escalation. Then every address of the network is refused
//!   without an entry of its own: the 65 536 /64s of a /48 cost the table
//!   `threshold` bans, not 65 536. Prefix entries live in a separate, smaller
//!   table (one eighth of the buckets, same 8-way layout, the same cap on
//!   ban ways), touched only when a ban starts, so a flood of new sources
//!   cannot churn the counts away. The request path looks a prefix up only
//!   while a prefix ban may be in force (one atomic load of a horizon
//!   otherwise). The allowlist is checked first, so an allowlisted address
//!   is never covered by a prefix ban.
//!
//! The alternative, a separate table for all bans, would cost every request
//! a second lookup and still need a rule for when that table fills; with
//! ways reserved in the bucket a source is found in one lookup.
//!
//! Every operation locks one bucket for a few loads and stores, copies out
//! what must be logged, and logs only after unlocking. No operation holds
//! two bucket locks at once.

use crate::flood::ban::{BanEvent, Ended, Escalation, Reason, UnbanEvent};
use crate::flood::gcra::Gcra;
use crate::flood::region::Flood;
use crate::shm::counters::Counter;
use crate::shm::keyed::{Bucket, Cell, KeyedTable};
use crate::sip::addr::{address_bits, display_address, is_v4_mapped, Key};
use std::sync::atomic::{Ordering::Relaxed, Ordering::SeqCst};

/// Most ways of one bucket that live bans may hold; the rest always take
/// new sources.
pub const BAN_WAYS: usize = 6;

pub use crate::flood::ban::PERMANENT;
use crate::flood::slot::{cell_key, Shape, ANNOUNCED, REASON_SHIFT};
pub use crate::flood::slot::{Slot, SLOTS_PER_BUCKET};

/// Verdict values are the ABI's (`sipguard_verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Verdict {
    Pass = 1,
    Allowlisted = 2,
    Untracked = 3,
    Limited = -1,
    Banned = -2,
    /// A scanner fingerprint: banned now.
    Scanner = -3,
    /// Too many distinct user names: banned now.
    Enumeration = -4,
    /// The source is on the shared blocklist.
    Blocklisted = -5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckResult {
    pub verdict: Verdict,
    pub offences: u32,
    /// Remaining ban; PERMANENT for a permanent one; 0 when not banned.
    pub ban_ns: u64,
}

impl CheckResult {
    /// The verdict for a source on the blocklist (no ban, no offence).
    pub fn blocklisted() -> CheckResult {
        CheckResult::plain(Verdict::Blocklisted)
    }

    fn plain(verdict: Verdict) -> CheckResult {
        CheckResult {
            verdict,
            offences: 0,
            ban_ns: 0,
        }
    }
}

/// Errors of the table operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    BadAddress,
    Allowlisted,
    NotFound,
    Full,
    Busy,
}

/// What [`Flood::restore`] made of a saved entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// A ban in force.
    Ban,
    /// An ended ban, kept for its offence count.
    History,
    /// A ban in force that ranked below the bucket's other bans when every
    /// ban way was taken: kept as offence history only.
    Crowded,
}

/// What the list calls report about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    pub key: Key,
    /// An entry of the prefix table: `key` is a network.
    pub prefix: bool,
    pub banned: bool,
    pub reason: Option<Reason>,
    /// Remaining ban (PERMANENT for permanent), 0 when not banned.
    pub ban_ns: u64,
    pub ban_until: u64,
    pub offences: u32,
    pub load_pct: u32,
    pub hits: u64,
    pub idle_ns: u64,
}

fn remaining(until: u64, now: u64) -> u64 {
    if until == PERMANENT {
        PERMANENT
    } else {
        until.saturating_sub(now)
    }
}

/// A cell found or claimed for a key.
struct Claimed<'a> {
    cell: &'a Cell<Slot>,
    evicted: Option<UnbanEvent>,
}

/// An operation on one bucket of the source or prefix table, with its
/// lock held: the flood policy over the generic bucket.
struct Locked<'a> {
    bucket: Bucket<'a, Slot>,
    shape: Shape,
}

impl<'a> Locked<'a> {
    fn find(&self, key: [u64; 2]) -> Option<&'a Cell<Slot>> {
        self.bucket.find(key)
    }

    /// The slot for `key`, claiming one if needed; None only if all 8 are
    /// live bans (the ban cap keeps two ways free of bans). Recycling a slot
    /// whose ended ban the sweep has not reported yet returns that end, for
    /// the caller to log after unlocking.
    fn find_or_claim(&self, key: [u64; 2], now: u64, region: &Flood) -> Option<Claimed<'a>> {
        if let Some(cell) = self.find(key) {
            return Some(Claimed { cell, evicted: None });
        }
        // A free cell, else the least recently active one not banned
        // ([`Slot`]'s `Entry` ranks).
        let (victim, free) = self.bucket.victim(now)?;
        let evicted = (!free && victim.entry().unreported()).then(|| UnbanEvent {
            key: cell_key(victim, self.shape),
            why: Ended::Expired,
        });
        if self.shape.sources {
            region.counters().bump(if free {
                Counter::EntriesUsed
            } else {
                Counter::Evictions
            });
        }
        victim.claim(key, now);
        Some(Claimed {
            cell: victim,
            evicted,
        })
    }

    /// If `limit` or more slots other than `keep` hold live bans, lift the
    /// lowest-ranked of them and return its end (to log after unlocking).
    fn lift_lowest_ban(&self, keep: Option<&Cell<Slot>>, limit: usize, now: u64) -> Option<UnbanEvent> {
        let others = || {
            self.bucket
                .cells()
                .filter(move |c| c.entry().banned_at(now) && !keep.is_some_and(|k| std::ptr::eq(k, *c)))
        };
        if others().count() < limit {
            return None;
        }
        let victim = others().min_by_key(|c| c.entry().ban_rank())?;
        let key = cell_key(victim, self.shape);
        victim.entry().lift(now);
        Some(UnbanEvent {
            key,
            why: Ended::Evicted,
        })
    }

    /// The slot for a key about to be banned, and the ban lifted to free it
    /// if every way held a live ban (which the cap prevents, bar processes
    /// whose clocks were read a moment apart).
    fn claim_for_ban(
        &self,
        key: [u64; 2],
        now: u64,
        region: &Flood,
    ) -> Option<(Claimed<'a>, Option<UnbanEvent>)> {
        let lifted = match self.find(key) {
            Some(_) => None,
            None => self.lift_lowest_ban(None, SLOTS_PER_BUCKET, now),
        };
        self.find_or_claim(key, now, region).map(|c| (c, lifted))
    }
}

impl Flood {
    fn source_shape(&self) -> Shape {
        Shape {
            v4: 32,
            v6: self.cfg.ipv6_prefix,
            sources: true,
        }
    }

    fn prefix_shape(&self) -> Shape {
        Shape {
            v4: self.cfg.ban_prefix_v4,
            v6: self.cfg.ban_prefix_v6,
            sources: false,
        }
    }

    /// The table of prefix entries (`prefix`) or of sources, and the shape
    /// of its keys.
    fn table(&self, prefix: bool) -> (&KeyedTable<Slot>, Shape) {
        if prefix {
            (&self.prefixes, self.prefix_shape())
        } else {
            (&self.sources, self.source_shape())
        }
    }

    fn lock_key(&self, prefix: bool, key: [u64; 2]) -> Option<Locked<'_>> {
        let (table, shape) = self.table(prefix);
        table.bucket(key).ok().map(|bucket| Locked { bucket, shape })
    }

    fn lock_at(&self, prefix: bool, i: usize) -> Option<Locked<'_>> {
        let (table, shape) = self.table(prefix);
        table.lock_index(i).map(|bucket| Locked { bucket, shape })
    }

    fn lock_bucket(&self, key: [u64; 2]) -> Option<Locked<'_>> {
        self.lock_key(false, key)
    }

    fn lock_prefix_bucket(&self, key: [u64; 2]) -> Option<Locked<'_>> {
        self.lock_key(true, key)
    }

    pub(crate) fn allowlisted(&self, bits: u128) -> bool {
        self.cfg.allow.iter().any(|c| c.contains(bits)) || self.is_cluster_peer(bits)
    }

    fn gcra(&self) -> Gcra {
        self.cfg.gcra()
    }

    fn escalation(&self) -> Escalation {
        self.cfg.escalation()
    }

    /// The network of an address ([`address_bits`]) that prefix bans use,
    /// when its family has them.
    pub fn network_of(&self, bits: u128) -> Option<Key> {
        if is_v4_mapped(bits) {
            self.cfg
                .v4_prefix_bans()
                .then(|| Key::network(bits, self.cfg.ban_prefix_v4))
        } else {
            self.cfg
                .v6_prefix_bans()
                .then(|| Key::network(bits, self.cfg.ban_prefix_v6))
        }
    }

    /// Whether `key` is a network the prefix table can hold.
    pub(super) fn is_network_key(&self, key: &Key) -> bool {
        if is_v4_mapped(key.bits) {
            self.cfg.v4_prefix_bans() && key.prefix == 96 + self.cfg.ban_prefix_v4
        } else {
            self.cfg.v6_prefix_bans() && key.prefix == self.cfg.ban_prefix_v6
        }
    }

    /// The prefix ban covering `bits`, if one is in force: (offences,
    /// remaining). Costs one atomic load while no prefix ban runs. `hit`:
    /// count the request on the prefix entry. Fails open when busy.
    fn prefix_ban_of(&self, bits: u128, now: u64, hit: bool) -> Option<(u32, u64)> {
        if self.shared().prefix_horizon.load(Relaxed) <= now {
            return None;
        }
        let net = self.network_of(bits)?;
        let bucket = self.lock_prefix_bucket(net.halves())?;
        let c = bucket.find(net.halves()).filter(|c| c.entry().banned_at(now))?;
        let s = c.entry();
        if hit {
            s.hits.fetch_add(1, Relaxed);
            c.touch(now);
        }
        Some((
            s.offences.load(Relaxed),
            remaining(s.ban_until.load(Relaxed), now),
        ))
    }

    /// A ban until `until` was recorded (after unlocking its bucket): the
    /// horizon of its kind (prefix or source) reaches it.
    fn ban_started(&self, prefix: bool, until: u64) {
        let h = self.shared();
        let (gen, horizon) = if prefix {
            (&h.prefix_gen, &h.prefix_horizon)
        } else {
            (&h.source_gen, &h.source_horizon)
        };
        gen.fetch_add(1, SeqCst);
        horizon.fetch_max(until, SeqCst);
    }

    /// Count a new ban towards its network's prefix ban: a first offence of
    /// an automatic reason counts; `threshold` of them within `ban_time`
    /// ban the network. `src` is the address that triggered the ban.
    fn count_towards_prefix(&self, bits: u128, ban: &BanEvent, src: &[u8], now: u64) {
        let threshold = self.cfg.ban_prefix_threshold;
        if threshold == 0 || ban.offences != 1 || matches!(ban.reason, Reason::Manual | Reason::Restored) {
            return;
        }
        let Some(net) = self.network_of(bits) else {
            return;
        };
        let Some(bucket) = self.lock_prefix_bucket(net.halves()) else {
            return;
        };
        let Some((Claimed { cell, evicted }, lifted)) = bucket.claim_for_ban(net.halves(), now, self) else {
            return;
        };
        cell.touch(now);
        let slot = cell.entry();
        if slot.banned_at(now) {
            drop(bucket);
            self.report_end(evicted);
            self.report_end(lifted);
            return;
        }
        let mut members = slot.members();
        if members == 0 || now.saturating_sub(slot.tat.load(Relaxed)) >= self.cfg.ban_time_ns {
            members = 0;
            slot.tat.store(now, Relaxed);
        }
        members += 1;
        if members < threshold {
            slot.set_members(members);
            drop(bucket);
            self.report_end(evicted);
            self.report_end(lifted);
            return;
        }
        let room = bucket.lift_lowest_ban(Some(cell), BAN_WAYS, now);
        // Also clears the member count, so a later window starts afresh.
        let (expired, pban) = start_ban(slot, net, now, None, ban.reason, &self.escalation());
        let until = slot.ban_until.load(Relaxed);
        drop(bucket);
        self.ban_started(true, until);
        self.report_end(evicted);
        self.report_end(lifted);
        self.report_end(room);
        self.announce(expired, &pban, Some(src));
    }

    /// Count one request from `addr` (4 or 16 bytes) at `now`.
    pub fn check(&self, addr: &[u8], now: u64) -> Result<CheckResult, TableError> {
        let bits = address_bits(addr).ok_or(TableError::BadAddress)?;
        let c = self.counters();
        if self.allowlisted(bits) {
            c.bump(Counter::Allowlisted);
            return Ok(CheckResult::plain(Verdict::Allowlisted));
        }
        if let Some((offences, ban_ns)) = self.prefix_ban_of(bits, now, true) {
            c.bump(Counter::Rejected);
            return Ok(CheckResult {
                verdict: Verdict::Banned,
                offences,
                ban_ns,
            });
        }
        let key = Key::from_address_bits(bits, self.cfg.ipv6_prefix);
        let untracked = || {
            c.bump(Counter::Untracked);
            Ok(CheckResult::plain(Verdict::Untracked))
        };
        let Some(bucket) = self.lock_bucket(key.halves()) else {
            return untracked();
        };
        let Some(Claimed { cell, evicted }) = bucket.find_or_claim(key.halves(), now, self) else {
            drop(bucket);
            return untracked();
        };
        let slot = cell.entry();
        slot.hits.fetch_add(1, Relaxed);
        cell.touch(now);
        let offences = slot.offences.load(Relaxed);
        if slot.banned_at(now) {
            let ban_ns = remaining(slot.ban_until.load(Relaxed), now);
            drop(bucket);
            self.report_end(evicted);
            c.bump(Counter::Rejected);
            return Ok(CheckResult {
                verdict: Verdict::Banned,
                offences,
                ban_ns,
            });
        }
        if let Some(tat) = self.gcra().admit(slot.tat.load(Relaxed), now) {
            slot.tat.store(tat, Relaxed);
            drop(bucket);
            self.report_end(evicted);
            c.bump(Counter::Passed);
            return Ok(CheckResult {
                verdict: Verdict::Pass,
                offences,
                ban_ns: 0,
            });
        }
        let room = bucket.lift_lowest_ban(Some(cell), BAN_WAYS, now);
        let (expired, ban) = start_ban(slot, key, now, None, Reason::Flood, &self.escalation());
        let until = slot.ban_until.load(Relaxed);
        drop(bucket);
        self.ban_started(false, until);
        self.report_end(evicted);
        self.report_end(room);
        c.bump(Counter::Limited);
        self.announce(expired, &ban, Some(addr));
        self.count_towards_prefix(bits, &ban, addr, now);
        Ok(CheckResult {
            verdict: Verdict::Limited,
            offences: ban.offences,
            ban_ns: ban.duration_ns,
        })
    }

    /// Whether `addr` is banned now; counts the drop if so. Never counts a request.
    pub fn drop_check(&self, addr: &[u8], now: u64) -> Result<bool, TableError> {
        let bits = address_bits(addr).ok_or(TableError::BadAddress)?;
        if self.allowlisted(bits) {
            return Ok(false);
        }
        if self.prefix_ban_of(bits, now, true).is_some() {
            self.counters().bump(Counter::Dropped);
            return Ok(true);
        }
        // While no source ban can be in force, one atomic load decides.
        if self.shared().source_horizon.load(Relaxed) <= now {
            return Ok(false);
        }
        let key = Key::from_address_bits(bits, self.cfg.ipv6_prefix);
        let Some(bucket) = self.lock_bucket(key.halves()) else {
            return Ok(false);
        };
        let drop_it = match bucket.find(key.halves()).map(Cell::entry) {
            Some(slot) if slot.banned_at(now) => {
                slot.hits.fetch_add(1, Relaxed);
                true
            }
            _ => false,
        };
        drop(bucket);
        if drop_it {
            self.counters().bump(Counter::Dropped);
        }
        Ok(drop_it)
    }

    /// Ban `text` now: `duration_ns` None = escalated ban_time, PERMANENT = forever.
    pub fn ban(&self, text: &str, duration_ns: Option<u64>, now: u64) -> Result<BanEvent, TableError> {
        let addr = crate::sip::addr::parse_address(text).ok_or(TableError::BadAddress)?;
        let bits = u128::from_be_bytes(addr);
        self.ban_bits(bits, duration_ns, Reason::Manual, now)
            .map(|b| b.expect("a manual ban always starts"))
    }

    /// Ban the source of an offence (`reason`) with the escalated duration,
    /// unless it is allowlisted or already banned, itself or by a prefix
    /// ban (then `Ok(None)`).
    pub fn ban_offender(&self, bits: u128, reason: Reason, now: u64) -> Result<Option<BanEvent>, TableError> {
        match self.ban_bits(bits, None, reason, now) {
            Err(TableError::Allowlisted) => Ok(None),
            other => other,
        }
    }

    fn ban_bits(
        &self,
        bits: u128,
        duration_ns: Option<u64>,
        reason: Reason,
        now: u64,
    ) -> Result<Option<BanEvent>, TableError> {
        if self.allowlisted(bits) {
            return Err(TableError::Allowlisted);
        }
        if reason != Reason::Manual && self.prefix_ban_of(bits, now, false).is_some() {
            return Ok(None);
        }
        let key = Key::from_address_bits(bits, self.cfg.ipv6_prefix);
        let bucket = self.lock_bucket(key.halves()).ok_or(TableError::Busy)?;
        let (Claimed { cell, evicted }, lifted) = bucket
            .claim_for_ban(key.halves(), now, self)
            .ok_or(TableError::Full)?;
        let slot = cell.entry();
        if reason != Reason::Manual && slot.banned_at(now) {
            drop(bucket);
            self.report_end(evicted);
            self.report_end(lifted);
            return Ok(None);
        }
        let room = bucket.lift_lowest_ban(Some(cell), BAN_WAYS, now);
        let (expired, ban) = start_ban(slot, key, now, duration_ns, reason, &self.escalation());
        let until = slot.ban_until.load(Relaxed);
        drop(bucket);
        self.ban_started(false, until);
        self.report_end(evicted);
        self.report_end(lifted);
        self.report_end(room);
        let src = bits.to_be_bytes();
        self.announce(expired, &ban, Some(&src));
        self.count_towards_prefix(bits, &ban, &src, now);
        Ok(Some(ban))
    }

    /// Lift the ban on `text`: an address (its source key), or a network
    /// as a CIDR of `ban_prefix_v4`/`ban_prefix_v6` bits (its prefix ban).
    /// Offence history is kept for escalation.
    pub fn unban(&self, text: &str, now: u64) -> Result<(), TableError> {
        let (key, prefix) = match Key::parse_network(text).filter(|n| self.is_network_key(n)) {
            Some(net) => (net, true),
            None => (
                Key::parse(text, self.cfg.ipv6_prefix).ok_or(TableError::BadAddress)?,
                false,
            ),
        };
        let lifted = self.unban_key(key, prefix, now);
        // The peers may hold the ban this node no longer has.
        if matches!(lifted, Ok(()) | Err(TableError::NotFound)) {
            self.replicate_unban(key, prefix);
        }
        lifted
    }

    /// Lift the ban on a source key or (`prefix`) a network key.
    pub fn unban_key(&self, key: Key, prefix: bool, now: u64) -> Result<(), TableError> {
        let bucket = self.lock_key(prefix, key.halves()).ok_or(TableError::Busy)?;
        self.unban_locked(bucket, key, now)
    }

    fn unban_locked(&self, bucket: Locked<'_>, key: Key, now: u64) -> Result<(), TableError> {
        let slot = bucket
            .find(key.halves())
            .map(Cell::entry)
            .filter(|s| s.banned_at(now))
            .ok_or(TableError::NotFound)?;
        slot.lift(now);
        drop(bucket);
        self.counters().bump(Counter::Unbans);
        UnbanEvent { key, why: Ended::Rpc }.log();
        Ok(())
    }

    /// Restore one saved entry (state file); `prefix`: a network of the
    /// prefix table. `ban_until` may be in the past (an ended ban kept for
    /// its offence history). A live ban takes its place among the bucket's
    /// ban ways like any new ban, except that it is itself the one left out
    /// (kept as offence history only) when it ranks lowest.
    pub fn restore(
        &self,
        key: Key,
        prefix: bool,
        ban_until: u64,
        offences: u32,
        reason: Reason,
        now: u64,
    ) -> Result<Restored, TableError> {
        if prefix && !self.is_network_key(&key) {
            return Err(TableError::BadAddress);
        }
        let bucket = if prefix {
            self.lock_prefix_bucket(key.halves())
        } else {
            self.lock_bucket(key.halves())
        }
        .ok_or(TableError::Busy)?;
        let active = ban_until > now;
        let (Claimed { cell, evicted }, lifted) = if active {
            bucket.claim_for_ban(key.halves(), now, self)
        } else {
            bucket.find_or_claim(key.halves(), now, self).map(|c| (c, None))
        }
        .ok_or(TableError::Full)?;
        let slot = cell.entry();
        slot.ban_until.store(ban_until.max(1), Relaxed);
        slot.offences.store(offences, Relaxed);
        let announced = if active { ANNOUNCED } else { 0 };
        slot.meta
            .store(announced | (reason as u32) << REASON_SHIFT, Relaxed);
        // The lowest of the bucket's bans, this one included, gives way.
        let room = if active {
            bucket.lift_lowest_ban(None, BAN_WAYS + 1, now)
        } else {
            None
        };
        // A lifted restored ban was never announced: nothing to log for it.
        let crowded = room.is_some_and(|e| e.key == key);
        drop(bucket);
        self.report_end(evicted);
        self.report_end(lifted);
        if !active {
            return Ok(Restored::History);
        }
        if crowded {
            return Ok(Restored::Crowded);
        }
        self.report_end(room);
        self.ban_started(prefix, ban_until);
        // Logged like any ban, so log readers (fail2ban) see it again.
        let ban = BanEvent {
            key,
            reason: Reason::Restored,
            duration_ns: remaining(ban_until, now),
            offences,
        };
        self.announce(None, &ban, None);
        Ok(Restored::Ban)
    }

    /// Once a second: log bans that ended, forget stale offences, recount
    /// bans, and recompute the horizon of prefix bans.
    pub fn sweep(&self, now: u64) {
        let h = self.shared();
        let mut active = 0u64;
        for (prefix, buckets, gen, horizon) in [
            (false, self.sources.buckets(), &h.source_gen, &h.source_horizon),
            (true, self.prefixes.buckets(), &h.prefix_gen, &h.prefix_horizon),
        ] {
            let started = gen.load(SeqCst);
            let mut latest = 0u64;
            for i in 0..buckets {
                active += self.sweep_bucket(self.lock_at(prefix, i), now, &mut latest);
            }
            horizon.store(latest, SeqCst);
            if gen.load(SeqCst) != started {
                // A ban started during the sweep and may have been missed:
                // look its kind up until the next sweep.
                horizon.store(PERMANENT, SeqCst);
            }
        }
        self.counters().set_gauge(Counter::ActiveBans, active);
    }

    /// One bucket of the sweep (None: busy, skipped). Returns its live bans
    /// and raises `horizon` to their latest end.
    fn sweep_bucket(&self, bucket: Option<Locked<'_>>, now: u64, horizon: &mut u64) -> u64 {
        let Some(bucket) = bucket else {
            // Unknown: keep looking prefixes up.
            *horizon = PERMANENT;
            return 0;
        };
        let forget = self.cfg.ban_forget_ns;
        let mut active = 0;
        let mut ended = [None; SLOTS_PER_BUCKET];
        for (n, c) in bucket.bucket.cells().enumerate() {
            let s = c.entry();
            if s.banned_at(now) {
                active += 1;
                *horizon = (*horizon).max(s.ban_until.load(Relaxed));
                continue;
            }
            if s.meta.fetch_and(!ANNOUNCED, Relaxed) & ANNOUNCED != 0 {
                ended[n] = Some(cell_key(c, bucket.shape));
            }
            let until = s.ban_until.load(Relaxed);
            if until != 0 && until.saturating_add(forget) <= now {
                s.offences.store(0, Relaxed);
            }
        }
        drop(bucket);
        for key in ended.into_iter().flatten() {
            self.report_end(Some(UnbanEvent {
                key,
                why: Ended::Expired,
            }));
        }
        active
    }

    /// Visit every in-use entry, the source table's then the prefix
    /// table's (bucket by bucket, calling `f` unlocked). Returns how many
    /// buckets could not be locked and were left out.
    pub fn for_each_entry(&self, now: u64, mut f: impl FnMut(&EntryInfo) -> bool) -> usize {
        let gcra = self.gcra();
        let mut skipped = 0;
        let buckets = (0..self.sources.buckets())
            .map(|i| (false, i))
            .chain((0..self.prefixes.buckets()).map(|i| (true, i)));
        for (prefix, i) in buckets {
            let mut copied = [None; SLOTS_PER_BUCKET];
            let Some(bucket) = self.lock_at(prefix, i) else {
                skipped += 1;
                continue;
            };
            for (n, c) in bucket.bucket.cells().enumerate() {
                let s = c.entry();
                let until = s.ban_until.load(Relaxed);
                let banned = s.banned_at(now);
                copied[n] = Some(EntryInfo {
                    key: cell_key(c, bucket.shape),
                    prefix,
                    banned,
                    reason: s.reason(),
                    ban_ns: if banned { remaining(until, now) } else { 0 },
                    ban_until: until,
                    offences: s.offences.load(Relaxed),
                    // A prefix entry has no rate state.
                    load_pct: if prefix {
                        0
                    } else {
                        gcra.load_pct(s.tat.load(Relaxed), now)
                    },
                    hits: s.hits.load(Relaxed),
                    idle_ns: now.saturating_sub(c.touched()),
                });
            }
            drop(bucket);
            for info in copied.iter().flatten() {
                if !f(info) {
                    return skipped;
                }
            }
        }
        skipped
    }

    /// Up to `max` unbanned entries with the highest load, highest first.
    pub fn top(&self, now: u64, max: usize) -> Vec<EntryInfo> {
        let mut top: Vec<EntryInfo> = Vec::with_capacity(max + 1);
        self.for_each_entry(now, |e| {
            if !e.banned && e.load_pct > 0 {
                let at = top.partition_point(|t| t.load_pct >= e.load_pct);
                if at < max {
                    top.insert(at, *e);
                    top.truncate(max);
                }
            }
            true
        });
        top
    }

    /// Log and count the end of a ban that the sweep had not reported.
    fn report_end(&self, ended: Option<UnbanEvent>) {
        if let Some(e) = ended {
            self.counters().bump(Counter::Unbans);
            e.log();
        }
    }

    fn announce(&self, expired: Option<UnbanEvent>, ban: &BanEvent, src: Option<&[u8]>) {
        self.report_end(expired);
        self.counters().bump(Counter::Bans);
        ban.log(src.map(display_address).as_ref().map(|b| b.as_str()));
        self.replicate_ban(ban);
    }
}

/// Start a ban on `slot` (bucket locked). Returns the unlogged end of a
/// previous ban, if the sweep had not reported it yet, and the new ban.
fn start_ban(
    slot: &Slot,
    key: Key,
    now: u64,
    duration_ns: Option<u64>,
    reason: Reason,
    esc: &Escalation,
) -> (Option<UnbanEvent>, BanEvent) {
    let prev_until = slot.ban_until.load(Relaxed);
    let mut offences = slot.offences.load(Relaxed);
    if prev_until != 0 && prev_until != PERMANENT && prev_until.saturating_add(esc.forget_ns) <= now {
        offences = 0;
    }
    let live = slot.banned_at(now);
    let unreported_end = !live && slot.unreported();
    let expired = unreported_end.then_some(UnbanEvent {
        key,
        why: Ended::Expired,
    });
    // A new ban over a live one (RPC) replaces it; it is not a new offence.
    if !live || offences == 0 {
        offences = offences.saturating_add(1);
    }
    let duration_ns = duration_ns.unwrap_or_else(|| esc.duration_ns(offences));
    let until = if duration_ns == PERMANENT {
        PERMANENT
    } else {
        now.saturating_add(duration_ns)
    };
    slot.offences.store(offences, Relaxed);
    slot.ban_until.store(until, Relaxed);
    slot.tat.store(0, Relaxed);
    slot.meta
        .store(ANNOUNCED | (reason as u32) << REASON_SHIFT, Relaxed);
    (
        expired,
        BanEvent {
            key,
            reason,
            duration_ns,
            offences,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::NS_PER_SEC as S;

    use crate::flood::region::small_flood as region;
    use std::sync::atomic::Ordering::Relaxed;

    fn flood(r: &Flood, addr: &[u8], now: u64, n: usize) -> Vec<Verdict> {
        (0..n).map(|_| r.check(addr, now).unwrap().verdict).collect()
    }

    const T0: u64 = 1_000 * S;
    const A: [u8; 4] = [127, 0, 0, 2];

    #[test]
    fn exceeding_the_rate_bans_once_then_rejects() {
        let r = region(|_| {});
        let v = flood(&r, &A, T0, 40);
        assert!(v[..30].iter().all(|v| *v == Verdict::Pass));
        assert_eq!(v[30], Verdict::Limited);
        assert!(v[31..].iter().all(|v| *v == Verdict::Banned));
        let c = r.counters();
        assert_eq!(c.get(Counter::Passed), 30);
        assert_eq!(c.get(Counter::Limited), 1);
        assert_eq!(c.get(Counter::Rejected), 9);
        assert_eq!(c.get(Counter::Bans), 1);
    }

    #[test]
    fn ban_expires_and_escalates() {
        let r = region(|c| {
            c.ban_time_ns = 10 * S;
            c.ban_max_ns = 25 * S;
        });
        let first = r.check(&A, T0).unwrap();
        assert_eq!(first.verdict, Verdict::Pass);
        flood(&r, &A, T0, 30);
        let v = r.check(&A, T0 + 9 * S).unwrap();
        assert_eq!(v.verdict, Verdict::Banned);
        assert_eq!(v.ban_ns, S);
        // Expired: full allowance again, then a second, doubled ban.
        let after = T0 + 10 * S;
        assert_eq!(
            flood(&r, &A, after, 30)
                .iter()
                .filter(|v| **v == Verdict::Pass)
                .count(),
            30
        );
        let second = r.check(&A, after).unwrap();
        assert_eq!(
            (second.verdict, second.offences, second.ban_ns),
            (Verdict::Limited, 2, 20 * S)
        );
        // Third would be 40 s: capped at ban_max.
        let after = after + 20 * S;
        flood(&r, &A, after, 30);
        let third = r.check(&A, after).unwrap();
        assert_eq!((third.offences, third.ban_ns), (3, 25 * S));
    }

    #[test]
    fn cap_can_be_permanent() {
        let r = region(|c| {
            c.ban_time_ns = 10 * S;
            c.ban_max_ns = 20 * S;
            c.ban_permanent = true;
        });
        flood(&r, &A, T0, 31);
        let t = T0 + 10 * S;
        flood(&r, &A, t, 30);
        let second = r.check(&A, t).unwrap();
        assert_eq!(second.ban_ns, PERMANENT);
        assert_eq!(r.check(&A, t + 1_000_000 * S).unwrap().verdict, Verdict::Banned);
    }

    #[test]
    fn offences_are_forgotten_after_ban_forget() {
        let r = region(|c| {
            c.ban_time_ns = 10 * S;
            c.ban_forget_ns = 100 * S;
        });
        flood(&r, &A, T0, 31);
        let later = T0 + 10 * S + 100 * S;
        flood(&r, &A, later, 30);
        assert_eq!(r.check(&A, later).unwrap().offences, 1);
    }

    #[test]
    fn allowlisted_sources_are_never_limited() {
        let r = region(|c| c.add_allow("127.0.0.0/30").unwrap());
        assert!(flood(&r, &A, T0, 1000).iter().all(|v| *v == Verdict::Allowlisted));
        assert_eq!(r.ban("127.0.0.2", None, T0), Err(TableError::Allowlisted));
    }

    #[test]
    fn ipv6_sources_in_one_prefix_share_an_entry() {
        let r = region(|_| {});
        let a = crate::sip::addr::parse_address("2001:db8::1").unwrap();
        let b = crate::sip::addr::parse_address("2001:db8::2").unwrap();
        flood(&r, &a, T0, 30);
        assert_eq!(r.check(&b, T0).unwrap().verdict, Verdict::Limited);
    }

    #[test]
    fn new_sources_never_evict_live_bans() {
        let r = region(|c| {
            c.table_size = 256;
            c.ban_prefix_threshold = 0;
        });
        let mut banned = Vec::new();
        for i in 0..20u8 {
            let a = [10, 0, 0, i];
            flood(&r, &a, T0, 31);
            banned.push(a);
        }
        // A spoofed flood from 100 000 sources.
        for i in 0..100_000u32 {
            let b = i.to_be_bytes();
            r.check(&[11, b[1], b[2], b[3]], T0 + S).unwrap();
        }
        for a in &banned {
            assert_eq!(r.check(a, T0 + 2 * S).unwrap().verdict, Verdict::Banned);
        }
        let c = r.counters();
        assert!(c.get(Counter::EntriesUsed) <= 256);
        assert!(c.get(Counter::Evictions) > 99_000);
        assert_eq!(c.get(Counter::Untracked), 0);
    }

    /// Live bans in each bucket of the source table.
    fn bans_per_bucket(r: &Flood, now: u64) -> Vec<usize> {
        (0..r.sources().buckets())
            .map(|i| {
                r.sources()
                    .lock_index(i)
                    .unwrap()
                    .cells()
                    .filter(|c| c.entry().banned_at(now))
                    .count()
            })
            .collect()
    }

    #[test]
    fn bans_never_fill_a_bucket_and_a_ban_is_never_refused() {
        let r = region(|c| {
            c.table_size = 64;
            c.ban_prefix_threshold = 0;
        });
        // One packet per address: each a ban (as a scanner User-Agent does).
        let lines = logged(|| {
            for n in 0..10_000u32 {
                let b = n.to_be_bytes();
                let bits = address_bits(&[10, b[1], b[2], b[3]]).unwrap();
                assert!(
                    r.ban_offender(bits, Reason::Scanner, T0).unwrap().is_some(),
                    "{n}"
                );
            }
        });
        let c = r.counters();
        assert_eq!(c.get(Counter::Bans), 10_000);
        assert_eq!(c.get(Counter::EntriesUsed), 64);
        let per_bucket = bans_per_bucket(&r, T0);
        assert!(per_bucket.iter().all(|n| *n == BAN_WAYS), "{per_bucket:?}");
        // Every ban made room by lifting an older one: logged as evicted.
        let evicted = lines
            .iter()
            .filter(|l| l.contains(" UNBAN ") && l.ends_with(" reason=evicted"))
            .count();
        assert_eq!(evicted as u64, 10_000 - (BAN_WAYS * 8) as u64);
        assert_eq!(c.get(Counter::Unbans), evicted as u64);
        // A new flooder is tracked, limited and banned; RPC bans still work.
        let v = flood(&r, &[192, 0, 2, 1], T0 + S, 31);
        assert!(v[..30].iter().all(|v| *v == Verdict::Pass), "{v:?}");
        assert_eq!(v[30], Verdict::Limited);
        assert_eq!(r.check(&[192, 0, 2, 1], T0 + S).unwrap().verdict, Verdict::Banned);
        r.ban("192.0.2.2", Some(60 * S), T0 + S).unwrap();
        assert_eq!(r.check(&[192, 0, 2, 2], T0 + S).unwrap().verdict, Verdict::Banned);
        assert_eq!(c.get(Counter::Untracked), 0);
        assert!(bans_per_bucket(&r, T0 + S).iter().all(|n| *n <= BAN_WAYS));
    }

    /// Workers read the clock before they lock a bucket, so one that was
    /// preempted in between works with a `now` earlier than that of a ban
    /// another worker lifted meanwhile (`Slot::lift` ends it at the
    /// lifter's `now`). That ban is over: it must not count as live, be
    /// lifted (and its end counted) a second time, or hold a ban way.
    #[test]
    fn a_lifted_ban_is_over_for_a_worker_whose_clock_read_came_first() {
        // One bucket of 8 ways.
        let r = region(|c| {
            c.table_size = 8;
            c.ban_prefix_threshold = 0;
        });
        let bits = |i: u8| address_bits(&[10, 0, i, 1]).unwrap();
        for i in 0..BAN_WAYS as u8 {
            r.ban_offender(bits(i), Reason::Scanner, T0).unwrap().unwrap();
        }
        let lines = logged(|| {
            // Worker A (clock read at T0 + 2 ms) lifts the lowest ban to
            // make room for its own.
            r.ban_offender(bits(100), Reason::Scanner, T0 + 2_000_000)
                .unwrap()
                .unwrap();
            // Worker B read the clock at T0 + 1 ms, before A's read, and
            // locked the bucket after A.
            r.ban_offender(bits(101), Reason::Scanner, T0 + 1_000_000)
                .unwrap()
                .unwrap();
        });
        let evicted: Vec<&String> = lines.iter().filter(|l| l.ends_with("reason=evicted")).collect();
        assert_eq!(evicted.len(), 2, "{lines:?}");
        assert_ne!(evicted[0], evicted[1], "one ban lifted twice: {lines:?}");
        let later = T0 + S;
        assert_eq!(bans_per_bucket(&r, later), [BAN_WAYS]);
        r.sweep(later);
        let c = r.counters();
        assert_eq!(c.get(Counter::ActiveBans), BAN_WAYS as u64);
        assert_eq!(
            c.get(Counter::ActiveBans),
            c.get(Counter::Bans) - c.get(Counter::Unbans)
        );
        // The same for an RPC unban and a sweep that read the clock early:
        // a lifted ban is neither lifted again nor counted as live.
        r.unban("10.0.101.1", T0 + 3_000_000).unwrap();
        assert_eq!(r.unban("10.0.101.1", T0 + 2_500_000), Err(TableError::NotFound));
        r.sweep(T0 + 2_500_000);
        assert_eq!(c.get(Counter::ActiveBans), BAN_WAYS as u64 - 1);
        assert_eq!(
            c.get(Counter::ActiveBans),
            c.get(Counter::Bans) - c.get(Counter::Unbans)
        );
    }

    #[test]
    fn the_lowest_ranked_ban_gives_way() {
        let r = region(|c| {
            c.table_size = 64;
            c.ban_prefix_threshold = 0;
            c.ban_time_ns = 100 * S;
        });
        // A permanent manual ban, a repeat offender and a long manual ban:
        // thousands of one-packet bans later, all three are still in force.
        r.ban("192.0.2.1", Some(PERMANENT), T0).unwrap();
        r.ban("192.0.2.2", Some(10 * S), T0).unwrap();
        r.unban("192.0.2.2", T0 + S).unwrap();
        r.ban("192.0.2.2", None, T0 + S).unwrap(); // 2nd offence
        r.ban("192.0.2.3", Some(3600 * S), T0).unwrap();
        let lines = logged(|| {
            for n in 0..5_000u32 {
                let b = n.to_be_bytes();
                let bits = address_bits(&[10, b[1], b[2], b[3]]).unwrap();
                r.ban_offender(bits, Reason::Flood, T0 + 2 * S).unwrap();
            }
        });
        for a in [[192, 0, 2, 1], [192, 0, 2, 2], [192, 0, 2, 3]] {
            assert_eq!(r.check(&a, T0 + 3 * S).unwrap().verdict, Verdict::Banned, "{a:?}");
        }
        // An evicted source keeps its offences (until its slot is recycled):
        // caught again, it is banned for longer.
        let last = lines
            .iter()
            .rev()
            .find(|l| l.ends_with("reason=evicted"))
            .unwrap();
        let key = last.split_whitespace().nth(2).unwrap().trim_start_matches("key=");
        let a = crate::sip::addr::parse_address(key).unwrap();
        let v = flood(&r, &a, T0 + 3 * S, 31);
        assert_eq!(v[30], Verdict::Limited, "{v:?}");
        assert_eq!(r.check(&a, T0 + 3 * S).unwrap().offences, 2);
    }

    fn v6(text: &str) -> [u8; 16] {
        crate::sip::addr::parse_address(text).unwrap()
    }

    #[test]
    fn many_first_bans_in_one_network_ban_the_network() {
        // The 65 536 /64s of one /48, one packet each, into 64 entries.
        let r = region(|c| {
            c.table_size = 64;
            c.ban_prefix_threshold = 8;
            c.add_allow("2001:db8:1:ffff::/64").unwrap();
        });
        let lines = logged(|| {
            for n in 0..65_536u32 {
                let a = v6(&format!("2001:db8:1:{n:x}::1"));
                let bits = address_bits(&a).unwrap();
                r.ban_offender(bits, Reason::Scanner, T0).unwrap();
            }
        });
        let c = r.counters();
        // 8 bans of /64s, then one of the /48: the rest are banned already.
        assert_eq!(c.get(Counter::Bans), 9, "{lines:?}");
        let prefix_line = lines.iter().find(|l| l.contains("key=2001:db8:1::/48")).unwrap();
        assert_eq!(
            prefix_line,
            "sipguard: BAN src=2001:db8:1:7::1 key=2001:db8:1::/48 reason=scanner duration=300 offences=1"
        );
        let v = r.check(&v6("2001:db8:1:abcd::9"), T0 + S).unwrap();
        assert_eq!((v.verdict, v.offences, v.ban_ns), (Verdict::Banned, 1, 299 * S));
        assert!(r.drop_check(&v6("2001:db8:1:1234::9"), T0 + S).unwrap());
        // The allowlist comes first: an allowlisted /64 inside stays open.
        assert_eq!(
            r.check(&v6("2001:db8:1:ffff::1"), T0 + S).unwrap().verdict,
            Verdict::Allowlisted
        );
        assert!(!r.drop_check(&v6("2001:db8:1:ffff::1"), T0 + S).unwrap());
        // Another network is untouched, and a flooder there is limited.
        let other = v6("2001:db8:2::1");
        let v = flood(&r, &other, T0 + S, 31);
        assert!(v[..30].iter().all(|v| *v == Verdict::Pass), "{v:?}");
        assert_eq!(v[30], Verdict::Limited);
        // Listed with its hits, counted among active bans, lifted by RPC.
        let mut listed = Vec::new();
        r.for_each_entry(T0 + S, |e| {
            if e.banned && e.prefix {
                listed.push((e.key.to_string(), e.reason, e.hits))
            }
            true
        });
        assert_eq!(
            listed,
            [("2001:db8:1::/48".to_string(), Some(Reason::Scanner), 2)]
        );
        r.sweep(T0 + S);
        assert_eq!(c.get(Counter::ActiveBans), 8 + 1 + 1);
        assert_eq!(r.unban("2001:db8:1::/48", T0 + 2 * S), Ok(()));
        assert_eq!(r.unban("2001:db8:1::/48", T0 + 2 * S), Err(TableError::NotFound));
        assert_eq!(
            r.check(&v6("2001:db8:1:abcd::9"), T0 + 2 * S).unwrap().verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn ipv4_networks_and_what_counts() {
        let r = region(|c| {
            c.table_size = 256;
            c.ban_prefix_threshold = 4;
            c.ban_time_ns = 10 * S;
        });
        let bits = |a: [u8; 4]| address_bits(&a).unwrap();
        // Manual bans and repeat offences do not count; first offences do.
        for i in 1..=5 {
            r.ban(&format!("198.51.100.{i}"), None, T0).unwrap();
        }
        flood(&r, &[198, 51, 100, 9], T0, 31);
        flood(&r, &[198, 51, 100, 9], T0 + 20 * S, 31); // 2nd offence
        r.ban_offender(bits([198, 51, 100, 10]), Reason::Auth, T0 + 20 * S)
            .unwrap();
        r.ban_offender(bits([198, 51, 100, 11]), Reason::Auth, T0 + 20 * S)
            .unwrap();
        assert_eq!(
            r.check(&[198, 51, 100, 200], T0 + 20 * S).unwrap().verdict,
            Verdict::Pass
        );
        // Counted only within ban_time: the window of the 1st (at T0) ended.
        let lines = logged(|| {
            r.ban_offender(bits([198, 51, 100, 12]), Reason::Enumeration, T0 + 21 * S)
                .unwrap();
            r.ban_offender(bits([198, 51, 100, 13]), Reason::Enumeration, T0 + 22 * S)
                .unwrap();
        });
        assert_eq!(
            lines.last().unwrap(),
            "sipguard: BAN src=198.51.100.13 key=198.51.100.0/24 reason=enumeration duration=10 offences=1"
        );
        assert_eq!(
            r.check(&[198, 51, 100, 200], T0 + 22 * S).unwrap().verdict,
            Verdict::Banned
        );
        // Already covered: no ban of its own.
        assert_eq!(
            r.ban_offender(bits([198, 51, 100, 14]), Reason::Auth, T0 + 22 * S),
            Ok(None)
        );
        // A manual ban inside the network still starts.
        assert!(r.ban("198.51.100.15", Some(60 * S), T0 + 22 * S).is_ok());
        assert_eq!(
            r.check(&[198, 51, 101, 1], T0 + 22 * S).unwrap().verdict,
            Verdict::Pass
        );
        // It ends like any ban, logged once; the sweep then stops lookups.
        let lines = logged(|| {
            r.sweep(T0 + 40 * S);
            r.sweep(T0 + 41 * S);
        });
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("UNBAN key=198.51.100.0/24 reason=expired"))
                .count(),
            1,
            "{lines:?}"
        );
        assert_eq!(r.shared().prefix_horizon.load(Relaxed), 0);
        // Prefix bans escalate like any: the next one lasts ban_time × 2.
        let lines = logged(|| {
            for i in 20..24 {
                r.ban_offender(bits([198, 51, 100, i]), Reason::Scanner, T0 + 50 * S)
                    .unwrap();
            }
        });
        assert!(
            lines
                .last()
                .unwrap()
                .ends_with("key=198.51.100.0/24 reason=scanner duration=20 offences=2"),
            "{lines:?}"
        );
    }

    #[test]
    fn prefix_bans_off() {
        for f in [
            (|c: &mut crate::flood::config::FloodConfig| c.ban_prefix_threshold = 0) as fn(&mut _),
            |c| c.ban_prefix_v4 = 32,
        ] {
            let r = region(|c| {
                c.table_size = 256;
                c.ban_prefix_threshold = 2;
                f(c);
            });
            for i in 1..=20u8 {
                r.ban_offender(address_bits(&[198, 51, 100, i]).unwrap(), Reason::Scanner, T0)
                    .unwrap();
            }
            assert_eq!(r.counters().get(Counter::Bans), 20);
            assert_eq!(r.shared().prefix_horizon.load(Relaxed), 0);
        }
        // IPv6: a network not shorter than the source key.
        let r = region(|c| {
            c.ipv6_prefix = 48;
            c.ban_prefix_threshold = 2;
        });
        for n in 0..10u32 {
            let bits = address_bits(&v6(&format!("2001:db8:{n:x}::1"))).unwrap();
            r.ban_offender(bits, Reason::Scanner, T0).unwrap();
        }
        assert_eq!(r.counters().get(Counter::Bans), 10);
    }

    #[test]
    fn a_restored_ban_that_ranks_lowest_gives_way_to_none() {
        let r = region(|c| {
            c.table_size = 64;
            c.ban_prefix_threshold = 0;
        });
        // Fill every bucket's ban ways with permanent bans.
        for n in 0..2_000u32 {
            let b = n.to_be_bytes();
            r.ban(&format!("10.{}.{}.{}", b[1], b[2], b[3]), Some(PERMANENT), T0)
                .unwrap();
        }
        let before = r.counters().get(Counter::Unbans);
        let key = Key::parse("192.0.2.1", 64).unwrap();
        assert_eq!(
            r.restore(key, false, T0 + 60 * S, 1, Reason::Flood, T0),
            Ok(Restored::Crowded)
        );
        assert_eq!(
            r.counters().get(Counter::Unbans),
            before,
            "no ban was lifted for it"
        );
        assert_eq!(r.check(&[192, 0, 2, 1], T0).unwrap().offences, 1);
        assert_eq!(
            r.restore(key, false, PERMANENT, 9, Reason::Manual, T0),
            Ok(Restored::Ban)
        );
        assert_eq!(r.counters().get(Counter::Unbans), before + 1);
    }

    #[test]
    fn manual_ban_unban_and_listing() {
        let r = region(|_| {});
        r.ban("192.0.2.9", Some(60 * S), T0).unwrap();
        assert_eq!(r.check(&[192, 0, 2, 9], T0).unwrap().verdict, Verdict::Banned);
        let mut bans = Vec::new();
        r.for_each_entry(T0, |e| {
            if e.banned {
                bans.push(*e)
            }
            true
        });
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].key.to_string(), "192.0.2.9");
        assert_eq!(bans[0].reason, Some(Reason::Manual));
        r.unban("192.0.2.9", T0 + S).unwrap();
        assert_eq!(r.unban("192.0.2.9", T0 + S), Err(TableError::NotFound));
        assert_eq!(r.check(&[192, 0, 2, 9], T0 + S).unwrap().verdict, Verdict::Pass);
    }

    #[test]
    fn drop_check_counts_only_banned() {
        let r = region(|_| {});
        assert!(!r.drop_check(&A, T0).unwrap());
        flood(&r, &A, T0, 31);
        assert!(r.drop_check(&A, T0).unwrap());
        assert_eq!(r.counters().get(Counter::Dropped), 1);
    }

    #[test]
    fn the_early_drop_looks_sources_up_only_while_a_ban_may_run() {
        let r = region(|c| c.ban_time_ns = 5 * S);
        let h = r.shared();
        assert_eq!(h.source_horizon.load(Relaxed), 0);
        // Every way a source ban starts raises the horizon at once.
        flood(&r, &A, T0, 31);
        assert!(h.source_horizon.load(Relaxed) > T0);
        assert!(r.drop_check(&A, T0 + S).unwrap());
        // Ended and swept: the horizon falls, nothing is dropped.
        r.sweep(T0 + 6 * S);
        assert_eq!(h.source_horizon.load(Relaxed), 0);
        assert!(!r.drop_check(&A, T0 + 6 * S).unwrap());
        r.ban("127.0.0.3", None, T0 + 7 * S).unwrap();
        assert!(r.drop_check(&[127, 0, 0, 3], T0 + 7 * S).unwrap());
        r.sweep(T0 + 20 * S);
        let key = Key::parse("127.0.0.4", 64).unwrap();
        r.restore(key, false, T0 + 30 * S, 1, Reason::Flood, T0 + 21 * S)
            .unwrap();
        assert!(r.drop_check(&[127, 0, 0, 4], T0 + 21 * S).unwrap());
        // A permanent ban keeps the lookups on.
        r.ban("127.0.0.5", Some(PERMANENT), T0 + 22 * S).unwrap();
        r.sweep(T0 + 40 * S);
        assert_eq!(h.source_horizon.load(Relaxed), PERMANENT);
        assert!(r.drop_check(&[127, 0, 0, 5], T0 + 1000 * S).unwrap());
    }

    #[test]
    fn sweep_reports_each_expiry_once() {
        let r = region(|c| c.ban_time_ns = 5 * S);
        flood(&r, &A, T0, 31);
        r.sweep(T0 + S);
        assert_eq!(r.counters().get(Counter::ActiveBans), 1);
        r.sweep(T0 + 6 * S);
        r.sweep(T0 + 7 * S);
        assert_eq!(r.counters().get(Counter::Unbans), 1);
        assert_eq!(r.counters().get(Counter::ActiveBans), 0);
    }

    /// Log lines the core emitted during `f`, via a test logger.
    fn logged(f: impl FnOnce()) -> Vec<String> {
        crate::util::log::capture(f)
    }

    #[test]
    fn recycling_an_unreported_ended_ban_still_logs_its_end() {
        let r = region(|c| c.ban_time_ns = 5 * S);
        let lines = logged(|| {
            for i in 0..64u8 {
                let _ = r.ban(&format!("10.0.0.{i}"), None, T0);
            }
            // All bans ended; no sweep yet. New sources recycle their slots.
            for i in 0..200u8 {
                r.check(&[11, 0, 0, i], T0 + 6 * S).unwrap();
            }
            r.sweep(T0 + 7 * S);
        });
        let bans = lines.iter().filter(|l| l.contains(" BAN ")).count();
        let unbans = lines.iter().filter(|l| l.contains(" UNBAN ")).count();
        assert!(bans > 0);
        assert_eq!(unbans, bans, "every ban's end is logged exactly once");
        assert_eq!(r.counters().get(Counter::Unbans), bans as u64);
    }

    #[test]
    fn replacing_a_live_ban_is_not_an_expiry_or_a_new_offence() {
        let r = region(|_| {});
        let lines = logged(|| {
            r.ban("192.0.2.5", Some(100 * S), T0).unwrap();
            let again = r.ban("192.0.2.5", Some(10 * S), T0 + S).unwrap();
            assert_eq!(again.offences, 1);
        });
        assert!(lines.iter().all(|l| !l.contains("UNBAN")), "{lines:?}");
        assert_eq!(r.counters().get(Counter::Unbans), 0);
    }

    #[test]
    fn top_orders_by_load() {
        let r = region(|_| {});
        flood(&r, &[127, 0, 0, 3], T0, 20);
        flood(&r, &[127, 0, 0, 4], T0, 5);
        let top = r.top(T0, 10);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].key.to_string(), "127.0.0.3");
        assert!(top[0].load_pct > top[1].load_pct);
    }
}
