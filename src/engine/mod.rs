//! The composition root: one [`Engine`] per host, made in the parent before
//! the fork, owns the one shared mapping ([`crate::shm::store`]), every
//! capability carved from it and the whole parameter set
//! ([`config::Config`]). A request or reply of the C ABI ([`crate::ffi`])
//! enters here; the engine hands it to the capabilities in turn (the flood
//! check, then the guessing defences).
//!
//! The mapping, in the order the engine plans it: the header, the event
//! counters, the flood defence's areas (its shared values, the source
//! table, the prefix table), the guessing defences' tables (sources, user
//! names, transactions), the toll-fraud areas (published rules, accounts,
//! counters), whose handle [`Engine::fraud`] makes once before the fork
//! ([`crate::fraud::Fraud`]; a handle made without an engine maps those
//! areas alone, the same way).

pub mod cluster;
#[cfg(test)]
mod cluster_tests;
pub mod config;
#[cfg(test)]
mod guess_tests;
#[cfg(test)]
mod reply_tests;
#[cfg(test)]
mod state_file_tests;

use self::config::Config;
use crate::blocklist::{Blocklist, BlocklistArea};
use crate::cluster::{Cluster, ClusterPlan};
use crate::flood::region::{Flood, FloodPlan};
use crate::flood::table::{CheckResult, TableError, Verdict};
use crate::fraud::{Fraud, FraudPlan};
use crate::guess::reply::{Outcome, Reply};
use crate::guess::{Defences, Finding, Guess, GuessPlan, PolicyMark, Request, TxnState, UserInfo};
use crate::shm::counters::{Counter, Counters};
use crate::shm::store::{Area, Plan, Store};
use crate::sip::addr::address_bits;
use std::sync::Arc;

/// Process-local handle to the shared state of every capability; children
/// inherit it through fork together with the mapping.
pub struct Engine {
    /// The whole parameter set, as validated (read-only).
    pub cfg: Config,
    store: Arc<Store>,
    /// Rate limits and bans per source (the source and prefix tables).
    pub flood: Flood,
    /// The guessing defences' tables.
    pub guess: Guess,
    /// Cluster replication's queue, who-wins table and peers (`cluster` on).
    pub cluster: Option<Cluster>,
    /// The shared blocklist.
    pub blocklist: Blocklist,
}

/// Where everything lies in the engine's mapping.
struct EnginePlan {
    plan: Plan,
    counters: Area,
    flood: FloodPlan,
    guess: GuessPlan,
    fraud: FraudPlan,
    cluster: Option<ClusterPlan>,
    blocklist: BlocklistArea,
}

impl Engine {
    /// Check `cfg` as a whole, then map every capability's shared state.
    /// Pages are touched now, so memory use is fixed from the start and
    /// never grows under a flood.
    pub fn create(cfg: &Config) -> Result<Engine, String> {
        cfg.validate().map_err(|e| e.to_string())?;
        cfg.check_state_files().map_err(|e| e.to_string())?;
        let p = Self::plan(cfg);
        let store =
            Store::create(&p.plan).map_err(|e| format!("{e} (table_size {})", cfg.flood.table_size))?;
        let cluster = p.cluster.map(|c| Cluster::attach(&store, c));
        let mut flood = Flood::attach(&store, p.flood, p.counters, &cfg.flood);
        flood.cluster = cluster.clone();
        let engine = Engine {
            cfg: cfg.clone(),
            flood,
            guess: Guess::attach(&store, p.guess, &cfg.guess),
            cluster,
            blocklist: Blocklist::attach(&store, p.blocklist, &cfg.blocklist),
            store,
        };
        engine.verify()?;
        if cfg.blocklist.file.is_some() {
            engine
                .blocklist
                .reload()
                .map_err(|e| format!("parameter blocklist_file: {e}"))?;
        }
        Ok(engine)
    }

