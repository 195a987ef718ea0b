//! The rules, published to every process: two sets in shared memory, one
//! active. A reload (RPC, any process) writes the inactive set and then
//! flips the active index, so no worker reads a file or sees half a set.
//! Each set has a sequence number, odd while it is written; a reader that
//! saw it change retries (a second reload landing on the set it is reading).

use super::money::Money;
use super::rules::{Class, RuleSet, MAX_NAME, MAX_PREFIX};
use crate::shm::keyed::store_name;
use crate::shm::lock::lock;
use crate::shm::store::{Area, Plan, Store};
use crate::shm::{align64, assert_layout, get_bytes, Shared};
use std::cmp::Ordering as Cmp;
use std::mem::size_of;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;

const PREFIX_WORDS: usize = MAX_PREFIX.div_ceil(8);
const NAME_WORDS: usize = MAX_NAME / 8;
/// Reads retried this often before giving up (two reloads within one read).
const READ_TRIES: usize = 16;

#[repr(C, align(64))]
struct Control {
    active: AtomicU32,
    writer: AtomicU32,
    reloads: AtomicU64,
}

#[repr(C, align(64))]
struct SetHeader {
    seq: AtomicU64,
    prefixes: AtomicU32,
    accounts: AtomicU32,
    has_default: AtomicU32,
    default_classes: AtomicU32,
    default_limit: AtomicU32,
}

#[repr(C)]
struct PrefixCell {
    digits: [AtomicU64; PREFIX_WORDS],
    len: AtomicU32,
    class: AtomicU32,
    rate: AtomicU64,
}

#[repr(C)]
struct AccountCell {
    name: [AtomicU64; NAME_WORDS],
    len: AtomicU32,
    classes: AtomicU32,
    limit: AtomicU32,
    _pad: AtomicU32,
}

// SAFETY: repr(C) structs of atomics.
unsafe impl Shared for Control {}
unsafe impl Shared for SetHeader {}
unsafe impl Shared for PrefixCell {}
unsafe impl Shared for AccountCell {}
const _: () = assert_layout::<Control>(64, 64);
const _: () = assert_layout::<SetHeader>(64, 64);
const _: () = assert_layout::<PrefixCell>(PREFIX_WORDS * 8 + 16, 8);
const _: () = assert_layout::<AccountCell>(NAME_WORDS * 8 + 16, 8);

/// A destination found by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    pub class: Class,
    pub rate: Money,
    pub prefix_len: usize,
}

/// What an account may do; None from [`View::account`]: not listed, no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    pub classes: u32,
    pub limit: u32,
}

pub struct Published {
    store: Arc<Store>,
    control: usize,
    max: usize,
    sets: [usize; 2],
    prefixes_off: usize,
    accounts_off: usize,
}

/// One consistent set, read under its sequence number.
pub struct View<'a> {
    p: &'a Published,
    set: usize,
    prefixes: usize,
    accounts: usize,
    header: &'a SetHeader,
}

/// Where the published rules lie in a mapping's [`Plan`]: the control
/// block, then the two sets (each a header, `max` prefixes, `max` accounts).
#[derive(Debug, Clone, Copy)]
pub struct RulesArea {
    control: Area,
    sets: Area,
    max: usize,
}

impl Published {
    /// Offsets inside a set: (prefixes, accounts, bytes of a set).
    fn set_layout(max: usize) -> (usize, usize, usize) {
        let prefixes_off = align64(size_of::<SetHeader>());
        let accounts_off = align64(prefixes_off + max * size_of::<PrefixCell>());
        (
            prefixes_off,
            accounts_off,
            align64(accounts_off + max * size_of::<AccountCell>()),
        )
    }

    /// Plan room for two sets of `max_rules` rules of each kind.
    pub fn plan(plan: &mut Plan, max_rules: u32) -> RulesArea {
        let max = max_rules as usize;
        let (_, _, set_bytes) = Self::set_layout(max);
        RulesArea {
            control: plan.array::<Control>(*b"RCTL", 1),
            sets: plan.add(*b"RSET", 2 * set_bytes, set_bytes),
            max,
        }
    }

    /// The rules at `area` of `store`.
    pub fn attach(store: &Arc<Store>, area: RulesArea) -> Published {
        let (prefixes_off, accounts_off, set_bytes) = Self::set_layout(area.max);
        let first = area.sets.offset;
        Published {
            store: store.clone(),
            control: area.control.offset,
            max: area.max,
            sets: [first, first + set_bytes],
            prefixes_off,
            accounts_off,
        }
    }

