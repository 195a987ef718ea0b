//! Toll-fraud controls: destination policy by number prefix, per-account
//! concurrent calls, and real-time velocity (call attempts per minute,
//! spend per hour) that suspends an account the moment it crosses a
//! critical threshold.
//!
//! Shared state, all mapped before the fork: the published rules
//! ([`published`]), the account table ([`accounts`]) and a few counters.
//! The request path (dial check, call start/end) reads the published rules
//! and takes one account bucket lock; it allocates nothing and reads no
//! file. The timer process evaluates running exposure every second, hands
//! suspensions to the host's event route and saves them ([`persist`]).

pub mod accounts;
mod anomaly;
pub use anomaly::BaselineView;
pub mod baseline;
pub mod baseline_config;
pub mod baseline_seed;
pub mod config;
pub mod dial;
pub mod lengths;
pub mod money;
pub mod number;
pub mod persist;
pub mod phone_context;
pub mod plan;
pub mod published;
pub mod replica;
pub mod rules;

use crate::shm::keyed::KeyedError;
use crate::shm::store::{Plan, Store};
use crate::shm::{assert_layout, Shared};
use crate::util::log::{log, Level};
use accounts::{Accounts, CallTicket, Crossing, Reason, Start, Thresholds, Verdict, NAME_BYTES};
use config::FraudConfig;
use money::Money;
use published::Published;
use rules::Class;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The host's event route for a suspension (account, reason).
type EventFn<'a> = dyn FnMut(&[u8], Reason) + 'a;

/// A failed save of `fraud_state_file` is retried after this long.
const SAVE_RETRY_NS: u64 = 60_000_000_000;

/// `sipguard_dial_check` verdicts; never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum DialVerdict {
    Allowed = 1,
    ClassDenied = -1,
    Suspended = -2,
    Velocity = -3,
    NoRule = -4,
    /// The account's table bucket holds only live accounts: fail closed.
    TableFull = -5,
    /// Bad account name, busy, rules mid-reload, internal error: fail closed.
    Unavailable = -6,
    /// A first call to a new destination, refused (`anomaly_action=refuse`).
    Anomaly = -7,
}

/// `sipguard_call_start` verdicts; never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum StartVerdict {
    Admitted = 1,
    LimitReached = -1,
    Suspended = -2,
    TableFull = -5,
    Unavailable = -6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dial {
    pub verdict: DialVerdict,
    pub class: Option<Class>,
    pub rate: Money,
}

#[repr(C)]
#[derive(Default)]
struct Counters {
    denied: AtomicU64,
    suspensions: AtomicU64,
    active_calls: AtomicU64,
    /// Suspension changes, and the count last saved.
    changes: AtomicU64,
    saved: AtomicU64,
    /// When a save last failed (monotonic ns): retried a minute later, not
    /// every second with an error line each time.
    save_failed_ns: AtomicU64,
    /// Accounts suspended now, recounted by every tick (a gauge).
    suspended_now: AtomicU64,
}

// SAFETY: repr(C) struct of atomics.
unsafe impl Shared for Counters {}
const _: () = assert_layout::<Counters>(56, 8);

/// Counters for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FraudStats {
    pub denied: u64,
    pub suspensions: u64,
    pub active_calls: u64,
    /// Accounts suspended now (as of the last tick).
    pub suspended_accounts: u64,
}

/// An account name for a log line: bytes outside printable ASCII as `?`
/// (names come from SIP headers; a newline must not forge a log line).
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            f.write_char(if b.is_ascii_graphic() { b as char } else { '?' })?;
        }
        Ok(())
    }
}

