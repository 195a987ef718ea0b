//! The whole parameter set: each capability's own parameter struct
//! (`flood`, `guess`, `fraud`), each with its `set`, and the few settings
//! of the engine's host (`early_drop`, `save_interval`, `cluster`). Set one by one
//! from their text form before the fork ([`Config::set`] hands a name to
//! the capability that knows it; the names operators write are flat) and
//! checked together ([`Config::validate`]).

use crate::blocklist::config::BlocklistConfig;
use crate::config::parse::{check_writable, parse_bool, parse_nonzero_duration, ConfigError, NS_PER_SEC};
use crate::flood::config::FloodConfig;
use crate::fraud::config::FraudConfig;
use crate::guess::config::GuessConfig;

#[derive(Debug, Clone)]
pub struct Config {
    /// Rate limits, bans, the source table and the ban state file.
    pub flood: FloodConfig,
    /// Defences against extension and password guessing.
    pub guess: GuessConfig,
    /// Toll-fraud parameters.
    pub fraud: FraudConfig,
    /// The shared blocklist.
    pub blocklist: BlocklistConfig,
    /// The host drops a banned source's packets before parsing them.
    pub early_drop: bool,
    /// How often the host saves the state files.
    pub save_interval_ns: u64,
    /// Bans are replicated to the other nodes of a cluster (over the host's
    /// DMQ); the replication's areas are mapped only then.
    pub cluster: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            flood: FloodConfig::default(),
            guess: GuessConfig::default(),
            fraud: FraudConfig::default(),
            blocklist: BlocklistConfig::default(),
            early_drop: false,
            save_interval_ns: 60 * NS_PER_SEC,
            cluster: false,
        }
    }
}

impl Config {
    /// Set one parameter from its text form (the shim turns int modparams
    /// into text): the engine's own, else the capability's that knows it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        match name {
            "early_drop" => self.early_drop = parse_bool("early_drop", v)?,
            "save_interval" => self.save_interval_ns = parse_nonzero_duration("save_interval", v)?,
            "cluster" => self.cluster = parse_bool("cluster", v)?,
            _ if self.flood.set(name, v)? => {}
            _ if self.guess.set(name, v)? => {}
            _ if self.blocklist.set(name, v)? => {}
            _ => return self.fraud.set(name, v),
        }
        Ok(())
    }

    /// Checks that need more than one parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.flood.validate()
    }

    /// The state files can be written: each one's directory exists and takes
    /// a new file (the temporary file a save writes first), and the path is
    /// not a directory. Called at start (before the fork), so a path that
    /// every later save would fail on stops Kamailio, naming the parameter.
    pub fn check_state_files(&self) -> Result<(), ConfigError> {
        if let Some(p) = &self.flood.state_file {
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
    use crate::config::parse::Rate;

    #[test]
    fn defaults_match_reference_article() {
        let c = Config::default();
        assert_eq!(
            c.flood.rate,
            Rate {
                count: 30,
                period_ns: 2 * NS_PER_SEC
            }
        );
        assert_eq!(c.flood.burst(), 30);
        assert_eq!(c.flood.ban_time_ns, 300 * NS_PER_SEC);
        assert_eq!(c.flood.ipv6_prefix, 64);
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
        assert_eq!(c.flood.allow.len(), 3);
    }

    #[test]
    fn prefix_ban_parameters() {
        let mut c = Config::default();
        assert_eq!(
            (
                c.flood.ban_prefix_v4,
                c.flood.ban_prefix_v6,
                c.flood.ban_prefix_threshold
            ),
            (24, 48, 16)
        );
        assert!(c.flood.v4_prefix_bans() && c.flood.v6_prefix_bans());
        c.set("ban_prefix_v4", "16").unwrap();
        c.set("ban_prefix_v6", "56").unwrap();
        c.set("ban_prefix_threshold", "0").unwrap();
        assert_eq!(
            (
                c.flood.ban_prefix_v4,
                c.flood.ban_prefix_v6,
                c.flood.ban_prefix_threshold
            ),
            (16, 56, 0)
        );
        // A network as long as the source key: no prefix bans for that family.
        c.set("ban_prefix_v4", "32").unwrap();
        c.set("ipv6_prefix", "56").unwrap();
        assert!(!c.flood.v4_prefix_bans() && !c.flood.v6_prefix_bans());
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
