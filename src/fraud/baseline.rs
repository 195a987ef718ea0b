//! Each account's normal, learnt: the destinations (country calling code,
//! class) it called in the last `baseline_days`, and its usual spend per
//! hour of the week. A call to a destination of an `anomaly_classes` class
//! the account has not called, or an hour's spend far above its own usual
//! (over `spend_anomaly_factor` × the usual and over `spend_anomaly_floor`),
//! is an anomaly: logged, counted, handed to the host's event route, and by
//! `anomaly_action` allowed with a warning or refused (a new destination
//! gets a refusal, a spend anomaly suspends the account).
//!
//! One fixed-size entry per account in a shared [`KeyedTable`] keyed by the
//! account table's key of the name (so the end of a call, which knows only
//! that key, finds it): [`DEST_SLOTS`] destinations with the day each was
//! last called (the least recently called is replaced), and 168 hour-of-week
//! buckets of spend, each an average over the weeks seen, then an
//! exponentially weighted one over `baseline_days` / 7 weeks (money in
//! ten-thousandths, u32, saturating). A spend is learnt when its call ends;
//! an hour's total joins its bucket when the account's next hour starts.
//! Hours are UTC.

pub use super::baseline_config::{Action, BaselineConfig};
use super::money::Money;
use super::rules::Class;
use crate::shm::keyed::{store_name, Entry, KeyedError, KeyedTable, TableArea};
use crate::shm::store::{Plan, Store};
use crate::shm::{assert_layout, Shared};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub const DEST_SLOTS: usize = 16;
pub const HOURS_OF_WEEK: usize = 168;
const NAME_WORDS: usize = super::accounts::NAME_BYTES / 8;
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// Idle hours folded in one go when an account comes back (four weeks:
/// past that its buckets have decayed to next to nothing anyway).
const MAX_FOLD: u32 = 4 * HOURS_OF_WEEK as u32;

/// An anomaly's event route has yet to run (the timer runs it).
const EVENT_PENDING: u32 = 1;

/// Hour of the week of a Unix hour, Monday 00:00 UTC = 0 (1970-01-01 was a
/// Thursday).
pub fn hour_of_week(unix_hour: u32) -> usize {
    ((unix_hour as u64 + 72) % HOURS_OF_WEEK as u64) as usize
}

/// A destination: country calling code and class, packed (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    pub cc: u16,
    pub class: Class,
}

impl Dest {
    fn packed(self) -> u32 {
        (self.class as u32) << 16 | self.cc as u32
    }
    fn unpack(v: u32) -> Option<Dest> {
        Some(Dest {
            cc: v as u16,
            class: Class::from_u32(v >> 16)?,
        })
    }
    /// The destination of `e164` (digits, no `+`) in `class`; country 0
    /// when the digits start with no assigned country code.
    pub fn of(e164: &[u8], class: Class) -> Dest {
        let cc = super::dial::country_code_len(e164).map_or(0, |n| {
            e164[..n].iter().fold(0u16, |a, d| a * 10 + (d - b'0') as u16)
        });
        Dest { cc, class }
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{} {}", self.cc, self.class.name())
    }
}

