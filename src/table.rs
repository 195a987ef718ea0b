//! The source table: fixed-capacity, 8-way set-associative, in the region.
//!
//! A keyed hash of the source picks one bucket of 8 slots; one lock word per
//! bucket guards them. A new source takes an empty slot, else recycles the
//! least recently active slot that is not banned (sources with no offence
//! history go first, so escalation memory outlives idle traffic). A bucket
//! whose 8 slots are all live bans admits no new source: the request passes
//! untracked and is counted, and no live ban is ever evicted. The hash seed
//! is random per start, so an attacker cannot aim sources at one bucket.
//!
//! Every operation locks one bucket for a few loads and stores, copies out
//! what must be logged, and logs only after unlocking.

use crate::addr::{address_bits, display_address, Key};
use crate::ban::{BanEvent, Escalation, Reason, UnbanEvent};
use crate::counters::Counter;
use crate::gcra::Gcra;
use crate::lock::{lock, Guard};
use crate::region::Region;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

pub const SLOTS_PER_BUCKET: usize = 8;

/// `ban_until` of a permanent ban.
pub const PERMANENT: u64 = u64::MAX;

const IN_USE: u32 = 1;
/// A ban was announced and its end not yet logged.
const ANNOUNCED: u32 = 2;
const REASON_SHIFT: u32 = 8;

/// One source. 64 bytes: one cache line.
#[repr(C, align(64))]
pub struct Slot {
    key: [AtomicU64; 2],
    /// GCRA theoretical arrival time.
    tat: AtomicU64,
    /// End of the current or last ban; 0 = never banned; PERMANENT.
    ban_until: AtomicU64,
    last_seen: AtomicU64,
    hits: AtomicU64,
    offences: AtomicU32,
    /// IN_USE | ANNOUNCED | reason << REASON_SHIFT
    meta: AtomicU32,
}

impl Slot {
    fn in_use(&self) -> bool {
        self.meta.load(Relaxed) & IN_USE != 0
    }
    fn holds(&self, key: [u64; 2]) -> bool {
        self.in_use() && self.key[0].load(Relaxed) == key[0] && self.key[1].load(Relaxed) == key[1]
    }
    fn banned_at(&self, now: u64) -> bool {
        now < self.ban_until.load(Relaxed)
    }
    fn reason(&self) -> Option<Reason> {
        Reason::from_code((self.meta.load(Relaxed) >> REASON_SHIFT) & 0xff)
    }
    fn key(&self, ipv6_prefix: u8) -> Key {
        Key::from_halves(
            [self.key[0].load(Relaxed), self.key[1].load(Relaxed)],
            ipv6_prefix,
        )
    }
    fn reset(&self, key: [u64; 2], now: u64) {
        self.key[0].store(key[0], Relaxed);
        self.key[1].store(key[1], Relaxed);
        self.tat.store(0, Relaxed);
        self.ban_until.store(0, Relaxed);
        self.last_seen.store(now, Relaxed);
        self.hits.store(0, Relaxed);
        self.offences.store(0, Relaxed);
        self.meta.store(IN_USE, Relaxed);
    }
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckResult {
    pub verdict: Verdict,
    pub offences: u32,
    /// Remaining ban; PERMANENT for a permanent one; 0 when not banned.
    pub ban_ns: u64,
}

impl CheckResult {
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

/// What the list calls report about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    pub key: Key,
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

/// Mix two 64-bit words into one (folded 128-bit multiply).
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The bucket-picking hash of a key under a per-start seed.
pub(crate) fn bucket_hash(key: [u64; 2], seed: [u64; 2]) -> u64 {
    let h = fold(key[0] ^ seed[0], key[1] ^ seed[1] ^ 0x9e37_79b9_7f4a_7c15);
    fold(h ^ 0xbf58_476d_1ce4_e5b9, seed[0] ^ 0x94d0_49bb_1331_11eb)
}

/// A slot found or claimed for a key.
struct Claimed<'a> {
    slot: &'a Slot,
    evicted: Option<UnbanEvent>,
}

/// An operation on one bucket, with its lock held.
struct Locked<'a> {
    slots: &'a [Slot; SLOTS_PER_BUCKET],
    _guard: Guard<'a>,
}

