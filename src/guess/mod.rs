//! Defences against extension and password guessing, in shared tables:
//!
//! - what each source targets (enumeration: distinct user names per window,
//!   as bits of a 128-bit set, so memory per source is fixed) and its
//!   authentication failures;
//! - per user name: failures from any source (a distributed guess
//!   throttles the name) and the sources that recently authenticated as it
//!   (they are never throttled, so an attacker cannot lock the owner out);
//! - per transaction (Call-ID and CSeq): whether the request carried
//!   credentials or was authenticated, so the reply that leaves later, from
//!   whichever process, is counted or left alone accordingly. The From tag
//!   is left out of the key: every request rewrites its key's flags anyway
//!   (so a client can only confuse its own transactions, From tag or not),
//!   and leaving it out spares parsing From on every request.
//!
//! Times inside entries are whole seconds of the monotonic clock (u32).

pub mod config;
pub mod replica;
pub mod reply;

use crate::flood::ban::Reason;
use crate::flood::region::Flood;
use crate::guess::config::{GuessConfig, ENUM_NAMES};
use crate::shm::counters::Counter;
use crate::shm::keyed::{load_name_into, store_name, Entry, FixedName, KeyedTable, TableArea};
use crate::shm::lock::my_pid;
use crate::shm::store::{Plan, Store};
use crate::shm::{assert_layout, Shared};
use crate::sip::addr::{address_bits, Key};
use crate::util::clock::NS_PER_SEC;
use crate::util::log::{log, Level};
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

fn secs(now_ns: u64) -> u32 {
    (now_ns / NS_PER_SEC).min(u32::MAX as u64 - 1) as u32 + 1
}

fn secs_of(ns: u64) -> u32 {
    (ns / NS_PER_SEC).min(u32::MAX as u64) as u32
}

/// Within `window` seconds of `start` (0 = never started)?
fn within(start: u32, now: u32, window: u32) -> bool {
    start != 0 && now.wrapping_sub(start) < window
}

