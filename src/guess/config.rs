//! Parameters of the defences against guessing: which replies are
//! normalized and how the challenge looks, scanner fingerprints, the
//! enumeration rule, and the authentication-failure rules.
//!
//! Lists are parsed once, in the parent, into process-local vectors; only
//! the tables they drive live in shared memory.

use crate::config::parse::{
    invalid, parse_bool, parse_duration, parse_int, parse_nonzero_duration, ConfigError,
};
use crate::sip::fingerprint::Patterns;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Enumeration targets are remembered exactly, up to `ENUM_NAMES` per source.
pub const MAX_ENUM_THRESHOLD: u64 = ENUM_NAMES as u64 - 1;

/// Distinct user names remembered per source and window; `enum_threshold`
/// is at most one less, so crossing it is always seen.
pub const ENUM_NAMES: usize = 40;

#[derive(Debug, Clone)]
pub struct GuessConfig {
    pub normalize: bool,
    pub normalize_codes: Vec<u16>,
    /// Upper case; empty = every method (`*`, the default).
    pub normalize_methods: Vec<Vec<u8>>,
    /// Empty: To host for REGISTER, From host otherwise (as `$td`/`$fd`).
    pub challenge_realm: Vec<u8>,
    pub challenge_qop: Vec<u8>,
    /// Empty: no algorithm parameter (the auth module's default).
    pub challenge_algorithm: Vec<u8>,
    /// Binary nonce length before base64; 0 = the auth module's default.
    pub challenge_nonce_bytes: u32,
    /// The same for REGISTER (the auth module's `auth_checks_register` may
    /// differ from `auth_checks_no_dlg`); 0 = `challenge_nonce_bytes`.
    pub challenge_nonce_bytes_register: u32,
    pub challenge_nonce_expire_s: u32,
    /// Last byte of a nonce with an id (29 or 45 bytes): the auth module's
    /// nonce-count (0x80) and one-time-nonce (0x40) flags, pool 0.
    pub challenge_nonce_flags: u8,
    pub scanner_user_agents: Patterns,
    pub scanner_from_to: Patterns,
    pub enum_threshold: u64,
    pub enum_window_ns: u64,
    pub auth_maxretry: u64,
    pub auth_findtime_ns: u64,
    pub user_maxretry: u64,
    pub user_findtime_ns: u64,
    pub user_throttle_ns: u64,
    pub auth_trust_ns: u64,
    pub user_table_size: u64,
    pub txn_table_size: u64,
}

/// SIPVicious (svwar/svmap/svcrack), sipcli, VaxSIPUserAgent, pplsip,
/// sundayddr, iWar, sip-scan, smap, and a few more seen in the wild.
pub const DEFAULT_SCANNER_USER_AGENTS: &str = "friendly-scanner,sipvicious,sipcli,vaxsipuseragent,pplsip,\
     sundayddr,iwar,sip-scan,sipscan,smap,sipsak-scan,sip-sweep,sipptk,cirpack-scanner";
/// From/To values of the same tools (svmap's default From user, sundayddr's display name).
pub const DEFAULT_SCANNER_FROM_TO: &str = "\"sipvicious\",sundayddr,\"friendly-scanner\"";

impl Default for GuessConfig {
    fn default() -> Self {
        GuessConfig {
            normalize: true,
            normalize_codes: vec![403, 404, 480, 484, 604],
            normalize_methods: Vec::new(),
            challenge_realm: Vec::new(),
            challenge_qop: b"auth".to_vec(),
            challenge_algorithm: Vec::new(),
            challenge_nonce_bytes: 0,
            challenge_nonce_bytes_register: 0,
            challenge_nonce_expire_s: 300,
            challenge_nonce_flags: 0x80,
            scanner_user_agents: Patterns::parse(DEFAULT_SCANNER_USER_AGENTS).expect("default list"),
            scanner_from_to: Patterns::parse(DEFAULT_SCANNER_FROM_TO).expect("default list"),
            enum_threshold: 10,
            enum_window_ns: 60 * NS_PER_SEC,
            auth_maxretry: 10,
            auth_findtime_ns: 300 * NS_PER_SEC,
            user_maxretry: 20,
            user_findtime_ns: 300 * NS_PER_SEC,
            user_throttle_ns: 600 * NS_PER_SEC,
            auth_trust_ns: 86_400 * NS_PER_SEC,
            user_table_size: 16384,
            txn_table_size: 16384,
        }
    }
}