impl Locked<'_> {
    fn find(&self, key: [u64; 2]) -> Option<&Slot> {
        self.slots.iter().find(|s| s.holds(key))
    }

    /// The slot for `key`, claiming one if needed; None if all 8 are live bans.
    /// Recycling a slot whose ended ban the sweep has not reported yet
    /// returns that end, for the caller to log after unlocking.
    fn find_or_claim(&self, key: [u64; 2], now: u64, region: &Region) -> Option<Claimed<'_>> {
        if let Some(slot) = self.find(key) {
            return Some(Claimed { slot, evicted: None });
        }
        let counters = region.counters();
        if let Some(slot) = self.slots.iter().find(|s| !s.in_use()) {
            counters.bump(Counter::EntriesUsed);
            slot.reset(key, now);
            return Some(Claimed { slot, evicted: None });
        }
        let victim = self.slots.iter().filter(|s| !s.banned_at(now)).min_by_key(|s| {
            let unreported = s.meta.load(Relaxed) & ANNOUNCED != 0;
            (
                unreported,
                s.offences.load(Relaxed) > 0,
                s.last_seen.load(Relaxed),
            )
        })?;
        let evicted = (victim.meta.load(Relaxed) & ANNOUNCED != 0).then(|| UnbanEvent {
            key: victim.key(region.cfg.ipv6_prefix),
            expired: true,
        });
        counters.bump(Counter::Evictions);
        victim.reset(key, now);
        Some(Claimed {
            slot: victim,
            evicted,
        })
    }
}

