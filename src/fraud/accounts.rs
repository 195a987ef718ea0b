//! Accounts in a shared [`KeyedTable`]: calls up, call attempts per minute,
//! spend per hour, suspension.
//!
//! Spend per hour = cost of finished calls (attributed when they end, in a
//! two-bucket sliding hour) + the running exposure of answered calls still
//! up. Exposure is O(1): the account keeps Σrate and Σ(rate × start) of its
//! answered calls, so exposure(now) = (now × Σrate − Σ(rate × start)) / 60 s.
//!
//! An entry with calls up or a suspension is never evicted, so a call's
//! count cannot be lost; a bucket full of such entries fails closed.

use super::money::{cost, Money};
use crate::shm::keyed::{store_name, Entry, FixedName, KeyedError, KeyedTable, TableArea};
use crate::shm::store::{Plan, Store};
use crate::shm::{assert_layout, Shared};
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;

pub const NAME_BYTES: usize = 64;
const NS_PER_MS: u64 = 1_000_000;
const MINUTE_NS: u64 = 60_000_000_000;
const HOUR_NS: u64 = 60 * MINUTE_NS;

const SUSPENDED: u32 = 1;
const CPM_WARNED: u32 = 2;
const SPEND_WARNED: u32 = 4;
/// The suspension event route has yet to run (the timer runs it).
const EVENT_PENDING: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Reason {
    Cpm = 1,
    Spend = 2,
    Rpc = 3,
    /// Spend far above the account's learnt baseline (the `baseline` module).
    Anomaly = 4,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Cpm => "cpm",
            Reason::Spend => "spend",
            Reason::Rpc => "rpc",
            Reason::Anomaly => "anomaly",
        }
    }
    pub fn from_u32(v: u32) -> Option<Reason> {
        [Reason::Cpm, Reason::Spend, Reason::Rpc, Reason::Anomaly]
            .into_iter()
            .find(|r| *r as u32 == v)
    }
    pub fn from_name(s: &str) -> Option<Reason> {
        [Reason::Cpm, Reason::Spend, Reason::Rpc, Reason::Anomaly]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// A count over a sliding window, estimated from two fixed buckets.
#[repr(C)]
#[derive(Default)]
struct Window {
    idx: AtomicU64,
    cur: AtomicU64,
    prev: AtomicU64,
}

impl Window {
    fn roll(&self, now: u64, len: u64) {
        let w = now / len;
        let idx = self.idx.load(Relaxed);
        // A process whose clock read came just before another's may take
        // the lock after it: never roll back.
        if w > idx {
            let carry = if w == idx + 1 { self.cur.load(Relaxed) } else { 0 };
            self.prev.store(carry, Relaxed);
            self.cur.store(0, Relaxed);
            self.idx.store(w, Relaxed);
        }
    }
    fn add(&self, now: u64, len: u64, v: u64) {
        self.roll(now, len);
        self.cur.fetch_add(v, Relaxed);
    }
    fn estimate(&self, now: u64, len: u64) -> u64 {
        self.roll(now, len);
        let left = len - now % len;
        // The previous bucket's share, rounded up: rounded down, three
        // attempts just before a bucket's end and one just after counted
        // 2 + 1, one short of what the last minute held, so a limit could
        // be passed by one near every boundary.
        let prev = (self.prev.load(Relaxed) as u128 * left as u128).div_ceil(len as u128) as u64;
        prev.saturating_add(self.cur.load(Relaxed))
    }
    fn clear(&self) {
        self.idx.store(0, Relaxed);
        self.cur.store(0, Relaxed);
        self.prev.store(0, Relaxed);
    }
}

#[repr(C)]
#[derive(Default)]
pub struct Account {
    name: [AtomicU64; NAME_BYTES / 8],
    name_len: AtomicU32,
    active: AtomicU32,
    flags: AtomicU32,
    reason: AtomicU32,
    since_wall_ms: AtomicU64,
    last_ns: AtomicU64,
    attempts: Window,
    spend: Window,
    /// Σ rate of answered calls up.
    run_rate: AtomicU64,
    /// Σ rate × effective start (ms), a u128 in two words.
    run_base: [AtomicU64; 2],
    /// Last unsuspend (ms): exposure before it is forgiven.
    forgive_ms: AtomicU64,
}

impl Account {
    /// The account's name, copied onto the stack (no allocation).
    pub(super) fn name_copy(&self) -> FixedName<NAME_BYTES> {
        FixedName::<NAME_BYTES>::load(&self.name, &self.name_len)
    }
    fn base(&self) -> u128 {
        (self.run_base[1].load(Relaxed) as u128) << 64 | self.run_base[0].load(Relaxed) as u128
    }
    fn set_base(&self, v: u128) {
        self.run_base[0].store(v as u64, Relaxed);
        self.run_base[1].store((v >> 64) as u64, Relaxed);
    }
    fn exposure(&self, now_ms: u64) -> u64 {
        let up = (now_ms as u128 * self.run_rate.load(Relaxed) as u128).saturating_sub(self.base());
        (up / 60_000).min(u64::MAX as u128) as u64
    }
    fn usage(&self, now: u64) -> Usage {
        Usage {
            cpm: self.attempts.estimate(now, MINUTE_NS),
            spend: Money(
                self.spend
                    .estimate(now, HOUR_NS)
                    .saturating_add(self.exposure(now / NS_PER_MS)),
            ),
        }
    }
    fn flag(&self, f: u32) -> bool {
        self.flags.load(Relaxed) & f != 0
    }
    fn suspend(&self, reason: Reason, wall_ms: u64) {
        self.flags.fetch_or(SUSPENDED | EVENT_PENDING, Relaxed);
        self.reason.store(reason as u32, Relaxed);
        self.since_wall_ms.store(wall_ms, Relaxed);
    }
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for Account {}
const _: () = assert_layout::<Account>(176, 8);

impl Entry for Account {
    fn clear(&self) {
        for w in &self.name {
            w.store(0, Relaxed);
        }
        for a in [&self.name_len, &self.active, &self.flags, &self.reason] {
            a.store(0, Relaxed);
        }
        for a in [
            &self.since_wall_ms,
            &self.last_ns,
            &self.run_rate,
            &self.run_base[0],
            &self.run_base[1],
            &self.forgive_ms,
        ] {
            a.store(0, Relaxed);
        }
        self.attempts.clear();
        self.spend.clear();
    }
    /// Never with calls up or a suspension; otherwise once what it counts
    /// has run out: a minute of attempts, or an hour when it has spent.
    fn evictable(&self, now: u64) -> bool {
        let spent = self.spend.cur.load(Relaxed) | self.spend.prev.load(Relaxed) != 0;
        let keep = if spent { HOUR_NS } else { MINUTE_NS };
        self.active.load(Relaxed) == 0
            && self.flags.load(Relaxed) & (SUSPENDED | EVENT_PENDING) == 0
            && now.saturating_sub(self.last_ns.load(Relaxed)) > keep
    }
}

/// Per-account velocity now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub cpm: u64,
    pub spend: Money,
}

/// A threshold crossed, to be logged once the bucket lock is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    pub reason: Reason,
    pub value: u64,
    pub threshold: u64,
}