#[repr(C)]
pub struct Baseline {
    name: [AtomicU64; NAME_WORDS],
    name_len: AtomicU32,
    flags: AtomicU32,
    /// Unix hour the baseline began (its first call, or the seed's first).
    first_hour: AtomicU32,
    /// The Unix hour `hour_spend` counts; 0 = none yet.
    hour: AtomicU32,
    hour_spend: AtomicU64,
    /// Last Unix hour a spend anomaly was raised (once an hour).
    anomaly_hour: AtomicU32,
    /// The pending event: 1 destination (a = packed Dest), 2 spend (a =
    /// value, b = threshold).
    event_kind: AtomicU32,
    event_a: AtomicU64,
    event_b: AtomicU64,
    /// Day (Unix days) << 32 | packed Dest; 0 = free.
    dests: [AtomicU64; DEST_SLOTS],
    /// Usual spend per hour of the week (money, saturating).
    spend: [AtomicU32; HOURS_OF_WEEK],
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for Baseline {}
const _: () = assert_layout::<Baseline>(912, 8);

impl Entry for Baseline {
    fn clear(&self) {
        for w in self.name.iter().chain(&self.dests) {
            w.store(0, Relaxed);
        }
        for a in [
            &self.name_len,
            &self.flags,
            &self.first_hour,
            &self.hour,
            &self.anomaly_hour,
            &self.event_kind,
        ] {
            a.store(0, Relaxed);
        }
        for a in [&self.hour_spend, &self.event_a, &self.event_b] {
            a.store(0, Relaxed);
        }
        for s in &self.spend {
            s.store(0, Relaxed);
        }
    }
    /// A baseline is history, not live state: the least recently used goes
    /// when a bucket is full, unless its event has yet to run.
    fn evictable(&self, _now: u64) -> bool {
        self.flags.load(Relaxed) & EVENT_PENDING == 0
    }
}

impl Baseline {
    /// Fold the hours since `hour` up to (not including) `h` into the
    /// buckets; `hour` becomes `h`.
    fn roll(&self, h: u32, weeks: u32) {
        let cur = self.hour.load(Relaxed);
        if cur == 0 {
            self.hour.store(h, Relaxed);
            return;
        }
        if h <= cur {
            return;
        }
        self.fold(cur, self.hour_spend.load(Relaxed), weeks);
        for idle in (cur + 1..h).take(MAX_FOLD as usize) {
            self.fold(idle, 0, weeks);
        }
        self.hour.store(h, Relaxed);
        self.hour_spend.store(0, Relaxed);
    }

    /// One finished hour's spend into its bucket: a plain average over the
    /// weeks seen so far, then weighted by 1/`weeks`.
    fn fold(&self, hour: u32, spent: u64, weeks: u32) {
        let seen = hour.saturating_sub(self.first_hour.load(Relaxed)) / HOURS_OF_WEEK as u32 + 1;
        let n = seen.min(weeks) as i64;
        let b = &self.spend[hour_of_week(hour)];
        let avg = b.load(Relaxed) as i64;
        let next = avg + (spent.min(u32::MAX as u64) as i64 - avg) / n;
        b.store(next.clamp(0, u32::MAX as i64) as u32, Relaxed);
    }

    /// Whether `d` was called within `days` of `day`; it is noted as called
    /// on `day` when `learn` (replacing a free, expired or the least
    /// recently called slot).
    fn dest(&self, d: Dest, day: u32, days: u32, learn: bool) -> bool {
        let want = d.packed() as u64;
        let fresh = |v: u64| v != 0 && day.saturating_sub((v >> 32) as u32) < days;
        let mut victim = 0;
        let mut oldest = u64::MAX;
        for (i, s) in self.dests.iter().enumerate() {
            let v = s.load(Relaxed);
            if v & 0xffff_ffff == want && fresh(v) {
                if learn && (v >> 32) < day as u64 {
                    s.store((day as u64) << 32 | want, Relaxed);
                }
                return true;
            }
            let age = if fresh(v) { v >> 32 } else { 0 };
            if age < oldest {
                oldest = age;
                victim = i;
            }
        }
        if learn {
            self.dests[victim].store((day as u64) << 32 | want, Relaxed);
        }
        false
    }

    fn raise(&self, kind: u32, a: u64, b: u64) -> bool {
        self.event_kind.store(kind, Relaxed);
        self.event_a.store(a, Relaxed);
        self.event_b.store(b, Relaxed);
        self.flags.fetch_or(EVENT_PENDING, Relaxed) & EVENT_PENDING == 0
    }
}

#[repr(C)]
#[derive(Default)]
struct Counters {
    destination: AtomicU64,
    spend: AtomicU64,
    /// Events raised and not yet handed over (the timer looks only then).
    pending: AtomicU64,
    /// Changes to learn from, and the count last saved.
    changes: AtomicU64,
    saved: AtomicU64,
    saved_ns: AtomicU64,
}

// SAFETY: repr(C) struct of atomics.
unsafe impl Shared for Counters {}
const _: () = assert_layout::<Counters>(48, 8);

/// Where the baseline areas lie in a plan.
pub struct BaselinePlan {
    table: TableArea<Baseline>,
    counters: usize,
}

/// An anomaly found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// First call to this destination in `baseline_days`.
    Destination(Dest),
    /// The hour's spend over `threshold` (factor × `usual`, at least the floor).
    Spend {
        value: Money,
        threshold: Money,
        usual: Money,
    },
}