fn table_size(param: &'static str, v: &str) -> Result<u64, ConfigError> {
    let n = parse_int(param, v)?;
    if !(64..=1 << 24).contains(&n) {
        return Err(invalid(
            param,
            format!("\"{v}\" out of range: expected 64..16777216 entries"),
        ));
    }
    Ok(n)
}

fn nonce_bytes(param: &'static str, v: &str) -> Result<u32, ConfigError> {
    match parse_int(param, v)? {
        n @ (0 | 24 | 29 | 33 | 40 | 45) => Ok(n as u32),
        _ => Err(invalid(
            param,
            format!("\"{v}\": expected 0 (as the auth module), 24, 29, 33 (OpenSIPS), 40 or 45"),
        )),
    }
}

fn count(param: &'static str, v: &str, max: u64) -> Result<u64, ConfigError> {
    let n = parse_int(param, v)?;
    if !(1..=max).contains(&n) {
        return Err(invalid(param, format!("\"{v}\" out of range: expected 1..{max}")));
    }
    Ok(n)
}

impl GuessConfig {
    /// Set one parameter; `Ok(false)` if the name is not one of these.
    pub fn set(&mut self, name: &str, v: &str) -> Result<bool, ConfigError> {
        match name {
            "normalize_replies" => self.normalize = parse_bool("normalize_replies", v)?,
            "normalize_codes" => {
                let mut codes = Vec::new();
                for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    match t.parse::<u16>() {
                        Ok(c) if (300..700).contains(&c) && c != 401 && c != 407 => codes.push(c),
                        _ => {
                            return Err(invalid(
                                "normalize_codes",
                                format!(
                                    "\"{t}\": expected a final failure status 300..699 other than 401/407"
                                ),
                            ))
                        }
                    }
                }
                self.normalize_codes = codes;
            }
            "normalize_methods" => {
                let mut methods = Vec::new();
                // "*": every method. An unlisted method would answer an
                // existing and a missing user differently.
                for t in v
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && v.trim() != "*")
                {
                    if !t.bytes().all(|b| b.is_ascii_alphabetic()) || matches!(t, "ACK" | "CANCEL") {
                        return Err(invalid(
                            "normalize_methods",
                            format!("\"{t}\": expected a SIP method name other than ACK and CANCEL"),
                        ));
                    }
                    methods.push(t.to_ascii_uppercase().into_bytes());
                }
                self.normalize_methods = methods;
            }
            "challenge_realm" => {
                if v.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                    return Err(invalid(
                        "challenge_realm",
                        format!("\"{v}\": no quotes or control characters"),
                    ));
                }
                self.challenge_realm = v.as_bytes().to_vec();
            }
            "challenge_qop" => {
                if !matches!(v, "" | "auth" | "auth-int" | "auth,auth-int") {
                    return Err(invalid(
                        "challenge_qop",
                        format!("\"{v}\": expected \"\", auth, auth-int or auth,auth-int"),
                    ));
                }
                self.challenge_qop = v.as_bytes().to_vec();
            }
            "challenge_algorithm" => {
                if !matches!(v, "" | "MD5" | "SHA-256") {
                    return Err(invalid(
                        "challenge_algorithm",
                        format!("\"{v}\": expected \"\", MD5 or SHA-256"),
                    ));
                }
                self.challenge_algorithm = v.as_bytes().to_vec();
            }
            "challenge_nonce_bytes" => self.challenge_nonce_bytes = nonce_bytes("challenge_nonce_bytes", v)?,
            "challenge_nonce_bytes_register" => {
                self.challenge_nonce_bytes_register = nonce_bytes("challenge_nonce_bytes_register", v)?
            }
            "challenge_nonce_expire" => {
                let ns = parse_nonzero_duration("challenge_nonce_expire", v)?;
                self.challenge_nonce_expire_s = (ns / NS_PER_SEC).min(u32::MAX as u64) as u32;
            }
            "challenge_nonce_flags" => {
                let n = parse_int("challenge_nonce_flags", v)?;
                if n > 255 {
                    return Err(invalid(
                        "challenge_nonce_flags",
                        format!("\"{v}\": expected 0..255"),
                    ));
                }
                self.challenge_nonce_flags = n as u8;
            }
            "scanner_user_agents" => {
                self.scanner_user_agents =
                    Patterns::parse(v).map_err(|e| invalid("scanner_user_agents", e))?
            }
            "scanner_from_to" => {
                self.scanner_from_to = Patterns::parse(v).map_err(|e| invalid("scanner_from_to", e))?
            }
            "enum_threshold" => self.enum_threshold = count("enum_threshold", v, MAX_ENUM_THRESHOLD)?,
            "enum_window" => self.enum_window_ns = parse_nonzero_duration("enum_window", v)?,
            "auth_maxretry" => self.auth_maxretry = count("auth_maxretry", v, 1_000_000)?,
            "auth_findtime" => self.auth_findtime_ns = parse_nonzero_duration("auth_findtime", v)?,
            "user_maxretry" => self.user_maxretry = count("user_maxretry", v, 1_000_000)?,
            "user_findtime" => self.user_findtime_ns = parse_nonzero_duration("user_findtime", v)?,
            "user_throttle_time" => self.user_throttle_ns = parse_nonzero_duration("user_throttle_time", v)?,
            "auth_trust_time" => self.auth_trust_ns = parse_duration("auth_trust_time", v)?,
            "user_table_size" => self.user_table_size = table_size("user_table_size", v)?,
            "txn_table_size" => self.txn_table_size = table_size("txn_table_size", v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn normalizes_code(&self, code: u16) -> bool {
        self.normalize_codes.contains(&code)
    }

    pub fn normalizes_method(&self, method: &[u8]) -> bool {
        if self.normalize_methods.is_empty() {
            return !method.eq_ignore_ascii_case(b"ACK") && !method.eq_ignore_ascii_case(b"CANCEL");
        }
        self.normalize_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_issue() {
        let c = GuessConfig::default();
        assert_eq!(c.normalize_codes, [403, 404, 480, 484, 604]);
        // Every method but ACK and CANCEL, made-up ones too.
        for m in ["register", "BYE", "INFO", "FOOBAR"] {
            assert!(c.normalizes_method(m.as_bytes()), "{m}");
        }
        assert!(!c.normalizes_method(b"ACK") && !c.normalizes_method(b"CANCEL"));
        let mut listed = GuessConfig::default();
        listed.set("normalize_methods", "INVITE, register").unwrap();
        assert!(listed.normalizes_method(b"REGISTER") && !listed.normalizes_method(b"INFO"));
        listed.set("normalize_methods", "*").unwrap();
        assert!(listed.normalizes_method(b"INFO"));
        assert_eq!((c.enum_threshold, c.enum_window_ns), (10, 60 * NS_PER_SEC));
        assert_eq!((c.auth_maxretry, c.auth_findtime_ns), (10, 300 * NS_PER_SEC));
        assert!(c.scanner_user_agents.contains(b"friendly-scanner"));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let mut c = GuessConfig::default();
        for (p, v) in [
            ("normalize_codes", "404,401"),
            ("normalize_codes", "abc"),
            ("normalize_methods", "INVITE,ACK"),
            ("challenge_qop", "auth-conf"),
            ("challenge_nonce_bytes", "30"),
            ("enum_threshold", "40"),
            ("enum_threshold", "0"),
            ("auth_maxretry", "0"),
            ("user_table_size", "10"),
            ("normalize_replies", "maybe"),
            ("challenge_realm", "a\"b"),
        ] {
            let e = c.set(p, v).unwrap_err().to_string();
            assert!(e.contains(p), "{p}={v}: {e}");
        }
        assert!(!c.set("rate", "1/s").unwrap());
        c.set("scanner_user_agents", "").unwrap();
        assert!(c.scanner_user_agents.is_empty());
    }
}