    fn plan(cfg: &Config) -> EnginePlan {
        let mut plan = Plan::new();
        let counters = plan.array::<Counters>(*b"CNTR", 1);
        let flood = Flood::plan(&mut plan, &cfg.flood);
        let guess = Guess::plan(&mut plan, cfg.flood.table_size, &cfg.guess);
        let fraud = Fraud::plan(&mut plan, &cfg.fraud);
        let cluster = cfg.cluster.then(|| Cluster::plan(&mut plan));
        let blocklist = Blocklist::plan(&mut plan, &cfg.blocklist);
        EnginePlan {
            plan,
            counters,
            flood,
            guess,
            fraud,
            cluster,
            blocklist,
        }
    }

    /// Bytes the engine maps for `cfg`, header included.
    pub fn mapped_bytes(cfg: &Config) -> usize {
        Self::plan(cfg).plan.bytes()
    }

    /// The toll-fraud handle on this engine's mapping: its rules, accounts
    /// and counters are areas of it. Made once, before the fork (it loads
    /// the rules file and the saved suspensions).
    pub fn fraud(&self, now: u64) -> Result<Fraud, String> {
        let p = Self::plan(&self.cfg);
        let mut fraud = Fraud::attach(self.store.clone(), p.plan, p.fraud, &self.cfg.fraud, now)?;
        fraud.set_cluster(self.cluster.clone());
        Ok(fraud)
    }

    /// Refuse a mapping whose header does not describe the layout this
    /// engine's parameters give (checked when the engine is handed out).
    pub fn verify(&self) -> Result<(), String> {
        self.store.verify(&Self::plan(&self.cfg).plan)
    }

    /// Bytes of the mapping.
    pub fn bytes(&self) -> usize {
        self.store.bytes()
    }

    /// The event counters of every capability.
    pub fn counters(&self) -> &Counters {
        self.flood.counters()
    }

    /// The guessing defences at work: their tables, and the source table
    /// they ban through and count in.
    pub fn defences(&self) -> Defences<'_> {
        Defences {
            guess: &self.guess,
            flood: &self.flood,
        }
    }

    /// One request from `addr`: the flood check (rate limit, bans), then,
    /// if it lets the request through, the guessing defences' request-time
    /// checks (a scanner or an enumeration bans the source now).
    pub fn check_request(&self, addr: &[u8], req: &Request, now: u64) -> Result<CheckResult, TableError> {
        let mut res = self.check(addr, now)?;
        if matches!(res.verdict, Verdict::Pass | Verdict::Untracked) {
            res.verdict = match self.guess_request(addr, req, now) {
                Finding::Clean => res.verdict,
                Finding::Scanner => Verdict::Scanner,
                Finding::Enumeration => Verdict::Enumeration,
            };
        }
        Ok(res)
    }

    /// The check of one source address: a listed one (not allowlisted) is
    /// refused at once and not counted against the rate; any other goes
    /// through the flood check.
    pub fn check(&self, addr: &[u8], now: u64) -> Result<CheckResult, TableError> {
        if self.blocklisted(addr) {
            self.counters().bump(Counter::Blocklisted);
            self.blocklist.log_refused(addr, now);
            return Ok(CheckResult::blocklisted());
        }
        self.flood.check(addr, now)
    }

    /// Whether a datagram from `addr` is dropped before parsing (early
    /// drop): its source is on the blocklist (counted here) or banned
    /// (counted by the flood check). One call for the host's hook.
    pub fn drop_check(&self, addr: &[u8], now: u64) -> Result<bool, TableError> {
        if self.blocklisted(addr) {
            self.counters().bump(Counter::Blocklisted);
            return Ok(true);
        }
        self.flood.drop_check(addr, now)
    }

    /// Whether `addr` (raw bytes) is on the blocklist and not allowlisted
    /// (the operator's own trust wins over a shared feed). Counts nothing.
    pub fn blocklisted(&self, addr: &[u8]) -> bool {
        // the usual case, no blocklist: not even the address is read
        !self.blocklist.is_off()
            && address_bits(addr).is_some_and(|b| self.blocklist.contains(b) && !self.flood.allowlisted(b))
    }

    // The guessing defences, by their engine-level names.

    /// Request-time checks after the rate check passed ([`Defences::guess_request`]).
    pub fn guess_request(&self, addr: &[u8], req: &Request, now: u64) -> Finding {
        self.defences().guess_request(addr, req, now)
    }

    pub fn guess_authenticated(&self, addr: &[u8], req: &Request, now: u64) {
        self.defences().guess_authenticated(addr, req, now)
    }

    pub fn guess_auth_failed(&self, addr: &[u8], req: &Request, now: u64) -> bool {
        self.defences().guess_auth_failed(addr, req, now)
    }

    pub fn guess_auth_allowed(&self, addr: &[u8], req: &Request, now: u64) -> bool {
        self.defences().guess_auth_allowed(addr, req, now)
    }

    pub fn guess_reply(&self, key: [u64; 2], status: u16, stale: bool, rewrite: bool, now: u64) -> TxnState {
        self.defences().guess_reply(key, status, stale, rewrite, now)
    }

    pub fn guess_policy_reply(&self, req: &Request, mark: PolicyMark, now: u64) {
        self.defences().guess_policy_reply(req, mark, now)
    }

    pub fn guess_sweep(&self, now: u64) {
        self.defences().guess_sweep(now)
    }

    pub fn guess_users(&self, now: u64, max: usize) -> Vec<UserInfo> {
        self.defences().guess_users(now, max)
    }

    pub fn guess_unthrottle(&self, name: &[u8], now: u64) -> bool {
        self.defences().guess_unthrottle(name, now)
    }

    /// Reply normalization on the way out ([`crate::guess::reply`]).
    pub fn reply_wanted(&self, status: u16) -> u8 {
        self.defences().reply_wanted(status)
    }

    pub fn reply_out(&self, reply: &Reply, dst: &[u8], now: u64, out: &mut [u8]) -> Outcome {
        self.defences().reply_out(reply, dst, now, out)
    }
}