impl Anomaly {
    pub fn kind(&self) -> &'static str {
        match self {
            Anomaly::Destination(_) => "destination",
            Anomaly::Spend { .. } => "spend",
        }
    }
    /// What the event route's `$sipguard(anomaly_detail)` says.
    pub fn detail(&self) -> String {
        match self {
            Anomaly::Destination(d) => d.to_string(),
            Anomaly::Spend { value, threshold, .. } => format!("{value} over {threshold}"),
        }
    }
}

/// Statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaselineStats {
    pub destination: u64,
    pub spend: u64,
}

/// One account's baseline as saved or seeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    pub name: Vec<u8>,
    pub first_hour: u32,
    pub hour: u32,
    pub hour_spend: u64,
    /// (day, dest)
    pub dests: Vec<(u32, Dest)>,
    pub spend: Vec<(usize, u32)>,
}

/// A baseline copied under its bucket lock into fixed arrays (nothing is
/// allocated under the lock); [`Copied::saved`] builds the lists after.
struct Copied {
    name: [u8; super::accounts::NAME_BYTES],
    name_len: usize,
    first_hour: u32,
    hour: u32,
    hour_spend: u64,
    dests: [u64; DEST_SLOTS],
    spend: [u32; HOURS_OF_WEEK],
}

impl Copied {
    fn of(b: &Baseline) -> Copied {
        let mut c = Copied {
            name: [0; super::accounts::NAME_BYTES],
            name_len: 0,
            first_hour: b.first_hour.load(Relaxed),
            hour: b.hour.load(Relaxed),
            hour_spend: b.hour_spend.load(Relaxed),
            dests: [0; DEST_SLOTS],
            spend: [0; HOURS_OF_WEEK],
        };
        c.name_len = crate::shm::keyed::load_name_into(&b.name, &b.name_len, &mut c.name);
        for (o, s) in c.dests.iter_mut().zip(&b.dests) {
            *o = s.load(Relaxed);
        }
        for (o, s) in c.spend.iter_mut().zip(&b.spend) {
            *o = s.load(Relaxed);
        }
        c
    }

    fn saved(&self) -> Saved {
        Saved {
            name: self.name[..self.name_len].to_vec(),
            first_hour: self.first_hour,
            hour: self.hour,
            hour_spend: self.hour_spend,
            dests: self
                .dests
                .iter()
                .filter(|v| **v != 0)
                .filter_map(|v| Some(((v >> 32) as u32, Dest::unpack(*v as u32)?)))
                .collect(),
            spend: self
                .spend
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0)
                .map(|(i, v)| (i, *v))
                .collect(),
        }
    }
}

pub struct Baselines {
    pub cfg: BaselineConfig,
    table: KeyedTable<Baseline>,
    store: Arc<Store>,
    counters: usize,
}

fn unix_hour(wall_ms: u64) -> u32 {
    (wall_ms / HOUR_MS).min(u32::MAX as u64) as u32
}

fn unix_day(wall_ms: u64) -> u32 {
    (wall_ms / DAY_MS) as u32
}

impl Baselines {
    pub fn plan(plan: &mut Plan, cfg: &BaselineConfig) -> BaselinePlan {
        BaselinePlan {
            table: KeyedTable::plan(plan, *b"BASE", cfg.table_size),
            counters: plan.array::<Counters>(*b"BCNT", 1).offset,
        }
    }

    pub fn attach(store: &Arc<Store>, areas: BaselinePlan, cfg: &BaselineConfig) -> Baselines {
        Baselines {
            cfg: cfg.clone(),
            table: KeyedTable::attach(store, areas.table),
            store: store.clone(),
            counters: areas.counters,
        }
    }

    /// Baselines in a mapping of their own (tests).
    pub fn create(cfg: &BaselineConfig) -> Result<Baselines, String> {
        Store::alone(|p| Self::plan(p, cfg), |s, a| Self::attach(s, a, cfg))
    }

    fn counters(&self) -> &Counters {
        self.store.at(self.counters, 0)
    }

    pub fn capacity(&self) -> u64 {
        self.table.capacity()
    }

    pub fn stats(&self) -> BaselineStats {
        let k = self.counters();
        BaselineStats {
            destination: k.destination.load(Relaxed),
            spend: k.spend.load(Relaxed),
        }
    }

