//! The composition root: one [`Engine`] per host, made in the parent before
//! the fork, owns every capability that lives in shared memory and the
//! whole parameter set ([`config::Config`]). A request or reply of the C ABI
//! ([`crate::ffi`]) enters here; the engine hands it to the capabilities in
//! turn (the flood check, then the guessing defences).

pub mod config;
#[cfg(test)]
mod guess_tests;
#[cfg(test)]
mod reply_tests;

use self::config::Config;
use crate::flood::region::Flood;
use crate::flood::table::{CheckResult, TableError, Verdict};
use crate::guess::reply::{Outcome, Reply};
use crate::guess::{Defences, Finding, Guess, Request, TxnState, UserInfo};
use crate::shm::counters::Counters;

/// Process-local handle to the shared state of every capability; children
/// inherit it through fork together with the mappings.
pub struct Engine {
    /// The whole parameter set, as validated (read-only).
    pub cfg: Config,
    /// Rate limits and bans per source (the region of the source table).
    pub flood: Flood,
    /// The guessing defences' tables (their own mappings, also pre-fork).
    pub guess: Guess,
}

impl Engine {
    /// Check `cfg` as a whole, then map every capability's shared state.
    /// Pages are touched now, so memory use is fixed from the start and
    /// never grows under a flood.
    pub fn create(cfg: &Config) -> Result<Engine, String> {
        cfg.validate().map_err(|e| e.to_string())?;
        cfg.check_state_files().map_err(|e| e.to_string())?;
        let flood = Flood::create(&cfg.flood)?;
        let guess = Guess::create(cfg.flood.table_size, &cfg.guess)?;
        Ok(Engine {
            cfg: cfg.clone(),
            flood,
            guess,
        })
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
        let mut res = self.flood.check(addr, now)?;
        if matches!(res.verdict, Verdict::Pass | Verdict::Untracked) {
            res.verdict = match self.guess_request(addr, req, now) {
                Finding::Clean => res.verdict,
                Finding::Scanner => Verdict::Scanner,
                Finding::Enumeration => Verdict::Enumeration,
            };
        }
        Ok(res)
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

    pub fn guess_reply(&self, key: [u64; 2], challenge: bool, rewrite: bool, now: u64) -> TxnState {
        self.defences().guess_reply(key, challenge, rewrite, now)
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
