//! Ban durations and the ban/unban log lines.
//!
//! The lines are a stable interface: fail2ban's filter in
//! `kamailio-cfg/fail2ban/` matches them, so change them only with it.
//!
//! ```text
//! sipguard: BAN src=<ip> key=<key> reason=<flood|manual|restored|scanner|enumeration|auth> duration=<s|permanent> offences=<n>
//! sipguard: UNBAN key=<key> reason=<expired|rpc|evicted>
//! ```
//!
//! A prefix ban uses the same BAN line: `key` is the network as a CIDR
//! (`198.51.100.0/24`, `2001:db8:1::/48`), `src` the address whose ban made
//! it (the network address when restored), `reason` that ban's reason and
//! `offences` the network's own count. fail2ban's `<HOST>` is `src`, a plain
//! address, so the filter matches it unchanged.

use crate::sip::addr::Key;
use crate::util::clock::NS_PER_SEC;
use crate::util::log::{log, Level};
use std::fmt;

/// `ban_until` of a permanent ban.
pub const PERMANENT: u64 = u64::MAX;

/// Ban reasons; the values are the ABI's `sipguard_ban_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    Flood = 1,
    Manual = 2,
    Restored = 3,
    /// A known scanner's fingerprint.
    Scanner = 4,
    /// Too many distinct user names targeted.
    Enumeration = 5,
    /// Too many authentication failures.
    Auth = 6,
}

const ALL_REASONS: [Reason; 6] = [
    Reason::Flood,
    Reason::Manual,
    Reason::Restored,
    Reason::Scanner,
    Reason::Enumeration,
    Reason::Auth,
];

impl Reason {
    pub fn from_code(code: u32) -> Option<Reason> {
        ALL_REASONS.into_iter().find(|r| *r as u32 == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Reason::Flood => "flood",
            Reason::Manual => "manual",
            Reason::Restored => "restored",
            Reason::Scanner => "scanner",
            Reason::Enumeration => "enumeration",
            Reason::Auth => "auth",
        }
    }

    pub fn from_name(name: &str) -> Option<Reason> {
        ALL_REASONS.into_iter().find(|r| r.name() == name)
    }
}

/// How long the n-th ban of a source lasts (fail2ban's bantime.increment).
#[derive(Debug, Clone, Copy)]
pub struct Escalation {
    pub base_ns: u64,
    pub factor: u64,
    pub max_ns: u64,
    pub permanent_at_max: bool,
    pub forget_ns: u64,
}

impl Escalation {
    /// base × factor^(offences-1), capped at max (or permanent at the cap).
    pub fn duration_ns(&self, offences: u32) -> u64 {
        let grown = self
            .factor
            .saturating_pow(offences.saturating_sub(1))
            .saturating_mul(self.base_ns);
        match (grown >= self.max_ns, self.permanent_at_max) {
            (false, _) => grown,
            (true, false) => self.max_ns,
            (true, true) => PERMANENT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanEvent {
    pub key: Key,
    pub reason: Reason,
    /// PERMANENT for a permanent ban.
    pub duration_ns: u64,
    pub offences: u32,
}

impl BanEvent {
    /// `src`: the address that triggered the ban, when there is one.
    pub fn log(&self, src: Option<&str>) {
        let src = SrcText(src, self.key);
        let duration = DurationText(self.duration_ns);
        log(
            Level::Notice,
            format_args!(
                "sipguard: BAN src={src} key={} reason={} duration={duration} offences={}",
                self.key,
                self.reason.name(),
                self.offences
            ),
        );
    }
}

struct SrcText<'a>(Option<&'a str>, Key);

impl fmt::Display for SrcText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => f.write_str(s),
            None => write!(f, "{}", self.1.address()),
        }
    }
}

/// Whole seconds, rounded up, or "permanent".
struct DurationText(u64);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            PERMANENT => f.write_str("permanent"),
            ns => write!(f, "{}", ns.div_ceil(NS_PER_SEC)),
        }
    }
}

/// Why a ban ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ran out.
    Expired,
    /// Lifted by RPC.
    Rpc,
    /// Lifted to make room for a newer ban in a bucket whose ban ways were
    /// all taken (see [`crate::flood::table`]).
    Evicted,
}

impl Ended {
    pub fn name(self) -> &'static str {
        match self {
            Ended::Expired => "expired",
            Ended::Rpc => "rpc",
            Ended::Evicted => "evicted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnbanEvent {
    pub key: Key,
    pub why: Ended,
}

impl UnbanEvent {
    pub fn log(&self) {
        log(
            Level::Notice,
            format_args!("sipguard: UNBAN key={} reason={}", self.key, self.why.name()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_doubles_up_to_the_cap() {
        let e = Escalation {
            base_ns: 300,
            factor: 2,
            max_ns: 1000,
            permanent_at_max: false,
            forget_ns: 0,
        };
        assert_eq!(
            [1, 2, 3, 4, 60].map(|n| e.duration_ns(n)),
            [300, 600, 1000, 1000, 1000]
        );
        let p = Escalation {
            permanent_at_max: true,
            ..e
        };
        assert_eq!([1, 2, 3].map(|n| p.duration_ns(n)), [300, 600, PERMANENT]);
    }

    #[test]
    fn reasons_round_trip() {
        for r in [Reason::Flood, Reason::Manual, Reason::Restored] {
            assert_eq!(Reason::from_name(r.name()), Some(r));
            assert_eq!(Reason::from_code(r as u32), Some(r));
        }
    }
}