impl Crossing {
    pub fn value_text(&self) -> Amount {
        Amount(self.reason, self.value)
    }
    pub fn threshold_text(&self) -> Amount {
        Amount(self.reason, self.threshold)
    }
}

/// A number as its reason counts it: attempts, money, or none ("-", by hand).
pub struct Amount(Reason, u64);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Reason::Spend | Reason::Anomaly => write!(f, "{}", Money(self.1)),
            Reason::Cpm => write!(f, "{}", self.1),
            Reason::Rpc => f.write_str("-"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub cpm_warning: u64,
    pub cpm_critical: u64,
    pub spend_warning: u64,
    pub spend_critical: u64,
}

/// What an evaluation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    pub warnings: [Option<Crossing>; 2],
    pub suspended_now: Option<Crossing>,
    /// Suspended before this call.
    pub was_suspended: bool,
}

fn over(value: u64, threshold: u64) -> bool {
    threshold > 0 && value > threshold
}

impl Thresholds {
    /// Compare `a`'s usage with the thresholds; warn once per crossing,
    /// suspend on a critical one. Under the bucket lock.
    /// `remote`: the usage the cluster's other nodes count for the account.
    fn evaluate(&self, a: &Account, now: u64, wall_ms: u64, remote: Usage) -> Verdict {
        let own = a.usage(now);
        let u = Usage {
            cpm: own.cpm.saturating_add(remote.cpm),
            spend: Money(own.spend.0.saturating_add(remote.spend.0)),
        };
        let mut v = Verdict {
            was_suspended: a.flag(SUSPENDED),
            ..Default::default()
        };
        let checks = [
            (
                Reason::Cpm,
                u.cpm,
                self.cpm_warning,
                self.cpm_critical,
                CPM_WARNED,
            ),
            (
                Reason::Spend,
                u.spend.0,
                self.spend_warning,
                self.spend_critical,
                SPEND_WARNED,
            ),
        ];
        for (i, (reason, value, warn, crit, flag)) in checks.into_iter().enumerate() {
            if over(value, warn) {
                if !a.flag(flag) {
                    a.flags.fetch_or(flag, Relaxed);
                    v.warnings[i] = Some(Crossing {
                        reason,
                        value,
                        threshold: warn,
                    });
                }
            } else {
                a.flags.fetch_and(!flag, Relaxed);
            }
            if !v.was_suspended && v.suspended_now.is_none() && over(value, crit) {
                a.suspend(reason, wall_ms);
                v.suspended_now = Some(Crossing {
                    reason,
                    value,
                    threshold: crit,
                });
            }
        }
        v
    }
}