/// The toll-fraud state: the published rules, the account table and the
/// counters, areas of the engine's mapping ([`crate::engine::Engine::fraud`]),
/// or of one of their own ([`Fraud::create`], a handle without an engine).
pub struct Fraud {
    pub cfg: FraudConfig,
    store: Arc<Store>,
    /// The whole mapping's plan, to verify its header against.
    plan: Plan,
    rules: Published,
    accounts: Accounts,
    counters: usize,
    /// Saved suspensions the account table had no room for at start:
    /// written again by every save, so none is lost.
    unrestored: Vec<persist::Saved>,
    /// Cluster replication, when on: suspensions made here are queued for
    /// the peers ([`replica`]).
    pub cluster: Option<crate::cluster::Cluster>,
    /// Each account's normal, learnt (`baseline_days` > 0).
    baseline: Option<baseline::Baselines>,
}

/// Where the toll-fraud areas lie in a mapping's [`Plan`].
pub struct FraudPlan {
    rules: published::RulesArea,
    accounts: crate::shm::keyed::TableArea<accounts::Account>,
    counters: usize,
    baseline: Option<baseline::BaselinePlan>,
}

impl Fraud {
    /// Add the toll-fraud areas for `cfg` to `plan`.
    pub fn plan(plan: &mut Plan, cfg: &FraudConfig) -> FraudPlan {
        FraudPlan {
            rules: Published::plan(plan, cfg.max_rules),
            accounts: Accounts::plan(plan, cfg.account_table_size),
            counters: plan.array::<Counters>(*b"FCNT", 1).offset,
            baseline: cfg
                .baseline
                .enabled()
                .then(|| baseline::Baselines::plan(plan, &cfg.baseline)),
        }
    }

    /// A handle with a mapping of its own (no engine). Before the fork.
    pub fn create(cfg: &FraudConfig, now: u64) -> Result<Fraud, String> {
        cfg.validate().map_err(|e| e.to_string())?;
        let mut plan = Plan::new();
        let areas = Self::plan(&mut plan, cfg);
        let store = Store::create(&plan)?;
        Self::attach(store, plan, areas, cfg, now)
    }

    /// Take the areas `areas` of `store` (mapped from `plan`, not used by
    /// another handle yet), then load the rules (an error names the file
    /// and line) and the saved suspensions. Before the fork.
    pub fn attach(
        store: Arc<Store>,
        plan: Plan,
        areas: FraudPlan,
        cfg: &FraudConfig,
        now: u64,
    ) -> Result<Fraud, String> {
        cfg.validate().map_err(|e| e.to_string())?;
        let th = Thresholds {
            cpm_warning: cfg.cpm_warning,
            cpm_critical: cfg.cpm_critical,
            spend_warning: cfg.spend_warning.0,
            spend_critical: cfg.spend_critical.0,
        };
        let mut fraud = Fraud {
            cfg: cfg.clone(),
            rules: Published::attach(&store, areas.rules),
            accounts: Accounts::attach(&store, areas.accounts, th),
            counters: areas.counters,
            baseline: areas
                .baseline
                .map(|a| baseline::Baselines::attach(&store, a, &cfg.baseline)),
            store,
            plan,
            unrestored: Vec::new(),
            cluster: None,
        };
        // The numbering-plan data, before the fork: the processes share it.
        plan::load();
        if cfg.rules_file.is_some() {
            fraud
                .reload()
                .map_err(|e| format!("parameter fraud_rules: {e}"))?;
        }
        if let Some(path) = &cfg.state_file {
            match persist::load_with(&fraud.accounts, fraud.baseline.as_ref(), path, now) {
                Ok(loaded) => fraud.loaded(path, loaded),
                Err(e) => log(
                    Level::Err,
                    format_args!("sipguard: fraud_state_file ignored: {e}"),
                ),
            }
        }
        fraud.seed_at_start(now)?;
        fraud.verify()?;
        Ok(fraud)
    }

    /// Refuse a mapping whose header does not describe this handle's plan.
    pub fn verify(&self) -> Result<(), String> {
        self.store.verify(&self.plan)
    }

