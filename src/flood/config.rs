//! The flood defence's parameters: what the source table, the rate rule,
//! bans and the ban state file need. They are set and checked as part of
//! the whole parameter set ([`crate::engine::config::Config`], which keeps
//! them flat under their parameter names) and handed to the flood defence
//! when it is created.

use crate::config::parse::{invalid, ConfigError, Rate, NS_PER_SEC};
use crate::flood::ban::Escalation;
use crate::flood::gcra::Gcra;
use crate::sip::addr::Cidr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct FloodConfig {
    pub table_size: u64,
    pub rate: Rate,
    /// None: same as `rate.count`.
    pub burst: Option<u64>,
    pub ipv6_prefix: u8,
    pub ban_time_ns: u64,
    pub ban_factor: u64,
    pub ban_max_ns: u64,
    pub ban_permanent: bool,
    pub ban_forget_ns: u64,
    pub allow: Vec<Cidr>,
    pub state_file: Option<PathBuf>,
    /// Prefix bans: IPv4 addresses are grouped per network of this many
    /// bits (32: no IPv4 prefix bans).
    pub ban_prefix_v4: u8,
    /// IPv6 keys are grouped per network of this many bits (no IPv6 prefix
    /// bans when it is not shorter than `ipv6_prefix`).
    pub ban_prefix_v6: u8,
    /// This many first bans in one network within `ban_time` ban the
    /// network; 0 = no prefix bans.
    pub ban_prefix_threshold: u32,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            table_size: 65536,
            rate: Rate {
                count: 30,
                period_ns: 2 * NS_PER_SEC,
            },
            burst: None,
            ipv6_prefix: 64,
            ban_time_ns: 300 * NS_PER_SEC,
            ban_factor: 2,
            ban_max_ns: 86_400 * NS_PER_SEC,
            ban_permanent: false,
            ban_forget_ns: 86_400 * NS_PER_SEC,
            allow: Vec::new(),
            state_file: None,
            ban_prefix_v4: 24,
            ban_prefix_v6: 48,
            ban_prefix_threshold: 16,
        }
    }
}

impl FloodConfig {
    /// Requests allowed back to back.
    pub fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.rate.count)
    }

    /// The rate rule of every source.
    pub fn gcra(&self) -> Gcra {
        Gcra::new(self.rate.count, self.rate.period_ns, self.burst())
    }

    /// How ban durations grow with offences.
    pub fn escalation(&self) -> Escalation {
        Escalation {
            base_ns: self.ban_time_ns,
            factor: self.ban_factor,
            max_ns: self.ban_max_ns,
            permanent_at_max: self.ban_permanent,
            forget_ns: self.ban_forget_ns,
        }
    }

    /// Add the networks of an `allow` value.
    pub fn add_allow(&mut self, v: &str) -> Result<(), ConfigError> {
        parse_allow(v, &mut self.allow)
    }

    /// IPv4 prefix bans are on (a network shorter than one address).
    pub fn v4_prefix_bans(&self) -> bool {
        self.ban_prefix_v4 < 32
    }

    /// IPv6 prefix bans are on (a network shorter than the source key).
    pub fn v6_prefix_bans(&self) -> bool {
        self.ban_prefix_v6 < self.ipv6_prefix
    }
}

/// The networks of an `allow` value (CIDRs separated by commas or white
/// space), added to `into`; repeated values add up.
pub fn parse_allow(v: &str, into: &mut Vec<Cidr>) -> Result<(), ConfigError> {
    for token in v.split(|c: char| c == ',' || c.is_whitespace()) {
        if token.is_empty() {
            continue;
        }
        let cidr = Cidr::parse(token).map_err(|m| invalid("allow", format!("\"{token}\": {m}")))?;
        into.push(cidr);
    }
    Ok(())
}