/// One call, in the host's shared memory (zeroed by the host); the dialog
/// callbacks of every process reach it. `state` makes its end count once.
#[repr(C)]
#[derive(Default)]
pub struct CallTicket {
    key: [AtomicU64; 2],
    rate: AtomicU64,
    answered_ms: AtomicU64,
    state: AtomicU32,
    _pad: AtomicU32,
}

// SAFETY: repr(C) struct of atomics; the host may also keep it in its own shared memory.
unsafe impl Shared for CallTicket {}
// The C header's sipguard_call: uint64_t opaque[5].
const _: () = assert_layout::<CallTicket>(40, 8);

/// States of a ticket; 0 is "never armed".
const CALL_UP: u32 = 1;
const CALL_ANSWERED: u32 = 2;
const CALL_ENDED: u32 = 3;

impl CallTicket {
    pub fn is_live(&self) -> bool {
        matches!(self.state.load(Acquire), CALL_UP | CALL_ANSWERED)
    }

    /// The account table's key of the call's account ([`Accounts::key_of`]).
    pub fn account_key(&self) -> [u64; 2] {
        Accounts::ticket_key(self)
    }

    /// What the call has cost by `now` if it is answered and up, else 0.
    pub fn cost_by(&self, now: u64) -> u64 {
        if self.state.load(Acquire) != CALL_ANSWERED {
            return 0;
        }
        let start = self.answered_ms.load(Relaxed);
        cost(self.rate.load(Relaxed), (now / NS_PER_MS).saturating_sub(start))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Admitted { active: u32 },
    LimitReached { active: u32, limit: u32 },
    Suspended,
}

/// One account as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: Vec<u8>,
    pub active: u32,
    pub usage: Usage,
    pub suspended: Option<Reason>,
    pub since_wall_ms: u64,
}

/// What a sweep found: threshold crossings, then suspensions whose event is due.
pub type Swept = (Vec<(Vec<u8>, Verdict)>, Vec<(Vec<u8>, Reason)>);

pub struct Accounts {
    table: KeyedTable<Account>,
    pub th: Thresholds,
    /// Cluster replication, when on: the peers' usage counts with this
    /// node's ([`super::replica`]).
    pub(super) cluster: Option<crate::cluster::Cluster>,
}

fn touch(a: &Account, name: &[u8], new: bool, now: u64) {
    if new {
        store_name(&a.name, &a.name_len, name);
    }
    a.last_ns.store(now, Relaxed);
}

impl Accounts {
    /// Plan a table of at least `entries` accounts.
    pub fn plan(plan: &mut Plan, entries: u64) -> TableArea<Account> {
        KeyedTable::plan(plan, *b"ACCT", entries)
    }

    /// The table at `area` of `store`.
    pub fn attach(store: &Arc<Store>, area: TableArea<Account>, th: Thresholds) -> Accounts {
        Accounts {
            table: KeyedTable::attach(store, area),
            th,
            cluster: None,
        }
    }

    /// A table in a mapping of its own.
    pub fn create(entries: u64, th: Thresholds) -> Result<Accounts, String> {
        Store::alone(|p| Self::plan(p, entries), |s, a| Self::attach(s, a, th))
    }