    /// Log what the state file gave; keep what could not be restored for
    /// the saves (this is before the fork: every process has the list).
    fn loaded(&mut self, path: &std::path::Path, loaded: persist::Loaded) {
        for w in &loaded.warnings {
            log(Level::Warn, format_args!("sipguard: fraud_state_file {w}"));
        }
        log(
            Level::Notice,
            format_args!(
                "sipguard: restored {} suspended accounts from {}",
                loaded.restored,
                path.display()
            ),
        );
        for (name, reason, _) in &loaded.unrestored {
            log(
                Level::Err,
                format_args!(
                    "sipguard: suspension of account={} reason={} NOT restored: its bucket of \
                     the account table is full (raise account_table_size); kept in {}",
                    Printable(name),
                    reason.name(),
                    path.display()
                ),
            );
        }
        if !loaded.unrestored.is_empty() {
            log(
                Level::Err,
                format_args!(
                    "sipguard: {} saved suspensions could not be restored; they stay in {} \
                     and are restored at a later start",
                    loaded.unrestored.len(),
                    path.display()
                ),
            );
        }
        self.unrestored = loaded.unrestored;
    }

    fn counters(&self) -> &Counters {
        self.store.at(self.counters, 0)
    }

    /// Bytes of the mapping.
    /// Shared bytes of the toll-fraud areas (as mapped alone, header
    /// included), whichever mapping holds them.
    pub fn bytes(&self) -> usize {
        let mut alone = Plan::new();
        Self::plan(&mut alone, &self.cfg);
        alone.bytes()
    }

    pub fn account_capacity(&self) -> u64 {
        self.accounts.capacity()
    }

    /// Re-read the rules file and publish it; on error the old rules stay.
    pub fn reload(&self) -> Result<(usize, usize), String> {
        let path = self
            .cfg
            .rules_file
            .as_deref()
            .ok_or("no fraud_rules file is set")?;
        let set = rules::load(path, self.cfg.max_rules as usize)?;
        self.rules.publish(&set)?;
        let counts = (
            set.prefixes.len(),
            set.accounts.len() + set.default.is_some() as usize,
        );
        log(
            Level::Notice,
            format_args!(
                "sipguard: rules loaded from {}: {} prefixes, {} account rules",
                path.display(),
                counts.0,
                counts.1
            ),
        );
        Ok(counts)
    }

    fn report(&self, name_bytes: &[u8], v: &Verdict) {
        let name = Printable(name_bytes);
        for c in v.warnings.iter().flatten() {
            log(
                Level::Warn,
                format_args!(
                    "sipguard: WARNING account={name} reason={} value={} threshold={}",
                    c.reason.name(),
                    c.value_text(),
                    c.threshold_text()
                ),
            );
        }
        if let Some(c) = v.suspended_now {
            self.suspended(name, &c);
            self.replicate_suspend(name_bytes, c.reason);
        }
    }

    pub(crate) fn suspended(&self, name: Printable<'_>, c: &Crossing) {
        let k = self.counters();
        k.suspensions.fetch_add(1, Relaxed);
        k.changes.fetch_add(1, Relaxed);
        log(
            Level::Warn,
            format_args!(
                "sipguard: SUSPEND account={name} reason={} value={} threshold={}",
                c.reason.name(),
                c.value_text(),
                c.threshold_text()
            ),
        );
    }

    /// Whether `account` may call `dialled` now; counts the attempt of an
    /// account that has a rule (or a default rule). The reason goes to `why`. Allocates nothing.
    pub fn dial_check(
        &self,
        account: &[u8],
        dialled: &[u8],
        now: u64,
        wall_ms: u64,
        why: &mut impl Write,
    ) -> Dial {
        let number = number::normalize(dialled, &self.cfg);
        let number = number.as_ref().map(|n| n.digits()).map_err(|e| e.why());
        let d = self.dial(account, number, false, now, wall_ms, why);
        if d.verdict != DialVerdict::Allowed {
            self.counters().denied.fetch_add(1, Relaxed);
        }
        d
    }

