//! Parameter values: the parsers every capability's parameters share
//! (integers, booleans, durations, rates) and the error that names the
//! parameter and quotes the bad token, so Kamailio can refuse to start with
//! a message the operator can act on.

use std::fmt;
use std::path::Path;

pub(crate) const NS_PER_SEC: u64 = 1_000_000_000;

/// Why a parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownParam(String),
    Invalid { param: &'static str, msg: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownParam(name) => write!(f, "unknown parameter \"{name}\""),
            ConfigError::Invalid { param, msg } => write!(f, "parameter {param}: {msg}"),
        }
    }
}

pub(crate) fn invalid(param: &'static str, msg: String) -> ConfigError {
    ConfigError::Invalid { param, msg }
}

/// The rate rule: `count` requests per `period_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub period_ns: u64,
}

/// Create and remove the temporary file a save of `path` would write.
pub fn check_writable(param: &'static str, path: &Path) -> Result<(), ConfigError> {
    let bad = |why: String| invalid(param, format!("\"{}\": {why}", path.display()));
    if path.is_dir() {
        return Err(bad("is a directory".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(bad(format!("directory {} does not exist", dir.display())));
    }
    let probe = path.with_extension(format!("tmp.{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(bad(format!("cannot create a file in {}: {e}", dir.display()))),
    }
}

/// An integer in `lo..=hi`.
pub(crate) fn parse_in(param: &'static str, v: &str, lo: u64, hi: u64) -> Result<u64, ConfigError> {
    let n = parse_int(param, v)?;
    if !(lo..=hi).contains(&n) {
        return Err(invalid(
            param,
            format!("\"{v}\" out of range: expected {lo}..{hi}"),
        ));
    }
    Ok(n)
}

pub(crate) fn parse_int(param: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .map_err(|_| invalid(param, format!("\"{v}\" is not a non-negative integer")))
}

pub(crate) fn parse_bool(param: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "0" | "no" | "off" | "false" => Ok(false),
        "1" | "yes" | "on" | "true" => Ok(true),
        _ => Err(invalid(param, format!("\"{v}\": expected 0 or 1"))),
    }
}

/// "300", "300s", "5m", "1h", "1d" → nanoseconds.
pub fn parse_duration(param: &'static str, v: &str) -> Result<u64, ConfigError> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    if digits.is_empty() {
        return Err(invalid(
            param,
            format!("\"{v}\": expected a duration like 300, 300s, 5m, 1h or 1d"),
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| invalid(param, format!("\"{v}\": number too large")))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(invalid(
                param,
                format!("\"{v}\": unknown unit \"{unit}\": expected s, m, h or d"),
            ))
        }
    };
    n.checked_mul(unit_secs)
        .filter(|s| *s <= 10 * 365 * 86_400)
        .map(|s| s * NS_PER_SEC)
        .ok_or_else(|| invalid(param, format!("\"{v}\": longer than ten years")))
}

pub(crate) fn parse_nonzero_duration(param: &'static str, v: &str) -> Result<u64, ConfigError> {
    match parse_duration(param, v)? {
        0 => Err(invalid(param, format!("\"{v}\": must be longer than zero"))),
        ns => Ok(ns),
    }
}

/// "30/2s", "100/m", "5/s", "1000/1h" → Rate.
pub fn parse_rate(v: &str) -> Result<Rate, ConfigError> {
    let bad = |why: &str| invalid("rate", format!("\"{v}\": {why}"));
    let (count, per) = v
        .split_once('/')
        .ok_or_else(|| bad("expected N/s, N/m, N/h or N/<T>s, e.g. 30/2s"))?;
    let count: u64 = count
        .trim()
        .parse()
        .map_err(|_| bad("the request count is not a whole number"))?;
    if count == 0 || count > 1_000_000 {
        return Err(bad("the request count must be 1..1000000"));
    }
    let per = per.trim();
    // "s" alone means one second: accept "N/s" as well as "N/1s".
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
        per.to_string()
    } else {
        format!("1{per}")
    };
    let period_ns = match parse_duration("rate", &per) {
        Ok(0) => return Err(bad("the period must be longer than zero")),
        Ok(ns) => ns,
        Err(_) => return Err(bad("unknown period: expected s, m or h, e.g. 30/2s")),
    };
    if per.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(bad("the period needs a unit: s, m or h, e.g. 30/2s"));
    }
    Ok(Rate { count, period_ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("30/2s").unwrap(),
            Rate {
                count: 30,
                period_ns: 2 * NS_PER_SEC
            }
        );
        assert_eq!(
            parse_rate("100/m").unwrap(),
            Rate {
                count: 100,
                period_ns: 60 * NS_PER_SEC
            }
        );
        assert_eq!(parse_rate("5/s").unwrap().period_ns, NS_PER_SEC);
        for bad in ["10/x", "10", "/s", "0/s", "x/s", "10/0s", "10/2", "10/2y"] {
            let e = parse_rate(bad).unwrap_err().to_string();
            assert!(e.contains("rate") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("t", "300").unwrap(), 300 * NS_PER_SEC);
        assert_eq!(parse_duration("t", "5m").unwrap(), 300 * NS_PER_SEC);
        assert_eq!(parse_duration("t", "1d").unwrap(), 86_400 * NS_PER_SEC);
        assert!(parse_duration("ban_time", "5w")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(parse_duration("ban_time", "abc").is_err());
    }
}