    fn changed(&self) {
        self.counters().changes.fetch_add(1, Relaxed);
    }

    fn raised(&self, b: &Baseline, kind: u32, a: u64, x: u64) {
        if b.raise(kind, a, x) {
            self.counters().pending.fetch_add(1, Relaxed);
        }
    }

    /// Judge a call of `name` (account key `key`) to `dest`: an anomaly
    /// when its class is one of `anomaly_classes` and the account has not
    /// called it within `baseline_days`. The destination is learnt unless
    /// the anomaly refuses it. Allocates nothing; one bucket lock.
    pub fn dial(
        &self,
        key: [u64; 2],
        name: &[u8],
        dest: Dest,
        now: u64,
        wall_ms: u64,
    ) -> Result<Option<Anomaly>, KeyedError> {
        let day = unix_day(wall_ms);
        let flagged = self.cfg.classes & dest.class.bit() != 0;
        let refuse = self.cfg.action == Action::Refuse;
        let found = self.table.with(key, now, true, |b, new| {
            if new {
                store_name(&b.name, &b.name_len, name);
                b.first_hour.store(unix_hour(wall_ms), Relaxed);
            }
            let known = b.dest(dest, day, self.cfg.days, false);
            let anomaly = !known && flagged;
            // A refused destination is not learnt: it stays refused.
            if !(known || flagged && refuse) {
                b.dest(dest, day, self.cfg.days, true);
            }
            if anomaly {
                self.raised(b, 1, dest.packed() as u64, 0);
            }
            (anomaly, !known)
        })?;
        if found.1 {
            self.changed();
        }
        Ok(found.0.then(|| {
            self.counters().destination.fetch_add(1, Relaxed);
            Anomaly::Destination(dest)
        }))
    }

    /// Learn what an ended call cost (`key`: its account's key). An account
    /// with no baseline yet (no dial check) is not learnt.
    pub fn spent(&self, key: [u64; 2], cost: u64, now: u64, wall_ms: u64) {
        let h = unix_hour(wall_ms);
        let weeks = self.cfg.weeks();
        let done = self.table.with(key, now, false, |b, _| {
            b.roll(h, weeks);
            b.hour_spend.fetch_add(cost, Relaxed);
        });
        if done.is_ok() && cost > 0 {
            self.changed();
        }
    }

    /// The account's hour's spend `spend` against its usual for this hour
    /// of the week: an anomaly (once an hour) over `spend_anomaly_factor` ×
    /// usual and over `spend_anomaly_floor`.
    pub fn spend_check(
        &self,
        key: [u64; 2],
        name: &[u8],
        spend: Money,
        now: u64,
        wall_ms: u64,
    ) -> Result<Option<Anomaly>, KeyedError> {
        if self.cfg.spend_factor == 0 || spend <= self.cfg.spend_floor {
            return Ok(None);
        }
        let h = unix_hour(wall_ms);
        let found = self.table.with(key, now, true, |b, new| {
            if new {
                store_name(&b.name, &b.name_len, name);
                b.first_hour.store(h, Relaxed);
            }
            b.roll(h, self.cfg.weeks());
            let usual = Money(b.spend[hour_of_week(h)].load(Relaxed) as u64);
            let threshold = Money(
                usual
                    .0
                    .saturating_mul(self.cfg.spend_factor as u64)
                    .max(self.cfg.spend_floor.0),
            );
            if spend <= threshold || b.anomaly_hour.load(Relaxed) == h {
                return None;
            }
            b.anomaly_hour.store(h, Relaxed);
            self.raised(b, 2, spend.0, threshold.0);
            Some(Anomaly::Spend {
                value: spend,
                threshold,
                usual,
            })
        })?;
        if found.is_some() {
            self.counters().spend.fetch_add(1, Relaxed);
        }
        Ok(found)
    }

    /// The usual spend of `key` in the hour of the week of `wall_ms`.
    pub fn usual(&self, key: [u64; 2], now: u64, wall_ms: u64) -> Option<Money> {
        let i = hour_of_week(unix_hour(wall_ms));
        self.table
            .with(key, now, false, |b, _| Money(b.spend[i].load(Relaxed) as u64))
            .ok()
    }

