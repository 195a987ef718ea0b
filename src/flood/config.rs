//! The flood defence's parameters: what the source table, the rate rule,
//! bans and the ban state file need, each set from its text form here
//! ([`FloodConfig::set`]) as part of the whole parameter set
//! ([`crate::engine::config::Config`]).

use crate::config::parse::{
    invalid, parse_bool, parse_duration, parse_in, parse_int, parse_nonzero_duration, parse_rate,
    ConfigError, Rate, NS_PER_SEC,
};
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

/// Smallest table: one bucket per lock stripe is meaningless below this.
pub const MIN_TABLE_SIZE: u64 = 64;
/// Largest table: 2^26 entries = 4 GiB of shared memory.
pub const MAX_TABLE_SIZE: u64 = 1 << 26;
/// Most first bans in one network before the network is banned.
pub const MAX_BAN_PREFIX_THRESHOLD: u64 = 1000;

impl FloodConfig {
    /// Set one flood parameter from its text form; `Ok(false)`: not a
    /// flood parameter.
    pub fn set(&mut self, name: &str, v: &str) -> Result<bool, ConfigError> {
        match name {
            "table_size" => {
                let n = parse_int("table_size", v)?;
                if !(MIN_TABLE_SIZE..=MAX_TABLE_SIZE).contains(&n) {
                    return Err(invalid(
                        "table_size",
                        format!("\"{v}\" out of range: expected {MIN_TABLE_SIZE}..{MAX_TABLE_SIZE} entries"),
                    ));
                }
                self.table_size = n;
            }
            "rate" => self.rate = parse_rate(v)?,
            "burst" => {
                let n = parse_int("burst", v)?;
                if n == 0 || n > 1_000_000 {
                    return Err(invalid(
                        "burst",
                        format!("\"{v}\" out of range: expected 1..1000000"),
                    ));
                }
                self.burst = Some(n);
            }
            "ipv6_prefix" => {
                let n = parse_int("ipv6_prefix", v)?;
                if !(1..=128).contains(&n) {
                    return Err(invalid(
                        "ipv6_prefix",
                        format!("\"{v}\" out of range: expected 1..128"),
                    ));
                }
                self.ipv6_prefix = n as u8;
            }
            "ban_time" => self.ban_time_ns = parse_nonzero_duration("ban_time", v)?,
            "ban_factor" => {
                let n = parse_int("ban_factor", v)?;
                if !(1..=1000).contains(&n) {
                    return Err(invalid(
                        "ban_factor",
                        format!("\"{v}\" out of range: expected 1..1000"),
                    ));
                }
                self.ban_factor = n;
            }
            "ban_max" if v == "permanent" => {
                return Err(invalid(
                    "ban_max",
                    "\"permanent\" is not a duration: set ban_max to the cap and ban_permanent=1 \
                     to make a ban that reaches it permanent"
                        .to_string(),
                ))
            }
            "ban_max" => self.ban_max_ns = parse_nonzero_duration("ban_max", v)?,
            "ban_permanent" => self.ban_permanent = parse_bool("ban_permanent", v)?,
            "ban_forget" => self.ban_forget_ns = parse_duration("ban_forget", v)?,
            "allow" => parse_allow(v, &mut self.allow)?,
            "state_file" => {
                self.state_file = if v.is_empty() {
                    None
                } else {
                    Some(PathBuf::from(v))
                };
            }
            "ban_prefix_v4" => self.ban_prefix_v4 = parse_in("ban_prefix_v4", v, 8, 32)? as u8,
            "ban_prefix_v6" => self.ban_prefix_v6 = parse_in("ban_prefix_v6", v, 16, 128)? as u8,
            "ban_prefix_threshold" => {
                self.ban_prefix_threshold =
                    parse_in("ban_prefix_threshold", v, 0, MAX_BAN_PREFIX_THRESHOLD)? as u32
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks that need more than one parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ban_max_ns < self.ban_time_ns {
            return Err(invalid(
                "ban_max",
                format!(
                    "{}s is shorter than ban_time {}s",
                    self.ban_max_ns / NS_PER_SEC,
                    self.ban_time_ns / NS_PER_SEC
                ),
            ));
        }
        Ok(())
    }

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