/// What one source does.
#[repr(C)]
pub struct SourceEntry {
    /// Fingerprints (16-bit hashes) of the distinct user names targeted in
    /// the current window: an exact set up to `ENUM_NAMES`.
    enum_names: [AtomicU16; ENUM_NAMES],
    enum_count: AtomicU32,
    enum_start: AtomicU32,
    fail_start: AtomicU32,
    fails: AtomicU32,
    /// Last successful authentication (any user).
    auth_ok: AtomicU32,
    /// Low half of the user key of the last failure not yet forgiven.
    last_fail_user: AtomicU32,
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for SourceEntry {}
const _: () = assert_layout::<SourceEntry>(104, 4);

impl Entry for SourceEntry {
    fn clear(&self) {
        for n in &self.enum_names {
            n.store(0, Relaxed);
        }
        self.enum_count.store(0, Relaxed);
        self.enum_start.store(0, Relaxed);
        self.fail_start.store(0, Relaxed);
        self.fails.store(0, Relaxed);
        self.auth_ok.store(0, Relaxed);
        self.last_fail_user.store(0, Relaxed);
    }
    fn evictable(&self, _now: u64) -> bool {
        true
    }
    fn keep_rank(&self) -> u8 {
        // Sources with failures or a trust record outlive idle ones.
        u8::from(self.fails.load(Relaxed) > 0 || self.auth_ok.load(Relaxed) != 0)
    }
}

/// Sources remembered per user name as trusted.
const TRUSTED: usize = 4;
const USER_ANNOUNCED: u32 = 1;
/// Bytes of a user name kept in a [`UserEntry`].
const USER_NAME_BYTES: usize = 32;

/// What happens to one user name.
#[repr(C)]
pub struct UserEntry {
    name: [AtomicU64; USER_NAME_BYTES / 8],
    name_len: AtomicU32,
    fail_start: AtomicU32,
    fails: AtomicU32,
    throttled_until: AtomicU32,
    flags: AtomicU32,
    throttles: AtomicU32,
    /// (source hash << 32 | last success second), most recent anywhere.
    trusted: [AtomicU64; TRUSTED],
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for UserEntry {}
const _: () = assert_layout::<UserEntry>(88, 8);

impl Entry for UserEntry {
    fn clear(&self) {
        for w in &self.name {
            w.store(0, Relaxed);
        }
        for t in &self.trusted {
            t.store(0, Relaxed);
        }
        self.name_len.store(0, Relaxed);
        self.fail_start.store(0, Relaxed);
        self.fails.store(0, Relaxed);
        self.throttled_until.store(0, Relaxed);
        self.flags.store(0, Relaxed);
        self.throttles.store(0, Relaxed);
    }
    fn evictable(&self, now: u64) -> bool {
        self.throttled_until.load(Relaxed) <= secs(now) && self.flags.load(Relaxed) & USER_ANNOUNCED == 0
    }
    fn keep_rank(&self) -> u8 {
        u8::from(self.trusted[0].load(Relaxed) != 0)
    }
}

impl UserEntry {
    fn trusts(&self, src: u32, now: u32, trust: u32) -> bool {
        self.trusted.iter().any(|t| {
            let v = t.load(Relaxed);
            v != 0 && (v >> 32) as u32 == src && within(v as u32, now, trust)
        })
    }
    fn trust(&self, src: u32, now: u32) {
        let slot = self
            .trusted
            .iter()
            .find(|t| (t.load(Relaxed) >> 32) as u32 == src)
            .or_else(|| self.trusted.iter().min_by_key(|t| t.load(Relaxed) as u32))
            .expect("TRUSTED > 0");
        slot.store(u64::from(src) << 32 | u64::from(now), Relaxed);
    }
}

const TXN_CREDENTIALS: u32 = 1;
const TXN_AUTHENTICATED: u32 = 2;
const TXN_COUNTED: u32 = 4;
/// The request's nonce was stale: its challenge says so and is no failure.
const TXN_STALE: u32 = 8;
/// The request had a To tag: its replies are left as they are.
const TXN_IN_DIALOG: u32 = 16;
/// The script refused this request by policy (its own verdict, the same for
/// every user): its replies but a challenge leave as they are, uncounted.
/// Cleared by every request that arrives under the key, so it is only ever
/// about the request the script marked, and when the script goes on to the
/// password check after all.
const TXN_POLICY: u32 = 32;
/// A policy function of the module refused it (`sipguard_require_tls()`, a
/// dial check): the same, for its 403 only, since a script may call the
/// function without acting on its verdict: a 404/480 that tells users apart
/// is still rewritten.
const TXN_POLICY_403: u32 = 64;
const TXN_POLICY_ANY: u32 = TXN_POLICY | TXN_POLICY_403;
/// The process that set the policy mark (its pid, 24 bits): only a reply
/// that process sends is a policy reply. Requests are handled one at a
/// time per process, and a policy refusal is answered by the process that
/// made it, so the mark cannot be borrowed: an attacker's second request
/// under the same Call-ID and CSeq, handled by another process while the
/// mark is held, gets its own reply judged as usual.
const TXN_OWNER_SHIFT: u32 = 8;
const TXN_OWNER: u32 = !0 << TXN_OWNER_SHIFT;

fn txn_owner() -> u32 {
    my_pid() << TXN_OWNER_SHIFT
}

/// Who refused a request by policy ([`Defences::guess_policy_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMark {
    /// The script (`sipguard_policy_reply()`): every reply but a 401/407.
    Script,
    /// One of the module's policy functions: its 403 only.
    Refusal403,
}

/// What a request told about its replies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TxnState {
    /// The script authenticated it: its replies are the user's own.
    pub authenticated: bool,
    /// It had a To tag.
    pub in_dialog: bool,
    /// Its nonce was stale: a challenge to it says `stale=true`.
    pub stale: bool,
    /// This reply is a policy reply ([`Defences::guess_policy_reply`]).
    pub policy: bool,
}

impl TxnState {
    /// Whether a reply to it may be rewritten.
    pub fn rewritable(&self) -> bool {
        !self.authenticated && !self.in_dialog && !self.policy
    }
}

/// One request's fate, found again from its replies.
#[repr(C)]
pub struct TxnEntry {
    src: [AtomicU64; 2],
    user: [AtomicU64; 2],
    flags: AtomicU32,
    /// Hash of the credentials of the request the flags are about: a new
    /// request reusing Call-ID and CSeq starts over.
    credentials: AtomicU32,
}

