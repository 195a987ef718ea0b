//! The whole parameter set: each capability's parameters, set one by one
//! from their text form before the fork (`set`) and checked together
//! (`validate`). The source-table (flood) parameters are kept flat here; the
//! guessing and toll-fraud parameters are the capabilities' own structs.

use crate::config::parse::{
    check_writable, invalid, parse_bool, parse_duration, parse_in, parse_int, parse_nonzero_duration,
    parse_rate, ConfigError, Rate, NS_PER_SEC,
};
use crate::flood::config::{parse_allow, FloodConfig};
use crate::fraud::config::FraudConfig;
use crate::guess::config::GuessConfig;
use crate::sip::addr::Cidr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
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
    pub early_drop: bool,
    pub state_file: Option<PathBuf>,
    pub save_interval_ns: u64,
    /// Prefix bans: IPv4 addresses are grouped per network of this many
    /// bits (32: no IPv4 prefix bans).
    pub ban_prefix_v4: u8,
    /// IPv6 keys are grouped per network of this many bits (no IPv6 prefix
    /// bans when it is not shorter than `ipv6_prefix`).
    pub ban_prefix_v6: u8,
    /// This many first bans in one network within `ban_time` ban the
    /// network; 0 = no prefix bans.
    pub ban_prefix_threshold: u32,
    /// Defences against extension and password guessing.
    pub guess: GuessConfig,
    /// Toll-fraud parameters (`crate::fraud::config`).
    pub fraud: FraudConfig,
}

impl Default for Config {
    fn default() -> Self {
        // The flood defaults are the flood defence's own.
        let f = FloodConfig::default();
        Config {
            table_size: f.table_size,
            rate: f.rate,
            burst: f.burst,
            ipv6_prefix: f.ipv6_prefix,
            ban_time_ns: f.ban_time_ns,
            ban_factor: f.ban_factor,
            ban_max_ns: f.ban_max_ns,
            ban_permanent: f.ban_permanent,
            ban_forget_ns: f.ban_forget_ns,
            allow: f.allow,
            early_drop: false,
            state_file: f.state_file,
            save_interval_ns: 60 * NS_PER_SEC,
            ban_prefix_v4: f.ban_prefix_v4,
            ban_prefix_v6: f.ban_prefix_v6,
            ban_prefix_threshold: f.ban_prefix_threshold,
            guess: GuessConfig::default(),
            fraud: Default::default(),
        }
    }
}

/// Smallest table: one bucket per lock stripe is meaningless below this.
pub const MIN_TABLE_SIZE: u64 = 64;
/// Largest table: 2^26 entries = 4 GiB of shared memory.
pub const MAX_TABLE_SIZE: u64 = 1 << 26;
/// Most first bans in one network before the network is banned.
pub const MAX_BAN_PREFIX_THRESHOLD: u64 = 1000;

