//! The rules file: destinations by number prefix, and what each account may
//! dial. Parsed in private memory (start-up or an RPC reload), then
//! published to every process ([`super::published`]).
//!
//! ```text
//! # prefix <digits> <class> <rate per minute>
//! prefix 44      international 0.0200
//! prefix 449     premium       1.5000
//! # account <name|default> <class,class,...|all|none> [limit=N]
//! account default domestic,mobile limit=2
//! account alice   all             limit=10
//! ```
//!
//! Prefixes are in normalized form ([`super::number`]); the longest that
//! matches wins. Errors say `file:line: message`.

use super::money::{parse_money, Money};
use std::path::Path;

/// Longest prefix in a rule.
pub const MAX_PREFIX: usize = 20;
/// Longest account name in a rule.
pub const MAX_NAME: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Class {
    Domestic = 1,
    Mobile = 2,
    International = 3,
    Premium = 4,
    HighRisk = 5,
    /// The number types of the numbering-plan data ([`super::plan`]).
    TollFree = 6,
    SharedCost = 7,
    Uan = 8,
    Voip = 9,
    Personal = 10,
    Satellite = 11,
    Fixed = 12,
}

pub const CLASSES: [Class; 12] = [
    Class::Domestic,
    Class::Mobile,
    Class::International,
    Class::Premium,
    Class::HighRisk,
    Class::TollFree,
    Class::SharedCost,
    Class::Uan,
    Class::Voip,
    Class::Personal,
    Class::Satellite,
    Class::Fixed,
];

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Domestic => "domestic",
            Class::Mobile => "mobile",
            Class::International => "international",
            Class::Premium => "premium",
            Class::HighRisk => "high-risk",
            Class::TollFree => "toll-free",
            Class::SharedCost => "shared-cost",
            Class::Uan => "uan",
            Class::Voip => "voip",
            Class::Personal => "personal",
            Class::Satellite => "satellite",
            Class::Fixed => "fixed",
        }
    }
    pub fn from_name(s: &str) -> Option<Class> {
        CLASSES.into_iter().find(|c| c.name() == s)
    }
    pub fn from_u32(v: u32) -> Option<Class> {
        CLASSES.into_iter().find(|c| *c as u32 == v)
    }
    pub fn bit(self) -> u32 {
        1 << self as u32
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRule {
    pub digits: Vec<u8>,
    pub class: Class,
    pub rate: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRule {
    pub name: Vec<u8>,
    /// Bit `1 << class` per permitted class.
    pub classes: u32,
    /// Concurrent calls; 0 = none given.
    pub limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// Sorted by digits.
    pub prefixes: Vec<PrefixRule>,
    /// Sorted by name.
    pub accounts: Vec<AccountRule>,
    /// For accounts not listed; None: they may dial nothing.
    pub default: Option<AccountRule>,
}

fn classes(list: &str) -> Result<u32, String> {
    match list {
        "all" => return Ok(CLASSES.iter().fold(0, |m, c| m | c.bit())),
        "none" => return Ok(0),
        _ => {}
    }
    list.split(',').try_fold(0, |m, c| {
        Class::from_name(c).map(|c| m | c.bit()).ok_or_else(|| {
            format!("unknown class \"{c}\" (domestic, mobile, international, premium, high-risk, a numbering-plan type, all or none)")
        })
    })
}

fn line(f: &[&str], max_rules: usize, set: &mut RuleSet) -> Result<(), String> {
    match f {
        ["prefix", digits, class, rate] => {
            if digits.is_empty() || digits.len() > MAX_PREFIX || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("prefix \"{digits}\": expected 1..{MAX_PREFIX} digits"));
            }
            let class = Class::from_name(class).ok_or_else(|| {
                format!(
                    "unknown class \"{class}\" (domestic, mobile, international, premium, high-risk or a \
                     numbering-plan type)"
                )
            })?;
            let rate = parse_money(rate).map_err(|m| format!("rate \"{rate}\": {m}"))?;
            if set.prefixes.len() >= max_rules {
                return Err(format!("more than fraud_max_rules ({max_rules}) prefix rules"));
            }
            if set.prefixes.iter().any(|p| p.digits == digits.as_bytes()) {
                return Err(format!("prefix {digits} given twice"));
            }
            set.prefixes.push(PrefixRule {
                digits: digits.as_bytes().to_vec(),
                class,
                rate,
            });
        }
        ["account", name, list, rest @ ..] => {
            if name.len() > MAX_NAME {
                return Err(format!("account name longer than {MAX_NAME} bytes"));
            }
            let mut rule = AccountRule {
                name: name.as_bytes().to_vec(),
                classes: classes(list)?,
                limit: 0,
            };
            for opt in rest {
                let n = opt
                    .strip_prefix("limit=")
                    .ok_or_else(|| format!("unknown option \"{opt}\" (limit=N)"))?;
                rule.limit = n
                    .parse()
                    .ok()
                    .filter(|n| *n <= 1_000_000)
                    .ok_or_else(|| format!("limit \"{n}\": expected 0..1000000"))?;
            }
            if *name == "default" {
                if set.default.replace(rule).is_some() {
                    return Err("account default given twice".into());
                }
                return Ok(());
            }
            if set.accounts.len() >= max_rules {
                return Err(format!("more than fraud_max_rules ({max_rules}) account rules"));
            }
            if set.accounts.iter().any(|a| a.name == rule.name) {
                return Err(format!("account {name} given twice"));
            }
            set.accounts.push(rule);
        }
        ["prefix", ..] => return Err("expected: prefix <digits> <class> <rate-per-minute>".into()),
        ["account", ..] => {
            return Err("expected: account <name|default> <class,...|all|none> [limit=N]".into())
        }
        [word, ..] => return Err(format!("unknown keyword \"{word}\" (prefix, account)")),
        [] => {}
    }
    Ok(())
}