// SAFETY: repr(C) of atomics.
unsafe impl Shared for TxnEntry {}
const _: () = assert_layout::<TxnEntry>(40, 8);

impl Entry for TxnEntry {
    fn clear(&self) {
        for w in self.src.iter().chain(&self.user) {
            w.store(0, Relaxed);
        }
        self.flags.store(0, Relaxed);
        self.credentials.store(0, Relaxed);
    }
    fn evictable(&self, _now: u64) -> bool {
        true
    }
}

/// User-Agent values handed over per request; a request with more User-Agent
/// headers than this is judged a scanner (no phone sends more than one).
pub const MAX_USER_AGENTS: usize = 8;

/// The request had a To tag: an in-dialog request, whose replies are never
/// rewritten (they tell nothing about which users exist, and a callee's
/// in-dialog 480 must reach the caller as it is).
pub const REQ_IN_DIALOG: u32 = 1;
/// Its digest nonce is one the auth module calls stale before looking at
/// the password: the challenge says `stale=true`, and no password is tried.
pub const REQ_STALE_NONCE: u32 = 2;

/// The request fields the defences read, each as the host's own parser
/// gives it to the script (all borrowed, possibly empty). The core parses
/// none of them again: what it judges is what the script sees.
#[derive(Debug, Default, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a [u8],
    /// `$rU`
    pub ruri_user: &'a [u8],
    /// `$tU` (read only for a REGISTER or without `$rU`; see
    /// [`Request::target_user`]).
    pub to_user: &'a [u8],
    /// From and To header values, for the fingerprints only.
    pub from: &'a [u8],
    pub to: &'a [u8],
    /// `$ci`
    pub call_id: &'a [u8],
    /// The CSeq number and method.
    pub cseq_num: &'a [u8],
    pub cseq_method: &'a [u8],
    /// Every User-Agent value, up to `MAX_USER_AGENTS`.
    pub user_agents: [&'a [u8]; MAX_USER_AGENTS],
    /// How many User-Agent headers the request has (may exceed the array).
    pub user_agent_count: usize,
    /// The digest user name the auth module will check (`$au`); empty when
    /// the request carries no well-formed digest credentials.
    pub auth_user: &'a [u8],
    /// The whole credentials value: only hashed, to tell a new guess from a
    /// retransmission.
    pub credentials: &'a [u8],
    /// `REQ_*` bits.
    pub flags: u32,
}

impl<'a> Request<'a> {
    /// Credentials whose password the auth module will check: digest ones
    /// with a user name, and a nonce it does not call stale first.
    pub fn has_credentials(&self) -> bool {
        !self.auth_user.is_empty() && self.flags & REQ_STALE_NONCE == 0
    }

    /// The user name a request is about: the digest user name when it
    /// carries credentials, else the To user for REGISTER, the R-URI user
    /// otherwise (To user when the R-URI has none).
    pub fn target_user(&self) -> &'a [u8] {
        if self.has_credentials() {
            return self.auth_user;
        }
        if reads_to_user(self.method, self.ruri_user) {
            self.to_user
        } else {
            self.ruri_user
        }
    }

    fn user_agents(&self) -> &[&'a [u8]] {
        &self.user_agents[..self.user_agent_count.min(MAX_USER_AGENTS)]
    }
}

/// What the request-time checks decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Clean,
    /// Banned now: a scanner fingerprint.
    Scanner,
    /// Banned now: too many distinct user names.
    Enumeration,
}

/// The shared tables of the guessing defences.
pub struct Guess {
    /// The defences' parameters (process-local, read-only).
    pub cfg: GuessConfig,
    sources: KeyedTable<SourceEntry>,
    users: KeyedTable<UserEntry>,
    txns: KeyedTable<TxnEntry>,
}

/// One user name for RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: Vec<u8>,
    pub failures: u32,
    /// Remaining throttle in seconds; 0 = not throttled.
    pub throttled_s: u32,
    pub throttles: u32,
    pub trusted_sources: u32,
}