    /// [`Fraud::dial_check`] of what a request URI dials: the canonical
    /// E.164 number ([`dial::canonical`]) is judged, and returned when it
    /// could be read; a URI read more than one way is refused (NoRule). A
    /// number no prefix rule matches is classed by the numbering-plan data
    /// ([`plan`]), at rate 0: that lookup allocates (once per INVITE).
    pub fn dial_check_uri(
        &self,
        account: &[u8],
        uri: &dial::DialUri<'_>,
        now: u64,
        wall_ms: u64,
        why: &mut impl Write,
    ) -> (Dial, Option<dial::E164>) {
        let number = dial::canonical(uri, &self.cfg);
        let digits = number.as_ref().map(|n| n.digits()).map_err(|e| e.why());
        let d = self.dial(account, digits, true, now, wall_ms, why);
        if d.verdict != DialVerdict::Allowed {
            self.counters().denied.fetch_add(1, Relaxed);
        }
        (d, number.ok())
    }

    fn dial(
        &self,
        account: &[u8],
        number: Result<&[u8], &'static str>,
        by_plan: bool,
        now: u64,
        wall_ms: u64,
        why: &mut impl Write,
    ) -> Dial {
        let mut out = Dial {
            verdict: DialVerdict::Unavailable,
            class: None,
            rate: Money(0),
        };
        if account.is_empty() || account.len() > NAME_BYTES {
            let _ = write!(why, "bad account name: 1..{NAME_BYTES} bytes");
            return out;
        }
        let found = match number {
            Ok(n) => self.rules.read(|v| (v.dest(n), v.account(account))),
            Err(_) => self.rules.read(|v| (None, v.account(account))),
        };
        let Some((mut dest, perm)) = found else {
            let _ = why.write_str("rules busy (reloading)");
            return out;
        };
        // The operator's prefix rules first; the plan data for the others.
        if let (None, true, Ok(n)) = (dest, by_plan, number) {
            dest = plan::class(n).map(|class| published::Dest {
                class,
                rate: Money(0),
                prefix_len: 0,
            });
        }
        out.class = dest.map(|d| d.class);
        out.rate = dest.map_or(Money(0), |d| d.rate);
        // Not listed and no default rule: it may dial nothing. Refused
        // before the attempt is counted, so a flood of invented names
        // claims no slot of the account table.
        let Some(perm) = perm else {
            out.verdict = match (&number, dest) {
                (Err(e), _) => {
                    let _ = why.write_str(e);
                    DialVerdict::NoRule
                }
                (Ok(_), None) => {
                    let _ = why.write_str("no rule for the number");
                    DialVerdict::NoRule
                }
                (Ok(_), Some(d)) => {
                    let _ = write!(why, "class {} not permitted", d.class.name());
                    DialVerdict::ClassDenied
                }
            };
            return out;
        };
        let v = match self.accounts.attempt(account, now, wall_ms) {
            Ok(v) => v,
            Err(e) => {
                let _ = write!(why, "account table {}", keyed_text(e));
                if e == KeyedError::Full {
                    out.verdict = DialVerdict::TableFull;
                }
                return out;
            }
        };
        self.report(account, &v);
        out.verdict = if v.was_suspended {
            let _ = why.write_str("account suspended");
            DialVerdict::Suspended
        } else if let Some(c) = v.suspended_now {
            let _ = write!(
                why,
                "velocity exceeded: {} {} over {}",
                c.reason.name(),
                c.value_text(),
                c.threshold_text()
            );
            DialVerdict::Velocity
        } else if let Err(e) = number {
            let _ = why.write_str(e);
            DialVerdict::NoRule
        } else if let (Some(d), Ok(n)) = (dest, number) {
            if perm.classes & d.class.bit() != 0 {
                self.dial_allowed(account, n, d.class, now, wall_ms, why)
            } else {
                let _ = write!(why, "class {} not permitted", d.class.name());
                DialVerdict::ClassDenied
            }
        } else {
            let _ = why.write_str("no rule for the number");
            DialVerdict::NoRule
        };
        out
    }