/// Parse rules text; `file` only names the source in errors.
pub fn parse(text: &str, file: &str, max_rules: usize) -> Result<RuleSet, String> {
    let mut set = RuleSet::default();
    for (n, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("");
        let fields: Vec<&str> = content.split_ascii_whitespace().collect();
        line(&fields, max_rules, &mut set).map_err(|m| format!("{file}:{}: {m}", n + 1))?;
    }
    set.prefixes.sort_by(|a, b| a.digits.cmp(&b.digits));
    set.accounts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(set)
}

pub fn load(path: &Path, max_rules: usize) -> Result<RuleSet, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{name}: not UTF-8 text"))?;
    parse(&text, &name, max_rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# sample\n\
        prefix 44 international 0.02\n\
        prefix 449 premium 1.5  # premium rate\n\
        \n\
        account default domestic,mobile limit=2\n\
        account alice all limit=10\n\
        account bob none\n";

    #[test]
    fn sample_parses() {
        let s = parse(SAMPLE, "r.txt", 100).unwrap();
        assert_eq!(s.prefixes.len(), 2);
        assert_eq!(s.prefixes[1].rate, Money(15_000));
        assert_eq!(s.prefixes[1].class, Class::Premium);
        assert_eq!(s.accounts[0].name, b"alice");
        assert_eq!(s.accounts[0].limit, 10);
        assert_eq!(s.accounts[1].classes, 0);
        let d = s.default.unwrap();
        assert_eq!(d.classes, Class::Domestic.bit() | Class::Mobile.bit());
    }

    #[test]
    fn errors_carry_file_and_line() {
        for (text, want) in [
            ("prefix 44 intl 0.1\n", "r.txt:1: unknown class \"intl\""),
            ("\nprefix 4x4 premium 1\n", "r.txt:2: prefix \"4x4\""),
            (
                "prefix 44 premium 1.23456\n",
                "r.txt:1: rate \"1.23456\": at most 4 decimals",
            ),
            (
                "prefix 44 premium 1\nprefix 44 mobile 1\n",
                "r.txt:2: prefix 44 given twice",
            ),
            ("account a all limit=x\n", "r.txt:1: limit \"x\""),
            ("account a all cap=1\n", "r.txt:1: unknown option \"cap=1\""),
            ("route 44\n", "r.txt:1: unknown keyword \"route\""),
            ("prefix 44\n", "r.txt:1: expected: prefix"),
            (
                "prefix 1 mobile 1\nprefix 2 mobile 1\nprefix 3 mobile 1\n",
                "r.txt:3: more than fraud_max_rules (2)",
            ),
        ] {
            let e = parse(text, "r.txt", 2).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