/// A 64-entry engine for tests, after `f` adjusts the defaults.
#[cfg(test)]
pub fn small_region(f: impl FnOnce(&mut Config)) -> Engine {
    let mut cfg = Config {
        flood: crate::flood::config::FloodConfig {
            table_size: 64,
            ..Default::default()
        },
        ..Default::default()
    };
    f(&mut cfg);
    Engine::create(&cfg).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_verifies_and_keys_are_per_start() {
        let a = small_region(|_| {});
        let b = small_region(|_| {});
        a.verify().unwrap();
        assert_eq!(a.bytes(), Engine::mapped_bytes(&a.cfg));
        // One name, one key in every process of an engine; another key in
        // another engine (another start).
        let key = |e: &Engine| e.guess.txn_key(b"call-1", b"1", b"INVITE");
        assert_eq!(key(&a), key(&a));
        assert_ne!(key(&a), key(&b));
        // Parameters that give another layout are refused by the header.
        let mut other = a.cfg.clone();
        other.flood.table_size = 128;
        let e = a.store.verify(&Engine::plan(&other).plan).unwrap_err();
        assert!(e.contains("bytes"), "{e}");
    }
}

#[cfg(test)]
mod fraud_tests {
    use super::*;

    #[test]
    fn the_fraud_tables_are_areas_of_the_engines_mapping() {
        let cfg = Config::default();
        let e = Engine::create(&cfg).unwrap();
        let alone = Fraud::create(&cfg.fraud, 0).unwrap();
        // The engine's one mapping holds the fraud areas too...
        let mut without = Plan::new();
        without.array::<Counters>(*b"CNTR", 1);
        Flood::plan(&mut without, &cfg.flood);
        Guess::plan(&mut without, cfg.flood.table_size, &cfg.guess);
        assert!(Engine::mapped_bytes(&cfg) >= without.bytes() + alone.bytes() - 4096);
        // ... and a handle on them works and checks that mapping's header.
        let f = e.fraud(0).unwrap();
        f.verify().unwrap();
        e.verify().unwrap();
        assert_eq!(f.account_capacity(), alone.account_capacity());
        assert_eq!(f.bytes(), alone.bytes());
    }
}
