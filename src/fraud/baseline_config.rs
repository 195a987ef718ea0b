//! Parameters of the learnt baselines (the `baseline` module): `baseline_days`,
//! `baseline_table_size`, `anomaly_classes`, `spend_anomaly_factor`,
//! `spend_anomaly_floor`, `anomaly_action`, `baseline_seed_file`.

use super::money::{parse_money, Money};
use super::rules::Class;
use crate::config::parse::ConfigError;

/// What `anomaly_action` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Logged, counted, event route; the call goes on.
    Warn,
    /// A new destination is refused; a spend anomaly suspends the account.
    Refuse,
}

/// Baseline parameters (README: toll fraud, "Each account's normal").
#[derive(Debug, Clone)]
pub struct BaselineConfig {
    /// 0: no baselines (the default).
    pub days: u32,
    pub table_size: u64,
    /// Classes whose first call is an anomaly: bit `1 << class`.
    pub classes: u32,
    /// 0: no spend anomaly.
    pub spend_factor: u32,
    pub spend_floor: Money,
    pub action: Action,
    /// CSV of past calls read at start.
    pub seed_file: Option<std::path::PathBuf>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            days: 0,
            table_size: 4096,
            classes: [
                Class::International,
                Class::Premium,
                Class::HighRisk,
                Class::Satellite,
            ]
            .iter()
            .fold(0, |m, c| m | c.bit()),
            spend_factor: 10,
            spend_floor: Money(10 * super::money::SCALE),
            action: Action::Warn,
            seed_file: None,
        }
    }
}

fn invalid(param: &'static str, msg: String) -> ConfigError {
    ConfigError::Invalid { param, msg }
}

fn ranged(param: &'static str, v: &str, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    match v.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(invalid(param, format!("\"{v}\": expected an integer {lo}..{hi}"))),
    }
}

impl BaselineConfig {
    pub fn enabled(&self) -> bool {
        self.days > 0
    }

    /// Weeks the spend average spans.
    pub fn weeks(&self) -> u32 {
        self.days.div_ceil(7).max(1)
    }

    pub fn set(&mut self, name: &str, v: &str) -> Result<(), ConfigError> {
        match name {
            "baseline_days" => self.days = ranged("baseline_days", v, 0, 366)? as u32,
            "baseline_table_size" => self.table_size = ranged("baseline_table_size", v, 8, 1 << 22)?,
            "anomaly_classes" => {
                let mut bits = 0;
                for c in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    let class = Class::from_name(c)
                        .ok_or_else(|| invalid("anomaly_classes", format!("\"{v}\": unknown class {c}")))?;
                    bits |= class.bit();
                }
                self.classes = bits;
            }
            "spend_anomaly_factor" => self.spend_factor = ranged("spend_anomaly_factor", v, 0, 1000)? as u32,
            "spend_anomaly_floor" => {
                self.spend_floor =
                    parse_money(v).map_err(|m| invalid("spend_anomaly_floor", format!("\"{v}\": {m}")))?
            }
            "anomaly_action" => {
                self.action = match v.trim() {
                    "warn" => Action::Warn,
                    "refuse" => Action::Refuse,
                    _ => {
                        return Err(invalid(
                            "anomaly_action",
                            format!("\"{v}\": expected warn or refuse"),
                        ))
                    }
                }
            }
            "baseline_seed_file" => self.seed_file = (!v.is_empty()).then(|| std::path::PathBuf::from(v)),
            _ => return Err(ConfigError::UnknownParam(name.to_string())),
        }
        Ok(())
    }
}