    pub fn capacity(&self) -> u64 {
        self.table.capacity()
    }

    /// Count a call attempt and evaluate. Allocates nothing.
    pub fn attempt(&self, name: &[u8], now: u64, wall_ms: u64) -> Result<Verdict, KeyedError> {
        let key = self.table.name_key(name);
        self.table.with(key, now, true, |a, new| {
            touch(a, name, new, now);
            a.attempts.add(now, MINUTE_NS, 1);
            self.th.evaluate(a, now, wall_ms, self.remote_usage(a))
        })
    }

    /// Admit a call while the account has fewer than `limit` up (0: no
    /// limit); on admission the ticket is armed.
    pub fn start(
        &self,
        name: &[u8],
        limit: u32,
        rate: Money,
        now: u64,
        ticket: &CallTicket,
    ) -> Result<Start, KeyedError> {
        let key = self.table.name_key(name);
        self.table.with(key, now, true, |a, new| {
            touch(a, name, new, now);
            if a.flag(SUSPENDED) {
                return Start::Suspended;
            }
            let active = a.active.load(Relaxed);
            if limit > 0 && active >= limit {
                return Start::LimitReached { active, limit };
            }
            a.active.store(active + 1, Relaxed);
            ticket.key[0].store(key[0], Relaxed);
            ticket.key[1].store(key[1], Relaxed);
            ticket.rate.store(rate.0, Relaxed);
            ticket.answered_ms.store(0, Relaxed);
            ticket.state.store(CALL_UP, Release);
            Start::Admitted { active: active + 1 }
        })
    }

    fn ticket_key(ticket: &CallTicket) -> [u64; 2] {
        [ticket.key[0].load(Relaxed), ticket.key[1].load(Relaxed)]
    }

    /// The call was answered: its spend runs from now.
    pub fn answer(&self, ticket: &CallTicket, now: u64) -> Result<(), KeyedError> {
        if ticket.state.load(Acquire) != CALL_UP {
            return Ok(());
        }
        let bucket = self.table.bucket(Self::ticket_key(ticket))?;
        let Some(cell) = bucket.find(Self::ticket_key(ticket)) else {
            return Ok(());
        };
        let a = cell.entry();
        if ticket
            .state
            .compare_exchange(CALL_UP, CALL_ANSWERED, AcqRel, Acquire)
            .is_ok()
        {
            let ms = now / NS_PER_MS;
            let rate = ticket.rate.load(Relaxed);
            ticket.answered_ms.store(ms, Relaxed);
            a.run_rate.fetch_add(rate, Relaxed);
            a.set_base(a.base() + rate as u128 * ms as u128);
        }
        Ok(())
    }

    /// The call ended (any way): count it down once; its cost joins the
    /// hour's spend. Ok(false): already ended. Busy: nothing changed, retry.
    pub fn end(&self, ticket: &CallTicket, now: u64) -> Result<bool, KeyedError> {
        if !ticket.is_live() {
            return Ok(false);
        }
        let key = Self::ticket_key(ticket);
        let bucket = self.table.bucket(key)?;
        let prev = ticket.state.swap(CALL_ENDED, AcqRel);
        if !matches!(prev, CALL_UP | CALL_ANSWERED) {
            return Ok(false);
        }
        let Some(cell) = bucket.find(key) else {
            return Ok(true);
        };
        let a = cell.entry();
        a.active.store(a.active.load(Relaxed).saturating_sub(1), Relaxed);
        a.last_ns.store(now, Relaxed);
        if prev == CALL_ANSWERED {
            let rate = ticket.rate.load(Relaxed);
            let start = ticket.answered_ms.load(Relaxed).max(a.forgive_ms.load(Relaxed));
            let now_ms = (now / NS_PER_MS).max(start);
            a.spend.add(now, HOUR_NS, cost(rate, now_ms - start));
            a.run_rate
                .store(a.run_rate.load(Relaxed).saturating_sub(rate), Relaxed);
            a.set_base(a.base().saturating_sub(rate as u128 * start as u128));
        }
        Ok(true)
    }

