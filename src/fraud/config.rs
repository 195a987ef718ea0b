//! Toll-fraud parameters. `Config::set` hands over every name it does not
//! know; errors name the parameter like the others.

use super::accounts::Reason;
use super::baseline_config::BaselineConfig;
use super::money::{parse_money, Money};
use super::phone_context::DomainContexts;
use crate::config::parse::ConfigError;
use std::path::PathBuf;

fn invalid(param: &'static str, msg: String) -> ConfigError {
    ConfigError::Invalid { param, msg }
}

#[derive(Debug, Clone)]
pub struct FraudConfig {
    /// The rules file; None: no destination policy (every dial check fails closed).
    pub rules_file: Option<PathBuf>,
    pub max_rules: u32,
    pub account_table_size: u64,
    /// International access prefixes, longest first.
    pub intl_prefixes: Vec<Vec<u8>>,
    /// Country code of national numbers ("" = numbers are matched as dialled).
    pub home_country_code: Vec<u8>,
    pub national_prefix: Vec<u8>,
    /// Call attempts per minute per account; 0 = off.
    pub cpm_warning: u64,
    pub cpm_critical: u64,
    /// Spend per hour per account; 0 = off.
    pub spend_warning: Money,
    pub spend_critical: Money,
    /// Concurrent calls per account when neither the function nor the rules give one; 0 = none.
    pub call_limit: u32,
    /// Suspended accounts are saved here and restored at start.
    pub state_file: Option<PathBuf>,
    /// Suspensions that end the account's calls up: bit `1 << reason`.
    pub suspend_ends_calls: u32,
    /// Each account's normal, learnt (the `baseline` module).
    pub baseline: BaselineConfig,
    /// Domain phone-contexts read as a global prefix ([`super::phone_context`]).
    pub phone_contexts: DomainContexts,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            rules_file: None,
            max_rules: 4096,
            account_table_size: 4096,
            intl_prefixes: vec![b"011".to_vec(), b"00".to_vec()],
            home_country_code: Vec::new(),
            national_prefix: b"0".to_vec(),
            cpm_warning: 0,
            cpm_critical: 0,
            spend_warning: Money(0),
            spend_critical: Money(0),
            call_limit: 0,
            state_file: None,
            suspend_ends_calls: 1 << Reason::Spend as u32 | 1 << Reason::Anomaly as u32,
            baseline: BaselineConfig::default(),
            phone_contexts: DomainContexts::default(),
        }
    }
}

pub const MAX_RULES: u32 = 1 << 20;

fn int(param: &'static str, v: &str, max: u64) -> Result<u64, ConfigError> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(invalid(param, format!("\"{v}\": expected an integer 0..{max}"))),
    }
}

fn digits(param: &'static str, v: &str, max_len: usize) -> Result<Vec<u8>, ConfigError> {
    if v.len() > max_len || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            param,
            format!("\"{v}\": expected up to {max_len} digits"),
        ));
    }
    Ok(v.as_bytes().to_vec())
}

/// "cpm,spend,rpc", "all", "none" (or empty): a bit `1 << reason` each.
fn reasons(param: &'static str, v: &str) -> Result<u32, ConfigError> {
    const ALL: [Reason; 4] = [Reason::Cpm, Reason::Spend, Reason::Rpc, Reason::Anomaly];
    match v.trim() {
        "" | "none" => return Ok(0),
        "all" => return Ok(ALL.iter().fold(0, |m, r| m | 1 << *r as u32)),
        _ => {}
    }
    v.split(',').map(str::trim).try_fold(0, |m, name| {
        Reason::from_name(name).map(|r| m | 1 << r as u32).ok_or_else(|| {
            invalid(
                param,
                format!("\"{v}\": expected cpm, spend, rpc, anomaly (comma separated), all or none"),
            )
        })
    })
}

fn path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

