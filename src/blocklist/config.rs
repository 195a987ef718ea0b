//! Blocklist parameters: `blocklist_file` and `blocklist_max`.

use crate::config::parse::{invalid, ConfigError};
use std::path::PathBuf;

/// Most entries a blocklist may hold (`blocklist_max`): two sets of
/// 2 × 4 Mi slots of 24 bytes, 384 MiB, is the largest mapping it may ask for.
pub const MAX_ENTRIES: u32 = 4 << 20;

#[derive(Debug, Clone)]
pub struct BlocklistConfig {
    /// The list; None: no blocklist (no memory planned for one).
    pub file: Option<PathBuf>,
    /// Most entries a load accepts; fixes the shared memory.
    pub max: u32,
}

impl Default for BlocklistConfig {
    fn default() -> Self {
        BlocklistConfig {
            file: None,
            max: 100_000,
        }
    }
}

impl BlocklistConfig {
    /// Set `name` if it is a blocklist parameter; Ok(false) if it is not one.
    pub fn set(&mut self, name: &str, v: &str) -> Result<bool, ConfigError> {
        match name {
            "blocklist_file" => self.file = (!v.is_empty()).then(|| PathBuf::from(v)),
            "blocklist_max" => {
                self.max = match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_ENTRIES).contains(&n) => n,
                    _ => {
                        return Err(invalid(
                            "blocklist_max",
                            format!("\"{v}\": expected an integer 1..{MAX_ENTRIES}"),
                        ))
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Entries the shared memory is planned for: none without a file.
    pub fn planned(&self) -> usize {
        if self.file.is_some() {
            self.max as usize
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named() {
        let mut c = BlocklistConfig::default();
        assert_eq!(c.planned(), 0);
        assert!(c.set("blocklist_file", "/etc/kamailio/blocklist.txt").unwrap());
        assert!(c.set("blocklist_max", "1000").unwrap());
        assert_eq!(c.planned(), 1000);
        for bad in ["0", "x", "-1", "4194305"] {
            let e = c.set("blocklist_max", bad).unwrap_err().to_string();
            assert!(e.contains("blocklist_max") && e.contains(bad), "{e}");
        }
        assert!(!c.set("rate", "1/s").unwrap());
        c.set("blocklist_file", "").unwrap();
        assert_eq!(c.planned(), 0);
    }
}