    /// The rate of the prefix `dialled` matches (0 when none).
    pub fn rate_of(&self, dialled: &[u8]) -> Money {
        let Ok(n) = number::normalize(dialled, &self.cfg) else {
            return Money(0);
        };
        self.rules
            .read(|v| v.dest(n.digits()))
            .flatten()
            .map_or(Money(0), |d| d.rate)
    }

    /// Admit a call of `account`: `limit` from the script (0: the account's
    /// rule, else `call_limit`). Arms `ticket` on admission.
    pub fn call_start(
        &self,
        account: &[u8],
        limit: u32,
        rate: Money,
        now: u64,
        ticket: &CallTicket,
        why: &mut impl Write,
    ) -> StartVerdict {
        if account.is_empty() || account.len() > NAME_BYTES {
            let _ = write!(why, "bad account name: 1..{NAME_BYTES} bytes");
            return StartVerdict::Unavailable;
        }
        let limit = if limit > 0 {
            limit
        } else {
            match self.rules.read(|v| v.account(account)) {
                Some(Some(p)) if p.limit > 0 => p.limit,
                Some(_) => self.cfg.call_limit,
                None => {
                    // Fail closed like the dial check: call_limit (0 = no
                    // limit by default) is no stand-in for the account's.
                    let _ = why.write_str("rules busy (reloading)");
                    return StartVerdict::Unavailable;
                }
            }
        };
        // The calls up on the other nodes of a cluster count too.
        let remote = self.remote_calls(account);
        if limit > 0 && remote >= limit {
            let _ = write!(why, "call limit reached: {remote} of {limit} up on other nodes");
            return StartVerdict::LimitReached;
        }
        let limit = if limit > 0 { limit - remote } else { 0 };
        match self.accounts.start(account, limit, rate, now, ticket) {
            Ok(Start::Admitted { active }) => {
                self.counters().active_calls.fetch_add(1, Relaxed);
                self.replicate_calls(account, active);
                StartVerdict::Admitted
            }
            Ok(Start::LimitReached { active, limit }) => {
                let _ = write!(
                    why,
                    "call limit reached: {} of {} up",
                    active + remote,
                    limit + remote
                );
                StartVerdict::LimitReached
            }
            Ok(Start::Suspended) => {
                let _ = why.write_str("account suspended");
                StartVerdict::Suspended
            }
            Err(e) => {
                let _ = write!(why, "account table {}", keyed_text(e));
                match e {
                    KeyedError::Full => StartVerdict::TableFull,
                    _ => StartVerdict::Unavailable,
                }
            }
        }
    }

    pub fn call_answered(&self, ticket: &CallTicket, now: u64) -> Result<(), KeyedError> {
        self.accounts.answer(ticket, now)
    }