impl FraudConfig {
    pub fn set(&mut self, name: &str, v: &str) -> Result<(), ConfigError> {
        match name {
            "fraud_rules" => self.rules_file = path(v),
            "fraud_max_rules" => {
                let n = int("fraud_max_rules", v, MAX_RULES as u64)?;
                if n == 0 {
                    return Err(invalid("fraud_max_rules", format!("\"{v}\": must be at least 1")));
                }
                self.max_rules = n as u32;
            }
            "account_table_size" => {
                let n = int("account_table_size", v, 1 << 24)?;
                if n < 8 {
                    return Err(invalid(
                        "account_table_size",
                        format!("\"{v}\" out of range: expected 8..16777216 accounts"),
                    ));
                }
                self.account_table_size = n;
            }
            "intl_prefixes" => {
                let mut list = Vec::new();
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let d = digits("intl_prefixes", p, 8)?;
                    if !list.contains(&d) {
                        list.push(d);
                    }
                }
                // Longest first: "011" must win over a shorter "01".
                list.sort_by_key(|p: &Vec<u8>| std::cmp::Reverse(p.len()));
                self.intl_prefixes = list;
            }
            "home_country_code" => self.home_country_code = digits("home_country_code", v, 4)?,
            "national_prefix" => self.national_prefix = digits("national_prefix", v, 4)?,
            "cpm_warning" => self.cpm_warning = int("cpm_warning", v, 1_000_000)?,
            "cpm_critical" => self.cpm_critical = int("cpm_critical", v, 1_000_000)?,
            "spend_warning" => {
                self.spend_warning =
                    parse_money(v).map_err(|m| invalid("spend_warning", format!("\"{v}\": {m}")))?
            }
            "spend_critical" => {
                self.spend_critical =
                    parse_money(v).map_err(|m| invalid("spend_critical", format!("\"{v}\": {m}")))?
            }
            "call_limit" => self.call_limit = int("call_limit", v, 1_000_000)? as u32,
            "fraud_state_file" => self.state_file = path(v),
            "suspend_ends_calls" => self.suspend_ends_calls = reasons("suspend_ends_calls", v)?,
            "phone_context_domains" => self.phone_contexts = DomainContexts::parse(v)?,
            _ => return self.baseline.set(name, v),
        }
        Ok(())
    }

    /// Whether a suspension for `reason` ends the account's calls up.
    pub fn ends_calls(&self, reason: Reason) -> bool {
        self.suspend_ends_calls & 1 << reason as u32 != 0
    }

    /// Checks across parameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cpm_warning > 0 && self.cpm_critical > 0 && self.cpm_warning > self.cpm_critical {
            return Err(invalid(
                "cpm_warning",
                format!("{} is above cpm_critical {}", self.cpm_warning, self.cpm_critical),
            ));
        }
        let (w, c) = (self.spend_warning.0, self.spend_critical.0);
        if w > 0 && c > 0 && w > c {
            return Err(invalid(
                "spend_warning",
                format!(
                    "{} is above spend_critical {}",
                    self.spend_warning, self.spend_critical
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_parameter() {
        let mut c = FraudConfig::default();
        for (n, v) in [
            ("intl_prefixes", "+1"),
            ("home_country_code", "4x"),
            ("spend_critical", "1.23456"),
            ("cpm_critical", "-1"),
            ("account_table_size", "2"),
            ("fraud_max_rules", "0"),
            ("suspend_ends_calls", "spend,money"),
        ] {
            let e = c.set(n, v).unwrap_err().to_string();
            assert!(e.contains(n) && e.contains(v), "{e}");
        }
        assert!(matches!(
            c.set("nonsense", "1"),
            Err(ConfigError::UnknownParam(_))
        ));
    }

    #[test]
    fn suspensions_that_end_calls() {
        let mut c = FraudConfig::default();
        assert!(c.ends_calls(Reason::Spend) && !c.ends_calls(Reason::Cpm) && !c.ends_calls(Reason::Rpc));
        c.set("suspend_ends_calls", "cpm, rpc").unwrap();
        assert!(!c.ends_calls(Reason::Spend) && c.ends_calls(Reason::Cpm) && c.ends_calls(Reason::Rpc));
        c.set("suspend_ends_calls", "none").unwrap();
        assert_eq!(c.suspend_ends_calls, 0);
        c.set("suspend_ends_calls", "all").unwrap();
        assert!([Reason::Cpm, Reason::Spend, Reason::Rpc]
            .iter()
            .all(|r| c.ends_calls(*r)));
        assert!(c.set("suspend_ends_calls", "spend,").is_err());
    }

    #[test]
    fn prefixes_sorted_longest_first() {
        let mut c = FraudConfig::default();
        c.set("intl_prefixes", "00, 011,00").unwrap();
        assert_eq!(c.intl_prefixes, vec![b"011".to_vec(), b"00".to_vec()]);
        c.set("spend_warning", "20").unwrap();
        c.set("spend_critical", "10.5").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("spend_warning"));
    }
}