    /// Rules in a mapping of their own.
    pub fn create(max_rules: u32) -> Result<Published, String> {
        Store::alone(|p| Self::plan(p, max_rules), Self::attach)
    }

    fn control(&self) -> &Control {
        self.store.at(self.control, 0)
    }

    fn header(&self, set: usize) -> &SetHeader {
        self.store.at(self.sets[set], 0)
    }

    fn prefix(&self, set: usize, i: usize) -> &PrefixCell {
        self.store.at(self.sets[set] + self.prefixes_off, i)
    }

    fn account(&self, set: usize, i: usize) -> &AccountCell {
        self.store.at(self.sets[set] + self.accounts_off, i)
    }

    /// Times a set has been published (0: no rules yet).
    pub fn reloads(&self) -> u64 {
        self.control().reloads.load(Acquire)
    }

    /// Publish `rules` (already checked against the size) to every process.
    pub fn publish(&self, rules: &RuleSet) -> Result<(), String> {
        if rules.prefixes.len() > self.max || rules.accounts.len() > self.max {
            return Err(format!("more than fraud_max_rules ({})", self.max));
        }
        let c = self.control();
        let _writer = lock(&c.writer).ok_or("another reload is in progress")?;
        let set = 1 - (c.active.load(Acquire) as usize & 1);
        let h = self.header(set);
        // Odd while written, whatever a writer killed mid-publish left
        // (the lock is taken over from a dead pid): counting up from an odd
        // seq would publish the set with an odd seq, unreadable for good.
        let s = h.seq.load(Relaxed) | 1;
        h.seq.store(s, Relaxed);
        fence(Release);
        for (i, r) in rules.prefixes.iter().enumerate() {
            let cell = self.prefix(set, i);
            store_name(&cell.digits, &cell.len, &r.digits);
            cell.class.store(r.class as u32, Relaxed);
            cell.rate.store(r.rate.0, Relaxed);
        }
        for (i, r) in rules.accounts.iter().enumerate() {
            let cell = self.account(set, i);
            store_name(&cell.name, &cell.len, &r.name);
            cell.classes.store(r.classes, Relaxed);
            cell.limit.store(r.limit, Relaxed);
        }
        h.prefixes.store(rules.prefixes.len() as u32, Relaxed);
        h.accounts.store(rules.accounts.len() as u32, Relaxed);
        let d = rules.default.as_ref();
        h.has_default.store(d.is_some() as u32, Relaxed);
        h.default_classes.store(d.map_or(0, |d| d.classes), Relaxed);
        h.default_limit.store(d.map_or(0, |d| d.limit), Relaxed);
        h.seq.store(s.wrapping_add(1), Release);
        c.active.store(set as u32, Release);
        c.reloads.fetch_add(1, Release);
        Ok(())
    }

    /// Run `f` on a consistent view of the active set; None if reloads kept
    /// overwriting it (the caller fails closed). Allocates nothing.
    pub fn read<R>(&self, f: impl Fn(&View<'_>) -> R) -> Option<R> {
        for _ in 0..READ_TRIES {
            let set = self.control().active.load(Acquire) as usize & 1;
            let header = self.header(set);
            let s1 = header.seq.load(Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let v = View {
                p: self,
                set,
                prefixes: (header.prefixes.load(Relaxed) as usize).min(self.max),
                accounts: (header.accounts.load(Relaxed) as usize).min(self.max),
                header,
            };
            let r = f(&v);
            fence(Acquire);
            if header.seq.load(Relaxed) == s1 {
                return Some(r);
            }
        }
        None
    }
}

fn cmp_cell<const N: usize>(words: &[AtomicU64; N], len: &AtomicU32, key: &[u8]) -> Cmp {
    let mut buf = [0u8; 64];
    let n = (len.load(Relaxed) as usize).min(N * 8).min(buf.len());
    get_bytes(words, &mut buf[..N * 8]);
    buf[..n].cmp(key)
}

impl View<'_> {
    pub fn counts(&self) -> (usize, usize) {
        (self.prefixes, self.accounts)
    }

    /// The longest prefix rule matching `number`.
    pub fn dest(&self, number: &[u8]) -> Option<Dest> {
        let p = self.p;
        for len in (1..=number.len().min(MAX_PREFIX)).rev() {
            let key = &number[..len];
            let (mut lo, mut hi) = (0, self.prefixes);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let cell = p.prefix(self.set, mid);
                match cmp_cell(&cell.digits, &cell.len, key) {
                    Cmp::Less => lo = mid + 1,
                    Cmp::Greater => hi = mid,
                    Cmp::Equal => {
                        let class = Class::from_u32(cell.class.load(Relaxed))?;
                        return Some(Dest {
                            class,
                            rate: Money(cell.rate.load(Relaxed)),
                            prefix_len: len,
                        });
                    }
                }
            }
        }
        None
    }