    /// Hand over the anomalies raised since the last call (account, anomaly).
    pub fn take_events(&self) -> Vec<(Vec<u8>, Anomaly)> {
        let mut out = Vec::new();
        let k = self.counters();
        if k.pending.load(Relaxed) == 0 {
            return out;
        }
        self.table.for_each_copied(
            |cell| {
                let b = cell.entry();
                if b.flags.load(Relaxed) & EVENT_PENDING == 0 {
                    return None;
                }
                b.flags.fetch_and(!EVENT_PENDING, Relaxed);
                let _ = k.pending.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
                let (a, x) = (b.event_a.load(Relaxed), b.event_b.load(Relaxed));
                let anomaly = match b.event_kind.load(Relaxed) {
                    1 => Anomaly::Destination(Dest::unpack(a as u32)?),
                    _ => Anomaly::Spend {
                        value: Money(a),
                        threshold: Money(x),
                        usual: Money(0),
                    },
                };
                Some((
                    crate::shm::keyed::FixedName::<{ super::accounts::NAME_BYTES }>::load(
                        &b.name,
                        &b.name_len,
                    ),
                    anomaly,
                ))
            },
            |e| {
                if let Some((name, a)) = e {
                    out.push((name.as_bytes().to_vec(), a));
                }
                true
            },
        );
        out
    }

    /// Whether something was learnt since the last [`Baselines::saved`],
    /// and when that was (monotonic ns).
    pub fn unsaved(&self) -> Option<(u64, u64)> {
        let k = self.counters();
        let c = k.changes.load(Relaxed);
        (c != k.saved.load(Relaxed)).then(|| (c, k.saved_ns.load(Relaxed)))
    }

    pub fn saved(&self, changes: u64, now: u64) {
        let k = self.counters();
        k.saved.store(changes, Relaxed);
        k.saved_ns.store(now, Relaxed);
    }

    /// Every baseline, copied (`f` runs with no lock held). Returns buckets
    /// skipped.
    pub fn list(&self, mut f: impl FnMut(Saved) -> bool) -> usize {
        // Under each bucket lock the entries are copied into fixed arrays;
        // the lists are built after it is released.
        self.table
            .for_each_copied(|cell| Copied::of(cell.entry()), |c| f(c.saved()))
    }

    /// The baseline of `name` (its account key `key`), copied.
    pub fn get(&self, key: [u64; 2], now: u64) -> Result<Saved, KeyedError> {
        self.table
            .with(key, now, false, |b, _| Copied::of(b))
            .map(|c| c.saved())
    }

    /// Put a saved baseline back (state file). `merge`: destinations are
    /// added to those the account has, and the spend buckets given replace
    /// its own (a seed); else the whole entry is the saved one.
    pub fn restore(&self, key: [u64; 2], s: &Saved, merge: bool, now: u64) -> Result<(), KeyedError> {
        self.table.with(key, now, true, |b, new| {
            if new || !merge {
                b.clear();
                store_name(&b.name, &b.name_len, &s.name);
                b.first_hour.store(s.first_hour, Relaxed);
                b.hour.store(s.hour, Relaxed);
                b.hour_spend.store(s.hour_spend, Relaxed);
            } else {
                let first = b.first_hour.load(Relaxed);
                if s.first_hour < first || first == 0 {
                    b.first_hour.store(s.first_hour, Relaxed);
                }
                for v in &b.spend {
                    v.store(0, Relaxed);
                }
            }
            for &(day, d) in &s.dests {
                b.dest(d, day, u32::MAX, true);
            }
            for &(i, v) in &s.spend {
                if let Some(slot) = b.spend.get(i) {
                    slot.store(v, Relaxed);
                }
            }
        })?;
        self.changed();
        Ok(())
    }
}

/// A baseline as a line of the state file (after the `baseline ` word):
/// `<name> <first_hour> <hour> <hour_spend> <day:cc:class,...|-> <how:money,...|->`.
pub fn to_line(s: &Saved, name: &str, out: &mut String) {
    let _ = write!(
        out,
        "baseline {name} {} {} {} ",
        s.first_hour, s.hour, s.hour_spend
    );
    list(out, s.dests.iter(), |o, (day, d)| {
        let _ = write!(o, "{day}:{}:{}", d.cc, d.class.name());
    });
    out.push(' ');
    list(out, s.spend.iter(), |o, (i, v)| {
        let _ = write!(o, "{i}:{v}");
    });
    out.push('\n');
}