    /// Suspend by hand. Ok(false): it already was.
    pub fn suspend(&self, name: &[u8], reason: Reason, now: u64, wall_ms: u64) -> Result<bool, KeyedError> {
        let key = self.table.name_key(name);
        self.table.with(key, now, true, |a, new| {
            touch(a, name, new, now);
            if a.flag(SUSPENDED) {
                return false;
            }
            a.suspend(reason, wall_ms);
            true
        })
    }

    /// Restore a saved suspension (no event: it ran before the restart).
    pub fn restore(
        &self,
        name: &[u8],
        reason: Reason,
        since_wall_ms: u64,
        now: u64,
    ) -> Result<(), KeyedError> {
        let key = self.table.name_key(name);
        self.table.with(key, now, true, |a, new| {
            touch(a, name, new, now);
            a.flags.fetch_or(SUSPENDED, Relaxed);
            a.reason.store(reason as u32, Relaxed);
            a.since_wall_ms.store(since_wall_ms, Relaxed);
        })
    }

    /// Lift a suspension; what was counted so far is forgiven (attempts,
    /// spend, the exposure of calls up until now), else the next sweep
    /// would suspend again at once. NotFound: not suspended.
    pub fn unsuspend(&self, name: &[u8], now: u64) -> Result<(), KeyedError> {
        let key = self.table.name_key(name);
        self.table.with(key, now, false, |a, _| {
            if !a.flag(SUSPENDED) {
                return Err(KeyedError::NotFound);
            }
            a.flags.store(0, Relaxed);
            a.reason.store(0, Relaxed);
            a.since_wall_ms.store(0, Relaxed);
            a.attempts.clear();
            a.spend.clear();
            let ms = now / NS_PER_MS;
            a.forgive_ms.store(ms, Relaxed);
            a.set_base(a.run_rate.load(Relaxed) as u128 * ms as u128);
            Ok(())
        })?
    }

    /// Timer work: evaluate accounts with calls up (their exposure grows
    /// with no new attempt) and hand over suspensions whose event route has
    /// yet to run (unless `take_events` is false: they stay pending).
    /// Returns (name, crossing if the sweep itself suspended).
    pub fn sweep(&self, now: u64, wall_ms: u64, take_events: bool) -> Swept {
        let mut crossed = Vec::new();
        let mut pending = Vec::new();
        // Under each bucket lock: evaluate, and copy what was found into
        // fixed arrays; the Vecs grow after the lock is released.
        self.table.for_each_copied(
            |cell| {
                let a = cell.entry();
                let mut found = (None, None);
                if a.run_rate.load(Relaxed) > 0 && !a.flag(SUSPENDED) {
                    let v = self.th.evaluate(a, now, wall_ms, self.remote_usage(a));
                    if v.suspended_now.is_some() || v.warnings.iter().any(Option::is_some) {
                        found.0 = Some(v);
                    }
                }
                if take_events && a.flag(EVENT_PENDING) {
                    a.flags.fetch_and(!EVENT_PENDING, Relaxed);
                    found.1 = Some(Reason::from_u32(a.reason.load(Relaxed)).unwrap_or(Reason::Rpc));
                }
                let name = (found.0.is_some() || found.1.is_some())
                    .then(|| FixedName::<NAME_BYTES>::load(&a.name, &a.name_len));
                (name, found)
            },
            |(name, (v, reason))| {
                if let Some(name) = name {
                    if let Some(v) = v {
                        crossed.push((name.as_bytes().to_vec(), v));
                    }
                    if let Some(reason) = reason {
                        pending.push((name.as_bytes().to_vec(), reason));
                    }
                }
                true
            },
        );
        (crossed, pending)
    }

    /// Every account in use (`f` returns false to stop); returns buckets
    /// skipped. `f` runs with no bucket lock held (it may be slow: an RPC
    /// reply, the state file), on copies taken a bucket at a time into
    /// fixed arrays (nothing is allocated under the lock).
    pub fn list(&self, now: u64, mut f: impl FnMut(AccountInfo) -> bool) -> usize {
        self.table.for_each_copied(
            |cell| {
                let a = cell.entry();
                let suspended = a.flag(SUSPENDED);
                (
                    FixedName::<NAME_BYTES>::load(&a.name, &a.name_len),
                    a.active.load(Relaxed),
                    a.usage(now),
                    if suspended {
                        Reason::from_u32(a.reason.load(Relaxed)).or(Some(Reason::Rpc))
                    } else {
                        None
                    },
                    a.since_wall_ms.load(Relaxed),
                )
            },
            |(name, active, usage, suspended, since_wall_ms)| {
                f(AccountInfo {
                    name: name.as_bytes().to_vec(),
                    active,
                    usage,
                    suspended,
                    since_wall_ms,
                })
            },
        )
    }