/// Where the guessing defences' tables lie in a mapping's [`Plan`].
pub struct GuessPlan {
    sources: TableArea<SourceEntry>,
    users: TableArea<UserEntry>,
    txns: TableArea<TxnEntry>,
}

impl Guess {
    /// Plan the tables: `sources` entries for the sources (as many as the
    /// source table), the rest as `g` says.
    pub fn plan(plan: &mut Plan, sources: u64, g: &GuessConfig) -> GuessPlan {
        GuessPlan {
            sources: KeyedTable::plan(plan, *b"GSRC", sources),
            users: KeyedTable::plan(plan, *b"GUSR", g.user_table_size),
            txns: KeyedTable::plan(plan, *b"GTXN", g.txn_table_size),
        }
    }

    /// The tables at the areas of `p` in `store`.
    pub fn attach(store: &Arc<Store>, p: GuessPlan, g: &GuessConfig) -> Guess {
        Guess {
            cfg: g.clone(),
            sources: KeyedTable::attach(store, p.sources),
            users: KeyedTable::attach(store, p.users),
            txns: KeyedTable::attach(store, p.txns),
        }
    }

    /// A short per-start hash of a source, for the trusted list.
    fn source_tag(&self, src: [u64; 2]) -> u32 {
        let k = self
            .users
            .parts_key(&[&src[0].to_le_bytes(), &src[1].to_le_bytes()]);
        (k[0] as u32) | 1
    }

    /// The key of the transaction a message belongs to: Call-ID, CSeq
    /// number and method, as the host parsed them (the same
    /// parser reads the request and its replies, so they always agree).
    pub fn txn_key(&self, call_id: &[u8], cseq_num: &[u8], cseq_method: &[u8]) -> [u64; 2] {
        self.txns.parts_key(&[call_id, cseq_num, cseq_method])
    }

    fn request_txn(&self, req: &Request) -> [u64; 2] {
        self.txn_key(req.call_id, req.cseq_num, req.cseq_method)
    }
}

/// Whether a request's user name without credentials is the To user
/// (`$tU`): for a REGISTER, or when the R-URI has no user. Hosts ask this
/// to parse the To URI only when it is read.
pub fn reads_to_user(method: &[u8], ruri_user: &[u8]) -> bool {
    method.eq_ignore_ascii_case(b"REGISTER") || ruri_user.is_empty()
}

fn is_scanner(cfg: &GuessConfig, req: &Request) -> bool {
    req.user_agent_count > MAX_USER_AGENTS
        || req
            .user_agents()
            .iter()
            .any(|ua| cfg.scanner_user_agents.found_in(ua))
        || cfg.scanner_from_to.found_in(req.from)
        || cfg.scanner_from_to.found_in(req.to)
}

/// The guessing defences at work: their tables, and the source table they
/// ban through and count in ([`crate::engine::Engine::defences`]).
pub struct Defences<'a> {
    pub guess: &'a Guess,
    pub flood: &'a Flood,
}