impl Region {
    fn lock_bucket(&self, key: [u64; 2]) -> Option<Locked<'_>> {
        let i = (bucket_hash(key, self.seed()) as usize) & (self.layout().buckets - 1);
        self.lock_index(i)
    }

    fn lock_index(&self, i: usize) -> Option<Locked<'_>> {
        let (word, slots): (&AtomicU32, _) = self.bucket(i);
        lock(word).map(|g| Locked { slots, _guard: g })
    }

    pub(crate) fn allowlisted(&self, bits: u128) -> bool {
        self.cfg.allow.iter().any(|c| c.contains(bits))
    }

    fn gcra(&self) -> Gcra {
        Gcra::from_config(&self.cfg)
    }

    fn escalation(&self) -> Escalation {
        Escalation::from_config(&self.cfg)
    }

    /// Count one request from `addr` (4 or 16 bytes) at `now`.
    pub fn check(&self, addr: &[u8], now: u64) -> Result<CheckResult, TableError> {
        let bits = address_bits(addr).ok_or(TableError::BadAddress)?;
        let c = self.counters();
        if self.allowlisted(bits) {
            c.bump(Counter::Allowlisted);
            return Ok(CheckResult::plain(Verdict::Allowlisted));
        }
        let key = Key::from_address_bits(bits, self.cfg.ipv6_prefix);
        let untracked = || {
            c.bump(Counter::Untracked);
            Ok(CheckResult::plain(Verdict::Untracked))
        };
        let Some(bucket) = self.lock_bucket(key.halves()) else {
            return untracked();
        };
        let Some(Claimed { slot, evicted }) = bucket.find_or_claim(key.halves(), now, self) else {
            drop(bucket);
            return untracked();
        };
        slot.hits.fetch_add(1, Relaxed);
        slot.last_seen.store(now, Relaxed);
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
        let (expired, ban) = start_ban(slot, key, now, None, Reason::Flood, &self.escalation());
        drop(bucket);
        self.report_end(evicted);
        c.bump(Counter::Limited);
        self.announce(expired, &ban, Some(addr));
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
        let key = Key::from_address_bits(bits, self.cfg.ipv6_prefix);
        let Some(bucket) = self.lock_bucket(key.halves()) else {
            return Ok(false);
        };
        let drop_it = match bucket.find(key.halves()) {
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
        let addr = crate::addr::parse_address(text).ok_or(TableError::BadAddress)?;
        let bits = u128::from_be_bytes(addr);
        self.ban_bits(bits, duration_ns, Reason::Manual, now)
            .map(|b| b.expect("a manual ban always starts"))
    }

    /// Ban the source of an offence (`reason`) with the escalated duration,
    /// unless it is allowlisted or already banned (then `Ok(None)`).
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
        let key = Key::from_address_bits(bits, self.cfg.ipv6_prefix);
        let bucket = self.lock_bucket(key.halves()).ok_or(TableError::Busy)?;
        let Claimed { slot, evicted } = bucket
            .find_or_claim(key.halves(), now, self)
            .ok_or(TableError::Full)?;
        if reason != Reason::Manual && slot.banned_at(now) {
            drop(bucket);
            self.report_end(evicted);
            return Ok(None);
        }
        let (expired, ban) = start_ban(slot, key, now, duration_ns, reason, &self.escalation());
        drop(bucket);
        self.report_end(evicted);
        self.announce(expired, &ban, Some(&bits.to_be_bytes()));
        Ok(Some(ban))
    }

    /// Lift the ban on `text`. Offence history is kept for escalation.
    pub fn unban(&self, text: &str, now: u64) -> Result<(), TableError> {
        let key = Key::parse(text, self.cfg.ipv6_prefix).ok_or(TableError::BadAddress)?;
        let bucket = self.lock_bucket(key.halves()).ok_or(TableError::Busy)?;
        let slot = bucket
            .find(key.halves())
            .filter(|s| s.banned_at(now))
            .ok_or(TableError::NotFound)?;
        slot.ban_until.store(now.max(1), Relaxed);
        slot.tat.store(0, Relaxed);
        slot.meta.fetch_and(!ANNOUNCED, Relaxed);
        drop(bucket);
        self.counters().bump(Counter::Unbans);
        UnbanEvent { key, expired: false }.log();
        Ok(())
    }

    /// Restore one saved entry (state file). `ban_until` may be in the past
    /// (an ended ban kept for its offence history).
    pub fn restore(
        &self,
        key: Key,
        ban_until: u64,
        offences: u32,
        reason: Reason,
        now: u64,
    ) -> Result<bool, TableError> {
        let bucket = self.lock_bucket(key.halves()).ok_or(TableError::Busy)?;
        let Claimed { slot, evicted } = bucket
            .find_or_claim(key.halves(), now, self)
            .ok_or(TableError::Full)?;
        slot.ban_until.store(ban_until.max(1), Relaxed);
        slot.offences.store(offences, Relaxed);
        let active = ban_until > now;
        let announced = if active { ANNOUNCED } else { 0 };
        slot.meta
            .store(IN_USE | announced | (reason as u32) << REASON_SHIFT, Relaxed);
        drop(bucket);
        self.report_end(evicted);
        if active {
            // Logged like any ban, so log readers (fail2ban) see it again.
            let ban = BanEvent {
                key,
                reason: Reason::Restored,
                duration_ns: remaining(ban_until, now),
                offences,
            };
            self.announce(None, &ban, None);
        }
        Ok(active)
    }

    /// Once a second: log bans that ended, forget stale offences, recount bans.
    pub fn sweep(&self, now: u64) {
        let forget = self.cfg.ban_forget_ns;
        let mut active = 0u64;
        for i in 0..self.layout().buckets {
            let mut ended = [None; SLOTS_PER_BUCKET];
            let Some(bucket) = self.lock_index(i) else {
                continue;
            };
            for (n, s) in bucket.slots.iter().enumerate().filter(|(_, s)| s.in_use()) {
                if s.banned_at(now) {
                    active += 1;
                    continue;
                }
                if s.meta.fetch_and(!ANNOUNCED, Relaxed) & ANNOUNCED != 0 {
                    ended[n] = Some(s.key(self.cfg.ipv6_prefix));
                }
                let until = s.ban_until.load(Relaxed);
                if until != 0 && until.saturating_add(forget) <= now {
                    s.offences.store(0, Relaxed);
                }
            }
            drop(bucket);
            for key in ended.into_iter().flatten() {
                self.report_end(Some(UnbanEvent { key, expired: true }));
            }
        }
        self.counters().set_gauge(Counter::ActiveBans, active);
    }

    /// Visit every in-use entry (bucket by bucket, calling `f` unlocked).
    /// Returns how many buckets could not be locked and were left out.
    pub fn for_each_entry(&self, now: u64, mut f: impl FnMut(&EntryInfo) -> bool) -> usize {
        let gcra = self.gcra();
        let mut skipped = 0;
        for i in 0..self.layout().buckets {
            let mut copied = [None; SLOTS_PER_BUCKET];
            let Some(bucket) = self.lock_index(i) else {
                skipped += 1;
                continue;
            };
            for (n, s) in bucket.slots.iter().enumerate().filter(|(_, s)| s.in_use()) {
                let until = s.ban_until.load(Relaxed);
                let banned = s.banned_at(now);
                copied[n] = Some(EntryInfo {
                    key: s.key(self.cfg.ipv6_prefix),
                    banned,
                    reason: s.reason(),
                    ban_ns: if banned { remaining(until, now) } else { 0 },
                    ban_until: until,
                    offences: s.offences.load(Relaxed),
                    load_pct: gcra.load_pct(s.tat.load(Relaxed), now),
                    hits: s.hits.load(Relaxed),
                    idle_ns: now.saturating_sub(s.last_seen.load(Relaxed)),
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
    let unreported_end = !live && slot.meta.load(Relaxed) & ANNOUNCED != 0;
    let expired = unreported_end.then_some(UnbanEvent { key, expired: true });
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
        .store(IN_USE | ANNOUNCED | (reason as u32) << REASON_SHIFT, Relaxed);
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
    use crate::clock::NS_PER_SEC as S;

    use crate::region::small_region as region;

    fn flood(r: &Region, addr: &[u8], now: u64, n: usize) -> Vec<Verdict> {
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
        let r = region(|c| c.set("allow", "127.0.0.0/30").unwrap());
        assert!(flood(&r, &A, T0, 1000).iter().all(|v| *v == Verdict::Allowlisted));
        assert_eq!(r.ban("127.0.0.2", None, T0), Err(TableError::Allowlisted));
    }

    #[test]
    fn ipv6_sources_in_one_prefix_share_an_entry() {
        let r = region(|_| {});
        let a = crate::addr::parse_address("2001:db8::1").unwrap();
        let b = crate::addr::parse_address("2001:db8::2").unwrap();
        flood(&r, &a, T0, 30);
        assert_eq!(r.check(&b, T0).unwrap().verdict, Verdict::Limited);
    }

    #[test]
    fn new_sources_never_evict_live_bans() {
        let r = region(|_| {}); // 64 entries
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
        assert!(c.get(Counter::EntriesUsed) <= 64);
        assert!(c.get(Counter::Evictions) > 99_000);
    }

    #[test]
    fn bucket_full_of_bans_passes_untracked() {
        let r = region(|c| c.table_size = 64);
        // Fill every slot with a ban, then a new source cannot be tracked.
        for n in 0..10_000u32 {
            let b = n.to_be_bytes();
            match r.ban(&format!("10.{}.{}.{}", b[1], b[2], b[3]), None, T0) {
                Ok(_) | Err(TableError::Full) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(r.counters().get(Counter::EntriesUsed), 64);
        let v = r.check(&[192, 0, 2, 1], T0).unwrap();
        assert_eq!(v.verdict, Verdict::Untracked);
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
        crate::log::capture(f)
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