fn list<T>(out: &mut String, items: impl Iterator<Item = T>, mut f: impl FnMut(&mut String, T)) {
    let mut any = false;
    for it in items {
        if any {
            out.push(',');
        }
        any = true;
        f(out, it);
    }
    if !any {
        out.push('-');
    }
}

/// The fields after `baseline <name>` back (name decoded by the caller):
/// first hour and hour (u32), the hour's spend (u64), at most
/// [`DEST_SLOTS`] destinations, at most [`HOURS_OF_WEEK`] hours.
pub fn from_fields(name: Vec<u8>, f: &[&str]) -> Result<Saved, &'static str> {
    let [first, hour, spent, dests, spend] = f else {
        return Err("expected 7 fields");
    };
    let hours = |s: &str| s.parse::<u32>().map_err(|_| "bad hour");
    let mut out = Saved {
        name,
        first_hour: hours(first)?,
        hour: hours(hour)?,
        hour_spend: spent.parse().map_err(|_| "bad spend")?,
        ..Default::default()
    };
    if *dests != "-" {
        for d in dests.split(',') {
            let mut p = d.split(':');
            let (Some(day), Some(cc), Some(class), None) = (p.next(), p.next(), p.next(), p.next()) else {
                return Err("bad destination");
            };
            let class = Class::from_name(class).ok_or("bad destination class")?;
            let cc = cc.parse::<u16>().map_err(|_| "bad destination")?;
            let day = day.parse::<u32>().map_err(|_| "bad destination day")?;
            if out.dests.len() == DEST_SLOTS {
                return Err("more destinations than slots");
            }
            out.dests.push((day, Dest { cc, class }));
        }
    }
    if *spend != "-" {
        for s in spend.split(',') {
            let (i, v) = s.split_once(':').ok_or("bad spend")?;
            let i = i
                .parse::<usize>()
                .ok()
                .filter(|i| *i < HOURS_OF_WEEK)
                .ok_or("bad spend hour")?;
            if out.spend.len() == HOURS_OF_WEEK {
                return Err("more hours than a week");
            }
            out.spend.push((i, v.parse::<u32>().map_err(|_| "bad spend")?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    // Monday 2026-11-30 00:00 UTC.
    const MONDAY_MS: u64 = 1_795_996_800_000;

    fn cfg() -> BaselineConfig {
        BaselineConfig {
            days: 28,
            table_size: 64,
            ..Default::default()
        }
    }

    #[test]
    fn the_week_starts_on_monday() {
        assert_eq!(hour_of_week(unix_hour(MONDAY_MS)), 0);
        assert_eq!(hour_of_week(unix_hour(MONDAY_MS + 7 * DAY_MS - 1)), 167);
    }

    #[test]
    fn a_first_call_to_a_risky_destination_is_an_anomaly_once() {
        let b = Baselines::create(&cfg()).unwrap();
        let k = [1, 2];
        let uk = Dest {
            cc: 44,
            class: Class::International,
        };
        let home = Dest {
            cc: 1,
            class: Class::Domestic,
        };
        assert_eq!(
            b.dial(k, b"alice", home, S, MONDAY_MS).unwrap(),
            None,
            "domestic: not flagged"
        );
        assert_eq!(
            b.dial(k, b"alice", uk, S, MONDAY_MS).unwrap(),
            Some(Anomaly::Destination(uk))
        );
        assert_eq!(
            b.dial(k, b"alice", uk, S, MONDAY_MS).unwrap(),
            None,
            "learnt (warn)"
        );
        // Forgotten after baseline_days.
        assert!(b
            .dial(k, b"alice", uk, S, MONDAY_MS + 29 * DAY_MS)
            .unwrap()
            .is_some());
        assert_eq!(b.stats().destination, 2);
        let ev = b.take_events();
        assert_eq!(ev, vec![(b"alice".to_vec(), Anomaly::Destination(uk))]);
        assert!(b.take_events().is_empty());
    }

    #[test]
    fn refused_destinations_are_not_learnt() {
        let mut c = cfg();
        c.set("anomaly_action", "refuse").unwrap();
        let b = Baselines::create(&c).unwrap();
        let sat = Dest {
            cc: 882,
            class: Class::Satellite,
        };
        for _ in 0..2 {
            assert!(b.dial([3, 4], b"bob", sat, S, MONDAY_MS).unwrap().is_some());
        }
    }

    #[test]
    fn slots_keep_the_most_recently_called() {
        let b = Baselines::create(&cfg()).unwrap();
        let k = [5, 6];
        for cc in 0..DEST_SLOTS as u16 + 1 {
            let d = Dest {
                cc: 30 + cc,
                class: Class::International,
            };
            b.dial(k, b"carol", d, S, MONDAY_MS + cc as u64 * HOUR_MS * 24)
                .unwrap();
        }
        // The first (oldest) was replaced, the last is kept.
        let first = Dest {
            cc: 30,
            class: Class::International,
        };
        let last = Dest {
            cc: 30 + DEST_SLOTS as u16,
            class: Class::International,
        };
        let day = MONDAY_MS + 20 * DAY_MS;
        assert!(b.dial(k, b"carol", last, S, day).unwrap().is_none());
        assert!(b.dial(k, b"carol", first, S, day).unwrap().is_some());
    }

    #[test]
    fn spend_learnt_per_hour_of_week_and_a_spike_is_flagged() {
        let mut c = cfg();
        c.spend_floor = Money(5_000);
        let b = Baselines::create(&c).unwrap();
        let k = [7, 8];
        let d = Dest {
            cc: 1,
            class: Class::Domestic,
        };
        b.dial(k, b"dan", d, S, MONDAY_MS).unwrap();
        // Two weeks of 1.0 every Monday 10:00, nothing else.
        for week in 0..2 {
            let t = MONDAY_MS + week * 7 * DAY_MS + 10 * HOUR_MS;
            b.spent(k, 10_000, S, t);
        }
        let t = MONDAY_MS + 14 * DAY_MS + 10 * HOUR_MS;
        b.spent(k, 0, S, t);
        assert_eq!(b.usual(k, S, t), Some(Money(10_000)));
        assert_eq!(b.usual(k, S, t + HOUR_MS), Some(Money(0)));
        // 5.0 at 10:00: under 10 × 1.0.
        assert_eq!(b.spend_check(k, b"dan", Money(50_000), S, t).unwrap(), None);
        let spike = b.spend_check(k, b"dan", Money(100_001), S, t).unwrap();
        assert_eq!(
            spike,
            Some(Anomaly::Spend {
                value: Money(100_001),
                threshold: Money(100_000),
                usual: Money(10_000)
            })
        );
        assert_eq!(
            b.spend_check(k, b"dan", Money(200_000), S, t).unwrap(),
            None,
            "once an hour"
        );
        // At 11:00 the usual is 0: the floor rules.
        let t11 = t + HOUR_MS;
        assert_eq!(b.spend_check(k, b"dan", Money(5_000), S, t11).unwrap(), None);
        assert!(b.spend_check(k, b"dan", Money(5_001), S, t11).unwrap().is_some());
        assert_eq!(b.stats().spend, 2);
    }

    #[test]
    fn lines_round_trip() {
        let s = Saved {
            name: b"alice".to_vec(),
            first_hour: 10,
            hour: 20,
            hour_spend: 30,
            dests: vec![(
                20000,
                Dest {
                    cc: 44,
                    class: Class::Premium,
                },
            )],
            spend: vec![(0, 5), (167, 7)],
        };
        let mut line = String::new();
        to_line(&s, "alice", &mut line);
        assert_eq!(line, "baseline alice 10 20 30 20000:44:premium 0:5,167:7\n");
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        assert_eq!(from_fields(b"alice".to_vec(), &f[2..]).unwrap(), s);
        assert!(from_fields(b"a".to_vec(), &["1", "2", "3", "1:2", "-"]).is_err());
        assert!(from_fields(b"a".to_vec(), &["1", "2", "3", "-", "168:1"]).is_err());
        let b = Baselines::create(&cfg()).unwrap();
        b.restore([9, 9], &s, false, S).unwrap();
        let mut got = Vec::new();
        b.list(|x| {
            got.push(x);
            true
        });
        assert_eq!(got, vec![s]);
    }
}