impl Defences<'_> {
    fn guess(&self) -> &Guess {
        self.guess
    }

    fn source_key(&self, addr: &[u8]) -> Option<(u128, [u64; 2])> {
        let bits = address_bits(addr)?;
        Some((
            bits,
            Key::from_address_bits(bits, self.flood.cfg.ipv6_prefix).halves(),
        ))
    }

    /// Request-time checks after the rate check passed: fingerprints, the
    /// enumeration rule, and noting requests that carry credentials.
    pub fn guess_request(&self, addr: &[u8], req: &Request, now: u64) -> Finding {
        let cfg = &self.guess.cfg;
        let Some((bits, src)) = self.source_key(addr) else {
            return Finding::Clean;
        };
        if self.flood.allowlisted(bits) {
            return Finding::Clean;
        }
        let c = self.flood.counters();
        if is_scanner(cfg, req) {
            c.bump(Counter::Scanners);
            let _ = self.flood.ban_offender(bits, Reason::Scanner, now);
            return Finding::Scanner;
        }
        let g = self.guess();
        let user = req.target_user();
        let key = g.request_txn(req);
        let in_dialog = if req.flags & REQ_IN_DIALOG != 0 {
            TXN_IN_DIALOG
        } else {
            0
        };
        if req.has_credentials() {
            let user_key = g.users.name_key(user);
            let _ = g.users.with(user_key, now, true, |u, new| {
                if new {
                    store_name(&u.name, &u.name_len, user);
                }
            });
            let creds = g.txns.name_key(req.credentials)[0] as u32 | 1;
            let _ = g.txns.with(key, now, true, |t, _| {
                // A retransmission keeps what was learnt; other credentials
                // under the same Call-ID and CSeq are a new guess.
                if t.credentials.swap(creds, Relaxed) != creds {
                    t.flags.store(TXN_CREDENTIALS | in_dialog, Relaxed);
                }
                // A policy mark is about the request the script marked, not
                // one that reuses its key (the same guess by another path).
                t.flags.fetch_and(!TXN_POLICY_ANY, Relaxed);
                // The whole address: the allowlist and the BAN line want it.
                t.src[0].store((bits >> 64) as u64, Relaxed);
                t.src[1].store(bits as u64, Relaxed);
                for (w, k) in t.user.iter().zip(user_key) {
                    w.store(k, Relaxed);
                }
            });
            return Finding::Clean;
        }
        // Without credentials (or with ones whose password is never
        // looked at), a reused key forgets any earlier state: an
        // authenticated request's key must not exempt a probe's replies.
        let stale = if req.flags & REQ_STALE_NONCE != 0 {
            TXN_STALE
        } else {
            0
        };
        let remember = stale | in_dialog;
        if remember != 0 || g.txns.holds_unlocked(key) {
            let _ = g.txns.with(key, now, remember != 0, |t, _| {
                t.flags.store(remember, Relaxed);
                t.credentials.store(0, Relaxed);
            });
        }
        // Every method counts: a probe by INFO or a made-up method tells
        // as much as one by REGISTER.
        if user.is_empty() {
            return Finding::Clean;
        }
        let name = g.sources.name_key(user)[0] as u16;
        let (now_s, window, trust) = (secs(now), secs_of(cfg.enum_window_ns), secs_of(cfg.auth_trust_ns));
        let threshold = cfg.enum_threshold;
        let over = g.sources.with(src, now, true, |s, _| {
            if within(s.auth_ok.load(Relaxed), now_s, trust) {
                return false;
            }
            if !within(s.enum_start.load(Relaxed), now_s, window) {
                s.enum_start.store(now_s, Relaxed);
                s.enum_count.store(0, Relaxed);
            }
            let mut n = (s.enum_count.load(Relaxed) as usize).min(ENUM_NAMES);
            if n < ENUM_NAMES && !s.enum_names[..n].iter().any(|x| x.load(Relaxed) == name) {
                s.enum_names[n].store(name, Relaxed);
                n += 1;
                s.enum_count.store(n as u32, Relaxed);
            }
            let over = n as u64 > threshold;
            if over {
                // Start over, so the count after the ban is a fresh one.
                s.enum_start.store(0, Relaxed);
            }
            over
        });
        if over != Ok(true) {
            return Finding::Clean;
        }
        c.bump(Counter::Enumerations);
        let _ = self.flood.ban_offender(bits, Reason::Enumeration, now);
        Finding::Enumeration
    }

    /// The script saw a successful authentication of `req` from `addr`.
    /// The failure just before it, if it was against the same user name,
    /// is forgiven: that is a phone answering a reused or expired nonce
    /// (`one_time_nonce`), not a guess. A guesser never succeeds as the
    /// user it guesses, so it is never forgiven.
    pub fn guess_authenticated(&self, addr: &[u8], req: &Request, now: u64) {
        let Some((_, src)) = self.source_key(addr) else {
            return;
        };
        let g = self.guess();
        let now_s = secs(now);
        let _ = g.txns.with(g.request_txn(req), now, true, |t, _| {
            t.flags.fetch_or(TXN_AUTHENTICATED, Relaxed);
        });
        let user = req.target_user();
        let user_key = g.users.name_key(user);
        let forgive = g
            .sources
            .with(src, now, true, |s, _| {
                s.auth_ok.store(now_s, Relaxed);
                let same = s.last_fail_user.swap(0, Relaxed) == user_key[0] as u32 | 1;
                if same {
                    let _ = s.fails.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
                }
                same
            })
            .unwrap_or(false);
        let tag = g.source_tag(src);
        let _ = g.users.with(user_key, now, true, |u, new| {
            if new {
                store_name(&u.name, &u.name_len, user);
            }
            u.trust(tag, now_s);
            if forgive {
                let _ = u.fails.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            }
        });
    }

    /// `req` was refused by policy, whoever the user: a reply to it other
    /// than a 401/407 challenge (with [`PolicyMark::Refusal403`], its 403
    /// only) leaves as it is and is no failure (a phone sending its
    /// credentials over the wrong transport is not a guesser). The mark
    /// holds for this request only, and for the replies this process sends
    /// (`TXN_OWNER`): the next request under its Call-ID and CSeq clears
    /// it, and so does a password check of it
    /// ([`Defences::guess_auth_allowed`], [`Defences::guess_auth_failed`]).
    pub fn guess_policy_reply(&self, req: &Request, mark: PolicyMark, now: u64) {
        let g = self.guess();
        let bit = match mark {
            PolicyMark::Script => TXN_POLICY,
            PolicyMark::Refusal403 => TXN_POLICY_403,
        };
        let _ = g.txns.with(g.request_txn(req), now, true, |t, _| {
            // under the bucket lock: the mark and its owner change together
            let flags = t.flags.load(Relaxed) & !TXN_OWNER;
            t.flags.store(flags | bit | txn_owner(), Relaxed);
        });
    }

    /// The script goes on to check the password of `req`: no policy reply.
    fn clear_policy(&self, req: &Request, now: u64) {
        let g = self.guess();
        let _ = g.txns.with(g.request_txn(req), now, false, |t, _| {
            t.flags.fetch_and(!TXN_POLICY_ANY, Relaxed);
        });
    }

    /// The script reports a failed authentication; counted once per
    /// transaction. Returns true if this banned the source.
    pub fn guess_auth_failed(&self, addr: &[u8], req: &Request, now: u64) -> bool {
        let Some((bits, src)) = self.source_key(addr) else {
            return false;
        };
        let g = self.guess();
        let first = g
            .txns
            .with(g.request_txn(req), now, true, |t, _| {
                t.flags.fetch_and(!TXN_POLICY_ANY, Relaxed);
                t.flags.fetch_or(TXN_COUNTED, Relaxed) & TXN_COUNTED == 0
            })
            .unwrap_or(true);
        if !first {
            return false;
        }
        let user = req.target_user();
        let user_key = g.users.name_key(user);
        let _ = g.users.with(user_key, now, true, |u, new| {
            if new {
                store_name(&u.name, &u.name_len, user);
            }
        });
        self.count_failure(bits, src, user_key, now)
    }

    /// Whether the credentials of `req` from `addr` may be checked: not
    /// when its user name is throttled, unless this source authenticated
    /// as that user recently.
    pub fn guess_auth_allowed(&self, addr: &[u8], req: &Request, now: u64) -> bool {
        let Some((_, src)) = self.source_key(addr) else {
            return true;
        };
        self.clear_policy(req, now);
        let g = self.guess();
        let (now_s, trust) = (secs(now), secs_of(self.guess.cfg.auth_trust_ns));
        let tag = g.source_tag(src);
        let allowed = g
            .users
            .with(g.users.name_key(req.target_user()), now, false, |u, _| {
                u.throttled_until.load(Relaxed) <= now_s || u.trusts(tag, now_s, trust)
            })
            .unwrap_or(true);
        if !allowed {
            self.flood.counters().bump(Counter::ThrottledAuth);
            // Its password is not checked: the challenge that follows is no
            // failed guess, and must not ban the owner's new phone.
            let _ = g.txns.with(g.request_txn(req), now, false, |t, _| {
                t.flags.fetch_or(TXN_COUNTED, Relaxed);
            });
        }
        allowed
    }

    /// A reply of `status` leaves for the request of transaction `key`;
    /// `stale`: it is a challenge with `stale=true`; `rewrite`: it is one
    /// the rewrite would turn into a challenge. To a request that carried
    /// credentials and was not authenticated, a reply that reaches the
    /// client as a challenge (a 401/407/403 not stale, or a rewritten one)
    /// is one failure (counted once), unless it is a policy reply
    /// ([`Defences::guess_policy_reply`]) and no 401/407. Returns what the
    /// request told about this reply.
    pub fn guess_reply(&self, key: [u64; 2], status: u16, stale: bool, rewrite: bool, now: u64) -> TxnState {
        let g = self.guess();
        let challenge = matches!(status, 401 | 403 | 407) && !stale;
        let digest = challenge && status != 403;
        let seen = g.txns.with(key, now, false, |t, _| {
            let flags = t.flags.load(Relaxed);
            let state = TxnState {
                authenticated: flags & TXN_AUTHENTICATED != 0,
                in_dialog: flags & TXN_IN_DIALOG != 0,
                stale: flags & TXN_STALE != 0,
                policy: flags & TXN_OWNER == txn_owner()
                    && (flags & TXN_POLICY != 0 || (flags & TXN_POLICY_403 != 0 && status == 403)),
            };
            // A policy reply is no failure; a digest challenge is one even
            // then (the password was looked at, or is asked for).
            let failure = (challenge && (digest || !state.policy)) || (rewrite && state.rewritable());
            let count =
                failure && flags & (TXN_CREDENTIALS | TXN_AUTHENTICATED | TXN_COUNTED) == TXN_CREDENTIALS;
            if count {
                t.flags.fetch_or(TXN_COUNTED, Relaxed);
            }
            let src = [t.src[0].load(Relaxed), t.src[1].load(Relaxed)];
            let user = [t.user[0].load(Relaxed), t.user[1].load(Relaxed)];
            (state, count.then_some((src, user)))
        });
        let Ok((state, counted)) = seen else {
            return TxnState::default();
        };
        if let Some((src, user)) = counted {
            let bits = (u128::from(src[0]) << 64) | u128::from(src[1]);
            let key = Key::from_address_bits(bits, self.flood.cfg.ipv6_prefix).halves();
            self.count_failure(bits, key, user, now);
        }
        state
    }

    /// One authentication failure from source `src` against user `user`.
    fn count_failure(&self, bits: u128, src: [u64; 2], user: [u64; 2], now: u64) -> bool {
        let cfg = &self.guess.cfg;
        let g = self.guess();
        let c = self.flood.counters();
        c.bump(Counter::AuthFailures);
        let now_s = secs(now);
        let bump = |start: &AtomicU32, fails: &AtomicU32, window: u64| {
            if !within(start.load(Relaxed), now_s, secs_of(window)) {
                start.store(now_s, Relaxed);
                fails.store(0, Relaxed);
            }
            fails.fetch_add(1, Relaxed) + 1
        };
        let mut banned = false;
        if !self.flood.allowlisted(bits) {
            let over = g
                .sources
                .with(src, now, true, |s, _| {
                    s.last_fail_user.store(user[0] as u32 | 1, Relaxed);
                    let n = bump(&s.fail_start, &s.fails, cfg.auth_findtime_ns);
                    if u64::from(n) >= cfg.auth_maxretry {
                        s.fails.store(0, Relaxed);
                        s.fail_start.store(0, Relaxed);
                        true
                    } else {
                        false
                    }
                })
                .unwrap_or(false);
            if over {
                banned = matches!(self.flood.ban_offender(bits, Reason::Auth, now), Ok(Some(_)));
                if banned {
                    c.bump(Counter::AuthBans);
                }
            }
        }
        let throttle = secs_of(cfg.user_throttle_ns);
        let throttled = g.users.with(user, now, false, |u, _| {
            let n = bump(&u.fail_start, &u.fails, cfg.user_findtime_ns);
            let n = self.cluster_failures(u, n);
            if u64::from(n) < cfg.user_maxretry || u.throttled_until.load(Relaxed) > now_s {
                return None;
            }
            u.throttled_until.store(now_s.saturating_add(throttle), Relaxed);
            u.flags.fetch_or(USER_ANNOUNCED, Relaxed);
            u.throttles.fetch_add(1, Relaxed);
            let mut name = [0u8; 32];
            let len = load_name_into(&u.name, &u.name_len, &mut name);
            Some((name, len, n))
        });
        if let Ok(Some((name, len, n))) = throttled {
            let name = &name[..len];
            c.bump(Counter::Throttles);
            log(
                Level::Notice,
                format_args!(
                    "sipguard: THROTTLE user={} failures={n} duration={}",
                    String::from_utf8_lossy(name).escape_debug(),
                    throttle
                ),
            );
            self.replicate_throttle(name, throttle, n);
        }
        banned
    }

    /// Once a second: log throttles that ended.
    pub fn guess_sweep(&self, now: u64) {
        let now_s = secs(now);
        let mut active = 0u64;
        // Under each bucket lock: count, and copy the names of ended
        // throttles into fixed arrays; they are logged once it is released.
        let mut ended = Vec::new();
        self.guess().users.for_each_copied(
            |cell| {
                let u = cell.entry();
                if u.throttled_until.load(Relaxed) > now_s {
                    active += 1;
                    None
                } else if u.flags.fetch_and(!USER_ANNOUNCED, Relaxed) & USER_ANNOUNCED != 0 {
                    Some(FixedName::<USER_NAME_BYTES>::load(&u.name, &u.name_len))
                } else {
                    None
                }
            },
            |name| {
                if let Some(name) = name {
                    ended.push(name);
                }
                true
            },
        );
        self.flood.counters().set_gauge(Counter::ThrottledUsers, active);
        for name in ended {
            log_unthrottle(name.as_bytes(), "expired");
        }
    }

    /// User names with failures, throttles or trusted sources.
    pub fn guess_users(&self, now: u64, max: usize) -> Vec<UserInfo> {
        let (now_s, trust) = (secs(now), secs_of(self.guess.cfg.auth_trust_ns));
        let findtime = secs_of(self.guess.cfg.user_findtime_ns);
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        // Copied under the bucket lock into fixed arrays; the Vec grows
        // after the lock is released.
        self.guess().users.for_each_copied(
            |cell| {
                let u = cell.entry();
                let failures = if within(u.fail_start.load(Relaxed), now_s, findtime) {
                    u.fails.load(Relaxed)
                } else {
                    0
                };
                let until = u.throttled_until.load(Relaxed);
                let trusted = u
                    .trusted
                    .iter()
                    .filter(|t| {
                        let v = t.load(Relaxed);
                        v != 0 && within(v as u32, now_s, trust)
                    })
                    .count() as u32;
                let throttles = u.throttles.load(Relaxed);
                let throttled_s = until.saturating_sub(now_s);
                (failures > 0 || throttled_s > 0 || throttles > 0 || trusted > 0).then(|| {
                    (
                        FixedName::<USER_NAME_BYTES>::load(&u.name, &u.name_len),
                        [failures, throttled_s, throttles, trusted],
                    )
                })
            },
            |user| {
                if let Some((name, [failures, throttled_s, throttles, trusted_sources])) = user {
                    out.push(UserInfo {
                        name: name.as_bytes().to_vec(),
                        failures,
                        throttled_s,
                        throttles,
                        trusted_sources,
                    });
                }
                out.len() < max
            },
        );
        out
    }

    /// Lift the throttle on `name` and forget its failures; the peers are
    /// told too.
    pub fn guess_unthrottle(&self, name: &[u8], now: u64) -> bool {
        let lifted = self.lift_throttle(name, now);
        self.replicate_unthrottle(name);
        lifted
    }

    /// Lift the throttle on `name` (logged), forget its failures.
    pub(crate) fn lift_throttle(&self, name: &[u8], now: u64) -> bool {
        let g = self.guess();
        let lifted = g
            .users
            .with(g.users.name_key(name), now, false, |u, _| {
                let was = u.throttled_until.swap(0, Relaxed) > secs(now);
                u.fails.store(0, Relaxed);
                u.fail_start.store(0, Relaxed);
                u.flags.fetch_and(!USER_ANNOUNCED, Relaxed);
                was
            })
            .unwrap_or(false);
        if lifted {
            log_unthrottle(name, "rpc");
        }
        lifted
    }
}

fn log_unthrottle(name: &[u8], reason: &str) {
    log(
        Level::Notice,
        format_args!(
            "sipguard: UNTHROTTLE user={} reason={reason}",
            String::from_utf8_lossy(name).escape_debug()
        ),
    );
}