    /// Ok(true) when this ended the call (it counted down).
    pub fn call_end(&self, ticket: &CallTicket, now: u64) -> Result<bool, KeyedError> {
        let cost = ticket.cost_by(now);
        let ended = self.accounts.end(ticket, now)?;
        if ended {
            self.learn_spend(ticket.account_key(), cost, now);
            let c = &self.counters().active_calls;
            let _ = c.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
        Ok(ended)
    }

    pub fn suspend(&self, account: &[u8], now: u64, wall_ms: u64) -> Result<bool, KeyedError> {
        let done = self.accounts.suspend(account, Reason::Rpc, now, wall_ms)?;
        if done {
            let c = Crossing {
                reason: Reason::Rpc,
                value: 0,
                threshold: 0,
            };
            self.suspended(Printable(account), &c);
            self.replicate_suspend(account, c.reason);
        }
        Ok(done)
    }

    pub fn unsuspend(&self, account: &[u8], now: u64) -> Result<(), KeyedError> {
        let lifted = self.accounts.unsuspend(account, now);
        // The peers may hold the suspension this node no longer has.
        if matches!(lifted, Ok(()) | Err(KeyedError::NotFound)) {
            self.replicate_unsuspend(account);
        }
        lifted?;
        self.counters().changes.fetch_add(1, Relaxed);
        log(
            Level::Warn,
            format_args!("sipguard: UNSUSPEND account={} reason=rpc", Printable(account)),
        );
        Ok(())
    }

    /// Timer work, once a second: suspend on running exposure, hand every
    /// new suspension to `event` (the host's event route), save changes.
    pub fn tick(&self, now: u64, wall_ms: u64, mut event: impl FnMut(&[u8], Reason)) {
        self.tick_with(now, wall_ms, Some(&mut event));
    }

    /// A tick with no event route (shutdown): suspends and saves like
    /// [`Fraud::tick`], but leaves pending events pending.
    pub fn tick_keeping_events(&self, now: u64, wall_ms: u64) {
        self.tick_with(now, wall_ms, None);
    }

    fn tick_with(&self, now: u64, wall_ms: u64, event: Option<&mut EventFn<'_>>) {
        self.spend_anomalies(now, wall_ms);
        let (crossed, pending) = self.accounts.sweep(now, wall_ms, event.is_some());
        self.refresh_usage(now);
        let suspended = self.accounts.suspended();
        self.counters().suspended_now.store(suspended, Relaxed);
        for (name, v) in &crossed {
            self.report(name, v);
        }
        let shutdown = event.is_none();
        if let Some(event) = event {
            for (name, reason) in &pending {
                event(name, *reason);
            }
        }
        self.save_due(now, shutdown);
    }

    /// Write suspensions if they changed since the last save.
    pub fn save_if_changed(&self, now: u64) {
        self.save_due(now, false);
    }

    /// Write suspensions if they changed since the last save, and baselines
    /// if they changed and were last saved a minute ago (or `force`).
    fn save_due(&self, now: u64, force: bool) {
        let Some(path) = &self.cfg.state_file else {
            return;
        };
        let k = self.counters();
        let changes = k.changes.load(Relaxed);
        let failed = k.save_failed_ns.load(Relaxed);
        let learnt = self.baseline.as_ref().and_then(|b| b.unsaved());
        let learnt_due = learnt.is_some_and(|(_, at)| force || now.saturating_sub(at) >= SAVE_RETRY_NS);
        if (changes == k.saved.load(Relaxed) && !learnt_due)
            || (failed != 0 && now.saturating_sub(failed) < SAVE_RETRY_NS)
        {
            return;
        }
        match persist::save_with(
            &self.accounts,
            self.baseline.as_ref(),
            path,
            now,
            &self.unrestored,
        ) {
            Ok(_) => {
                k.saved.store(changes, Relaxed);
                k.save_failed_ns.store(0, Relaxed);
                if let (Some(b), Some((c, _))) = (&self.baseline, learnt) {
                    b.saved(c, now);
                }
            }
            Err(e) => {
                k.save_failed_ns.store(now.max(1), Relaxed);
                log(
                    Level::Err,
                    format_args!("sipguard: cannot save fraud_state_file (retried in a minute): {e}"),
                )
            }
        }
    }

    pub fn list(&self, now: u64, f: impl FnMut(accounts::AccountInfo) -> bool) -> usize {
        self.accounts.list(now, f)
    }

    pub fn stats(&self) -> FraudStats {
        let k = self.counters();
        FraudStats {
            denied: k.denied.load(Relaxed),
            suspensions: k.suspensions.load(Relaxed),
            active_calls: k.active_calls.load(Relaxed),
            suspended_accounts: k.suspended_now.load(Relaxed),
        }
    }

    /// Calls up, counted over the table (slow: RPC and tests).
    pub fn active_calls_counted(&self) -> u64 {
        self.accounts.active_calls()
    }
}

fn keyed_text(e: KeyedError) -> &'static str {
    match e {
        KeyedError::Full => "full: bucket holds only live accounts",
        KeyedError::Busy => "busy",
        KeyedError::NotFound => "has no such account",
    }
}

#[cfg(test)]
mod tests;