    /// The key of an account name in this table.
    pub fn key_of(&self, name: &[u8]) -> [u64; 2] {
        self.table.name_key(name)
    }

    /// Accounts not suspended whose spend in the hour is over `floor`:
    /// (name, spend), copied out a bucket at a time.
    pub fn spending(&self, now: u64, floor: Money) -> Vec<(Vec<u8>, Money)> {
        let mut out = Vec::new();
        self.table.for_each_copied(
            |cell| {
                let a = cell.entry();
                let spend = a.usage(now).spend;
                (spend > floor && !a.flag(SUSPENDED))
                    .then(|| (FixedName::<NAME_BYTES>::load(&a.name, &a.name_len), spend))
            },
            |found| {
                if let Some((name, spend)) = found {
                    out.push((name.as_bytes().to_vec(), spend));
                }
                true
            },
        );
        out
    }

    /// Calls up over all accounts.
    pub fn active_calls(&self) -> u64 {
        let mut n = 0u64;
        self.table.for_each(|cell| {
            n += cell.entry().active.load(Relaxed) as u64;
            true
        });
        n
    }

    /// Accounts suspended now (the timer's gauge: one walk a second).
    pub fn suspended(&self) -> u64 {
        let mut n = 0u64;
        self.table.for_each(|cell| {
            n += cell.entry().flag(SUSPENDED) as u64;
            true
        });
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_a_burst_across_a_bucket_boundary_whole() {
        const LEN: u64 = 60_000_000_000;
        let w = Window::default();
        // three attempts in the last second of one minute, one just after
        for _ in 0..3 {
            w.add(2 * LEN - 1_000_000_000, LEN, 1);
        }
        w.add(2 * LEN + 1_000_000, LEN, 1);
        assert_eq!(w.estimate(2 * LEN + 1_000_000, LEN), 4);
        // the earlier minute still fades out, and is gone after a whole one
        assert_eq!(w.estimate(3 * LEN - 1, LEN), 2);
        assert_eq!(w.estimate(4 * LEN, LEN), 0);
    }

    const S: u64 = 1_000_000_000;

    fn accounts(th: Thresholds) -> Accounts {
        Accounts::create(64, th).unwrap()
    }

    #[test]
    fn limit_holds_and_ends_count_once() {
        let a = accounts(Thresholds::default());
        let t: Vec<CallTicket> = (0..3).map(|_| CallTicket::default()).collect();
        assert_eq!(
            a.start(b"alice", 2, Money(0), S, &t[0]),
            Ok(Start::Admitted { active: 1 })
        );
        assert_eq!(
            a.start(b"alice", 2, Money(0), S, &t[1]),
            Ok(Start::Admitted { active: 2 })
        );
        assert_eq!(
            a.start(b"alice", 2, Money(0), S, &t[2]),
            Ok(Start::LimitReached { active: 2, limit: 2 })
        );
        assert!(!t[2].is_live());
        assert_eq!(a.end(&t[0], 2 * S), Ok(true));
        assert_eq!(a.end(&t[0], 2 * S), Ok(false), "a second end does nothing");
        assert_eq!(a.end(&t[2], 2 * S), Ok(false), "a refused call never counted");
        assert_eq!(a.active_calls(), 1);
        a.answer(&t[1], 3 * S).unwrap();
        assert_eq!(a.end(&t[1], 4 * S), Ok(true));
        assert_eq!(a.active_calls(), 0);
    }

    #[test]
    fn spend_runs_while_answered_and_suspends() {
        // 1.5/min premium; critical at 3.0 per hour, warning at 1.0.
        let a = accounts(Thresholds {
            spend_warning: 10_000,
            spend_critical: 30_000,
            ..Default::default()
        });
        let t = CallTicket::default();
        a.start(b"bob", 0, Money(15_000), 10 * S, &t).unwrap();
        a.answer(&t, 10 * S).unwrap();
        let (crossed, _) = a.sweep(50 * S, 1, true);
        assert!(crossed.is_empty(), "40 s = 1.0: not over the warning");
        let (crossed, _) = a.sweep(60 * S, 1, true);
        assert_eq!(crossed[0].1.warnings[1].unwrap().reason, Reason::Spend);
        assert_eq!(crossed[0].1.suspended_now, None);
        let (crossed, pending) = a.sweep(135 * S, 1, true);
        let c = crossed[0].1.suspended_now.unwrap();
        assert_eq!(
            (c.reason, c.value_text().to_string()),
            (Reason::Spend, "3.1250".into())
        );
        assert_eq!(pending, vec![(b"bob".to_vec(), Reason::Spend)]);
        assert!(
            a.sweep(136 * S, 1, true).1.is_empty(),
            "the event is handed over once"
        );
        let t2 = CallTicket::default();
        assert_eq!(a.start(b"bob", 0, Money(0), 136 * S, &t2), Ok(Start::Suspended));
        // Unsuspend forgives; the call still up is charged from then on.
        a.unsuspend(b"bob", 140 * S).unwrap();
        assert_eq!(a.unsuspend(b"bob", 140 * S), Err(KeyedError::NotFound));
        a.end(&t, 200 * S).unwrap();
        let mut spend = Money(0);
        a.list(200 * S, |i| {
            spend = i.usage.spend;
            true
        });
        assert_eq!(spend, Money(15_000), "60 s after the unsuspend at 1.5/min");
    }

    #[test]
    fn idle_accounts_make_room_live_ones_do_not() {
        // One bucket of 8.
        let a8 = Accounts::create(8, Thresholds::default()).unwrap();
        let t = CallTicket::default();
        a8.start(b"up", 0, Money(0), S, &t).unwrap();
        a8.suspend(b"bad", Reason::Rpc, S, 0).unwrap();
        let spender = CallTicket::default();
        a8.start(b"spender", 0, Money(60_000), S, &spender).unwrap();
        a8.answer(&spender, S).unwrap();
        a8.end(&spender, 2 * S).unwrap();
        for i in 0..5u8 {
            a8.attempt(&[b'x', i], S, 0).unwrap();
        }
        assert_eq!(a8.attempt(b"new", 30 * S, 0), Err(KeyedError::Full));
        // After a minute the attempts alone no longer hold their cells.
        assert!(a8.attempt(b"new", 70 * S, 0).is_ok());
        let mut names = Vec::new();
        a8.list(70 * S, |i| {
            names.push(i.name);
            true
        });
        for kept in [&b"up"[..], b"bad", b"spender", b"new"] {
            assert!(names.iter().any(|n| n == kept), "{kept:?} in {names:?}");
        }
    }

    #[test]
    fn listing_holds_no_lock_while_it_reports() {
        // One bucket: with its lock held during the callback, the attempt
        // below would spin out and fail Busy.
        let a = Accounts::create(8, Thresholds::default()).unwrap();
        for n in [&b"ann"[..], b"ben", b"cid"] {
            a.attempt(n, S, 0).unwrap();
        }
        let mut seen = 0;
        let skipped = a.list(S, |i| {
            seen += 1;
            assert!(a.attempt(&i.name, S, 0).is_ok(), "{:?}", i.name);
            true
        });
        assert_eq!((seen, skipped), (3, 0));
    }

    #[test]
    fn a_late_clock_read_does_not_roll_back() {
        let w = Window::default();
        w.add(61 * S, MINUTE_NS, 1);
        w.add(59 * S, MINUTE_NS, 1);
        assert_eq!(w.estimate(61 * S, MINUTE_NS), 2);
    }

    #[test]
    fn attempts_per_minute_suspend() {
        let a = accounts(Thresholds {
            cpm_warning: 2,
            cpm_critical: 4,
            ..Default::default()
        });
        let mut got = Vec::new();
        for i in 0..6 {
            got.push(a.attempt(b"carol", 100 * S + i, 7).unwrap());
        }
        assert!(got[2].warnings[0].is_some() && got[3].warnings[0].is_none());
        assert_eq!(got[4].suspended_now.unwrap().value, 5);
        assert!(got[5].was_suspended);
        // Two minutes later the window is empty, but the suspension stays.
        let v = a.attempt(b"carol", 300 * S, 7).unwrap();
        assert!(v.was_suspended && v.suspended_now.is_none());
    }
}