    /// The rule of `name`, else the default rule.
    pub fn account(&self, name: &[u8]) -> Option<Perm> {
        let p = self.p;
        let (mut lo, mut hi) = (0, self.accounts);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let cell = p.account(self.set, mid);
            match cmp_cell(&cell.name, &cell.len, name) {
                Cmp::Less => lo = mid + 1,
                Cmp::Greater => hi = mid,
                Cmp::Equal => {
                    return Some(Perm {
                        classes: cell.classes.load(Relaxed),
                        limit: cell.limit.load(Relaxed),
                    })
                }
            }
        }
        (self.header.has_default.load(Relaxed) == 1).then(|| Perm {
            classes: self.header.default_classes.load(Relaxed),
            limit: self.header.default_limit.load(Relaxed),
        })
    }
}

#[cfg(test)]
impl Published {
    /// Leave the active set as a writer killed mid-write would (tests).
    pub(super) fn mark_active_written(&self) {
        let set = self.control().active.load(Acquire) as usize & 1;
        self.header(set).seq.fetch_or(1, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::parse;
    use super::*;

    /// A reload killed after marking the inactive set "being written" (odd
    /// seq, the writer lock still naming the dead pid): every later reload
    /// takes over and publishes a readable set.
    #[test]
    fn a_reload_killed_mid_publish_does_not_break_later_ones() {
        let p = Published::create(4).unwrap();
        let a = parse("prefix 1 domestic 0\naccount default all\n", "t", 4).unwrap();
        let b = parse("prefix 1 mobile 0\naccount default all\n", "t", 4).unwrap();
        for round in 0..6 {
            let c = p.control();
            let inactive = 1 - (c.active.load(Acquire) as usize & 1);
            // The dead writer: odd seq on the set it was writing, the lock
            // held by a pid that cannot exist.
            p.header(inactive).seq.fetch_add(1, Relaxed);
            c.writer.store(0x3fff_fff0, Relaxed);
            p.publish(if round % 2 == 0 { &a } else { &b }).unwrap();
            let class = p.read(|v| v.dest(b"12").map(|d| d.class));
            let want = if round % 2 == 0 {
                Class::Domestic
            } else {
                Class::Mobile
            };
            assert_eq!(class, Some(Some(want)), "round {round}");
            // A plain reload after it reads as well.
            p.publish(&a).unwrap();
            assert_eq!(
                p.read(|v| v.dest(b"12").map(|d| d.class)),
                Some(Some(Class::Domestic))
            );
        }
    }

    #[test]
    fn longest_prefix_and_accounts() {
        let p = Published::create(16).unwrap();
        assert_eq!(p.read(|v| v.dest(b"44123")), Some(None));
        let rules = parse(
            "prefix 4 international 0.1\nprefix 44 international 0.02\nprefix 449 premium 1.5\n\
             prefix 4491 high-risk 3\naccount default domestic\naccount alice all limit=3\n",
            "t",
            16,
        )
        .unwrap();
        p.publish(&rules).unwrap();
        let d = |n: &[u8]| p.read(|v| v.dest(n)).unwrap().map(|d| (d.class, d.rate.0));
        assert_eq!(d(b"4412345"), Some((Class::International, 200)));
        assert_eq!(d(b"449000"), Some((Class::Premium, 15_000)));
        assert_eq!(d(b"44910"), Some((Class::HighRisk, 30_000)));
        assert_eq!(d(b"49"), Some((Class::International, 1000)));
        assert_eq!(d(b"1212"), None);
        let a = |n: &[u8]| p.read(|v| v.account(n)).unwrap();
        assert_eq!(a(b"alice").unwrap().limit, 3);
        assert_eq!(a(b"alicf").unwrap().classes, Class::Domestic.bit());
        // A second set replaces the first whole.
        p.publish(&parse("prefix 1 domestic 0\n", "t", 16).unwrap())
            .unwrap();
        assert_eq!(d(b"4412345"), None);
        assert_eq!(a(b"alice"), None);
        assert_eq!(p.reloads(), 2);
    }
}