impl Config {
    /// Set one parameter from its text form (the shim turns int modparams into text).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
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
            "early_drop" => self.early_drop = parse_bool("early_drop", v)?,
            "state_file" => {
                self.state_file = if v.is_empty() {
                    None
                } else {
                    Some(PathBuf::from(v))
                };
            }
            "save_interval" => self.save_interval_ns = parse_nonzero_duration("save_interval", v)?,
            "ban_prefix_v4" => self.ban_prefix_v4 = parse_in("ban_prefix_v4", v, 8, 32)? as u8,
            "ban_prefix_v6" => self.ban_prefix_v6 = parse_in("ban_prefix_v6", v, 16, 128)? as u8,
            "ban_prefix_threshold" => {
                self.ban_prefix_threshold =
                    parse_in("ban_prefix_threshold", v, 0, MAX_BAN_PREFIX_THRESHOLD)? as u32
            }
            _ if self.guess.set(name, v)? => {}
            _ => return self.fraud.set(name, v),
        }
        Ok(())
    }

    /// Requests allowed back to back.
    pub fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.rate.count)
    }

    /// The flood defence's parameters.
    pub fn flood(&self) -> FloodConfig {
        FloodConfig {
            table_size: self.table_size,
            rate: self.rate,
            burst: self.burst,
            ipv6_prefix: self.ipv6_prefix,
            ban_time_ns: self.ban_time_ns,
            ban_factor: self.ban_factor,
            ban_max_ns: self.ban_max_ns,
            ban_permanent: self.ban_permanent,
            ban_forget_ns: self.ban_forget_ns,
            allow: self.allow.clone(),
            state_file: self.state_file.clone(),
            ban_prefix_v4: self.ban_prefix_v4,
            ban_prefix_v6: self.ban_prefix_v6,
            ban_prefix_threshold: self.ban_prefix_threshold,
        }
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

    /// IPv4 prefix bans are on (a network shorter than one address).
    pub fn v4_prefix_bans(&self) -> bool {
        self.ban_prefix_v4 < 32
    }

    /// IPv6 prefix bans are on (a network shorter than the source key).
    pub fn v6_prefix_bans(&self) -> bool {
        self.ban_prefix_v6 < self.ipv6_prefix
    }

    /// The state files can be written: each one's directory exists and takes
    /// a new file (the temporary file a save writes first), and the path is
    /// not a directory. Called at start (before the fork), so a path that
    /// every later save would fail on stops Kamailio, naming the parameter.
    pub fn check_state_files(&self) -> Result<(), ConfigError> {
        if let Some(p) = &self.state_file {
            check_writable("state_file", p)?;
        }
        if let Some(p) = &self.fraud.state_file {
            check_writable("fraud_state_file", p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_reference_article() {
        let c = Config::default();
        assert_eq!(
            c.rate,
            Rate {
                count: 30,
                period_ns: 2 * NS_PER_SEC
            }
        );
        assert_eq!(c.burst(), 30);
        assert_eq!(c.ban_time_ns, 300 * NS_PER_SEC);
        assert_eq!(c.ipv6_prefix, 64);
    }

    #[test]
    fn set_names_the_parameter_in_errors() {
        let mut c = Config::default();
        let e = c.set("table_size", "0").unwrap_err().to_string();
        assert!(e.contains("table_size"), "{e}");
        let e = c.set("allow", "10.0.0.0/33").unwrap_err().to_string();
        assert!(e.contains("allow") && e.contains("10.0.0.0/33"), "{e}");
        let e = c.set("ban_time", "0").unwrap_err().to_string();
        assert!(e.contains("ban_time"), "{e}");
        let e = c.set("early_drop", "maybe").unwrap_err().to_string();
        assert!(e.contains("early_drop"), "{e}");
        assert!(matches!(
            c.set("nonsense", "1"),
            Err(ConfigError::UnknownParam(_))
        ));
    }

    #[test]
    fn allow_accepts_lists_and_repeats() {
        let mut c = Config::default();
        c.set("allow", "127.0.0.250/32, 10.0.0.0/8").unwrap();
        c.set("allow", "2001:db8::/32").unwrap();
        assert_eq!(c.allow.len(), 3);
    }

    #[test]
    fn prefix_ban_parameters() {
        let mut c = Config::default();
        assert_eq!(
            (c.ban_prefix_v4, c.ban_prefix_v6, c.ban_prefix_threshold),
            (24, 48, 16)
        );
        assert!(c.v4_prefix_bans() && c.v6_prefix_bans());
        c.set("ban_prefix_v4", "16").unwrap();
        c.set("ban_prefix_v6", "56").unwrap();
        c.set("ban_prefix_threshold", "0").unwrap();
        assert_eq!(
            (c.ban_prefix_v4, c.ban_prefix_v6, c.ban_prefix_threshold),
            (16, 56, 0)
        );
        // A network as long as the source key: no prefix bans for that family.
        c.set("ban_prefix_v4", "32").unwrap();
        c.set("ipv6_prefix", "56").unwrap();
        assert!(!c.v4_prefix_bans() && !c.v6_prefix_bans());
        for (name, bad) in [
            ("ban_prefix_v4", "7"),
            ("ban_prefix_v4", "33"),
            ("ban_prefix_v6", "15"),
            ("ban_prefix_v6", "129"),
            ("ban_prefix_v6", "x"),
            ("ban_prefix_threshold", "1001"),
            ("ban_prefix_threshold", "-1"),
        ] {
            let e = c.set(name, bad).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn unwritable_state_files_are_refused_naming_the_parameter() {
        let dir = std::env::temp_dir().join(format!("sipguard-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Config::default();
        c.check_state_files().unwrap();
        c.set("state_file", dir.join("bans.state").to_str().unwrap())
            .unwrap();
        c.fraud.state_file = Some(dir.join("accounts.state"));
        c.check_state_files().unwrap();
        // The probe leaves nothing behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        c.fraud.state_file = Some(dir.join("missing/accounts.state"));
        let e = c.check_state_files().unwrap_err().to_string();
        assert!(
            e.starts_with("parameter fraud_state_file:") && e.contains("does not exist"),
            "{e}"
        );
        c.set("state_file", dir.join("missing/bans.state").to_str().unwrap())
            .unwrap();
        let e = c.check_state_files().unwrap_err().to_string();
        assert!(
            e.starts_with("parameter state_file:") && e.contains("missing"),
            "{e}"
        );
        c.set("state_file", dir.to_str().unwrap()).unwrap();
        let e = c.check_state_files().unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn ban_max_shorter_than_ban_time_is_refused() {
        let mut c = Config::default();
        c.set("ban_time", "1h").unwrap();
        c.set("ban_max", "10m").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("ban_max"));
    }
}
