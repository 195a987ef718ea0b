//! `cargo fuzz run config_values`: module parameters (`Config::set` in
//! src/config.rs, which hands on to src/guess_config.rs and
//! src/fraud/config.rs) and the value parsers behind them: durations,
//! rates, CIDR lists, money, pattern lists.
//!
//! The input is `name=value` lines (a line without '=' is a value for the
//! parsers only), applied in order to one `Config`; then `validate` runs.
//!
//! Properties:
//! - a known name is never "unknown parameter"; an error names the
//!   parameter it was given for; a refused value leaves the config as it was
//!   (except `allow`, which appends the tokens before the bad one);
//! - an accepted value is in the documented range and is what the parser
//!   alone gives; setting it twice is the same as once (except `allow`);
//! - durations are whole seconds up to ten years and read back from their
//!   seconds; rates 1..1000000 per a non-zero period and read back; money
//!   reads back from its display; a CIDR contains its own address; a
//!   pattern list finds each of its items, in any case, and finds in a
//!   text just what a plain search finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipguard::config::{parse_duration, parse_rate, ConfigError, Rate};
use sipguard::engine::config::Config;
use sipguard::fraud::money::{parse_money, Money};
use sipguard::guess::config::{GuessConfig, MAX_ENUM_THRESHOLD};
use sipguard::sip::addr::{address_bits, parse_address, Cidr, Key};

const S: u64 = 1_000_000_000;
const TEN_YEARS: u64 = 10 * 365 * 86_400;

/// Every parameter `Config::set` knows (a name added since is only
/// checked for the generic properties).
const KNOWN: &[&str] = &[
    "table_size",
    "rate",
    "burst",
    "ipv6_prefix",
    "ban_time",
    "ban_factor",
    "ban_max",
    "ban_permanent",
    "ban_forget",
    "allow",
    "early_drop",
    "state_file",
    "save_interval",
    "ban_prefix_v4",
    "ban_prefix_v6",
    "ban_prefix_threshold",
    "normalize_replies",
    "normalize_codes",
    "normalize_methods",
    "challenge_realm",
    "challenge_qop",
    "challenge_algorithm",
    "challenge_nonce_bytes",
    "challenge_nonce_bytes_register",
    "challenge_nonce_expire",
    "challenge_nonce_flags",
    "scanner_user_agents",
    "scanner_from_to",
    "enum_threshold",
    "enum_window",
    "auth_maxretry",
    "auth_findtime",
    "user_maxretry",
    "user_findtime",
    "user_throttle_time",
    "auth_trust_time",
    "user_table_size",
    "txn_table_size",
    "fraud_rules",
    "fraud_max_rules",
    "account_table_size",
    "intl_prefixes",
    "home_country_code",
    "national_prefix",
    "cpm_warning",
    "cpm_critical",
    "spend_warning",
    "spend_critical",
    "call_limit",
    "fraud_state_file",
    "phone_context_domains",
    "baseline_days",
    "baseline_table_size",
    "anomaly_classes",
    "spend_anomaly_factor",
    "spend_anomaly_floor",
    "anomaly_action",
    "baseline_seed_file",
];

fn check_duration(v: &str) -> Option<u64> {
    let ns = parse_duration("d", v).ok()?;
    assert_eq!(ns % S, 0, "{v:?}: whole seconds");
    let s = ns / S;
    assert!(s <= TEN_YEARS, "{v:?}: {s}s");
    let unit = v.trim_start_matches(|c: char| c.is_ascii_digit());
    assert!(
        matches!(unit, "" | "s" | "m" | "h" | "d") && unit.len() < v.len(),
        "{v:?} accepted"
    );
    assert_eq!(parse_duration("d", &format!("{s}s")), Ok(ns));
    assert_eq!(parse_duration("d", &s.to_string()), Ok(ns));
    Some(ns)
}

fn check_rate(v: &str) -> Option<Rate> {
    let r = parse_rate(v).ok()?;
    assert!((1..=1_000_000).contains(&r.count), "{v:?}: {r:?}");
    assert!(
        r.period_ns > 0 && r.period_ns % S == 0 && r.period_ns / S <= TEN_YEARS,
        "{v:?}: {r:?}"
    );
    assert_eq!(parse_rate(&format!("{}/{}s", r.count, r.period_ns / S)), Ok(r));
    Some(r)
}

fn check_money(v: &str) {
    if let Ok(m) = parse_money(v) {
        assert!(m.0 <= 1_000_000 * 10_000, "{v:?}: {m}");
        assert_eq!(parse_money(&m.to_string()), Ok(m), "{v:?}");
    }
}

/// The address part of a CIDR token, as written ("a/len", "[a]/len", "a").
fn cidr_contains_itself(token: &str) {
    let Ok(c) = Cidr::parse(token) else { return };
    let addr = token.trim().split('/').next().unwrap_or("");
    let bytes =
        parse_address(addr).unwrap_or_else(|| panic!("{token:?}: a CIDR whose address does not parse"));
    let bits = address_bits(&bytes).expect("16 bytes");
    assert!(c.contains(bits), "{token:?} does not contain its own address");
}

fn check_key(v: &str) {
    for prefix in [64, 128] {
        if let Some(k) = Key::parse(v, prefix) {
            let text = k.to_string();
            assert_eq!(Key::parse(&text, prefix), Some(k), "{v:?} shown as {text:?}");
        }
    }
}

/// The items of a pattern list: comma-separated, blank ones skipped.
fn items(v: &str) -> Vec<&str> {
    v.split(',').map(str::trim).filter(|t| !t.is_empty()).collect()
}

/// Blanks every version of the matcher ignores around an item: ASCII
/// space, tab, CR, LF (other white space, e.g. U+3000 or a form feed, is
/// trimmed by one version and kept by another: not checked).
fn plain_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A scanner pattern list (set through the parameter, so this does not
/// depend on which module `Patterns` lives in) keeps each of its items and
/// finds it, in upper case too; a text it finds stays found inside a
/// longer one.
fn check_patterns(g: &mut GuessConfig, v: &str, hay: &[u8]) {
    assert_eq!(g.set("scanner_user_agents", v), Ok(true), "any pattern list");
    let p = &g.scanner_user_agents;
    if v.chars().all(|c| c == ',' || plain_blank(c)) {
        assert!(p.is_empty() && !p.found_in(hay), "{v:?}");
    }
    for raw in v.split(',') {
        let item = raw.trim();
        if item.is_empty() || item != raw.trim_matches(plain_blank) {
            continue;
        }
        assert!(!p.is_empty(), "{v:?}");
        let lower = item.to_ascii_lowercase();
        assert!(p.contains(lower.as_bytes()), "{v:?}: {item:?} not kept");
        assert!(p.found_in(item.as_bytes()), "{v:?}: {item:?} not found in itself");
        let upper = item.to_ascii_uppercase();
        assert!(p.found_in(upper.as_bytes()), "{v:?}: {item:?} as {upper:?}");
    }
    if p.found_in(hay) {
        let longer = [b"Mozilla/5.0 (".as_slice(), hay, b") x".as_slice()].concat();
        assert!(p.found_in(&longer), "{v:?} in {hay:?} but not inside {longer:?}");
    }
}

/// What an accepted value must have set.
fn check_set(c: &Config, name: &str, v: &str) {
    let n = |v: &str| v.parse::<u64>().ok();
    match name {
        "table_size" => {
            assert!(n(v) == Some(c.flood.table_size) && (64..=1 << 26).contains(&c.flood.table_size))
        }
        "rate" => assert_eq!(Some(c.flood.rate), check_rate(v)),
        "burst" => assert!(c
            .flood
            .burst
            .is_some_and(|b| (1..=1_000_000).contains(&b) && n(v) == Some(b))),
        "ipv6_prefix" => {
            assert!((1..=128).contains(&c.flood.ipv6_prefix) && n(v) == Some(c.flood.ipv6_prefix.into()))
        }
        "ban_time" => assert!(c.flood.ban_time_ns > 0 && check_duration(v) == Some(c.flood.ban_time_ns)),
        "ban_max" => assert!(c.flood.ban_max_ns > 0 && check_duration(v) == Some(c.flood.ban_max_ns)),
        "save_interval" => assert!(c.save_interval_ns > 0 && check_duration(v) == Some(c.save_interval_ns)),
        "ban_forget" => assert_eq!(check_duration(v), Some(c.flood.ban_forget_ns)),
        "ban_factor" => assert!((1..=1000).contains(&c.flood.ban_factor)),
        "ban_prefix_v4" => {
            assert!((8..=32).contains(&c.flood.ban_prefix_v4) && n(v) == Some(c.flood.ban_prefix_v4.into()))
        }
        "ban_prefix_v6" => {
            assert!((16..=128).contains(&c.flood.ban_prefix_v6) && n(v) == Some(c.flood.ban_prefix_v6.into()))
        }
        "ban_prefix_threshold" => {
            assert!(c.flood.ban_prefix_threshold <= 1000 && n(v) == Some(c.flood.ban_prefix_threshold.into()))
        }
        "state_file" => assert_eq!(c.flood.state_file.is_none(), v.is_empty()),
        "normalize_codes" => assert!(c
            .guess
            .normalize_codes
            .iter()
            .all(|&k| (300..700).contains(&k) && k != 401 && k != 407)),
        "normalize_methods" => assert!(c.guess.normalize_methods.iter().all(|m| {
            !m.is_empty() && m.iter().all(u8::is_ascii_uppercase) && m != b"ACK" && m != b"CANCEL"
        })),
        "challenge_realm" => assert!(!c
            .guess
            .challenge_realm
            .iter()
            .any(|&b| b == b'"' || b == b'\\' || b < 0x20)),
        "challenge_nonce_bytes" | "challenge_nonce_bytes_register" => {
            let b = if name == "challenge_nonce_bytes" {
                c.guess.challenge_nonce_bytes
            } else {
                c.guess.challenge_nonce_bytes_register
            };
            assert!(matches!(b, 0 | 24 | 29 | 33 | 40 | 45));
        }
        "challenge_nonce_expire" => assert!(c.guess.challenge_nonce_expire_s > 0),
        "enum_threshold" => assert!((1..=MAX_ENUM_THRESHOLD).contains(&c.guess.enum_threshold)),
        "auth_maxretry" => assert!((1..=1_000_000).contains(&c.guess.auth_maxretry)),
        "user_maxretry" => assert!((1..=1_000_000).contains(&c.guess.user_maxretry)),
        "enum_window" => {
            assert!(c.guess.enum_window_ns > 0 && check_duration(v) == Some(c.guess.enum_window_ns))
        }
        "auth_findtime" => assert!(c.guess.auth_findtime_ns > 0),
        "user_findtime" => assert!(c.guess.user_findtime_ns > 0),
        "user_throttle_time" => assert!(c.guess.user_throttle_ns > 0),
        "auth_trust_time" => assert_eq!(check_duration(v), Some(c.guess.auth_trust_ns)),
        "user_table_size" => assert!((64..=1 << 24).contains(&c.guess.user_table_size)),
        "txn_table_size" => assert!((64..=1 << 24).contains(&c.guess.txn_table_size)),
        "scanner_user_agents" | "scanner_from_to" => {
            let p = if name == "scanner_user_agents" {
                &c.guess.scanner_user_agents
            } else {
                &c.guess.scanner_from_to
            };
            if !items(v).is_empty() {
                assert!(!p.is_empty(), "{v:?}");
            }
        }
        "fraud_max_rules" => assert!((1..=1 << 20).contains(&c.fraud.max_rules)),
        "account_table_size" => assert!((8..=1 << 24).contains(&c.fraud.account_table_size)),
        "intl_prefixes" => {
            let p = &c.fraud.intl_prefixes;
            assert!(
                p.iter()
                    .all(|d| (1..=8).contains(&d.len()) && d.iter().all(u8::is_ascii_digit)),
                "{p:?}"
            );
            assert!(
                p.windows(2).all(|w| w[0].len() >= w[1].len()),
                "longest first: {p:?}"
            );
            let mut sorted = p.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), p.len(), "distinct: {p:?}");
            let mut given: Vec<Vec<u8>> = v
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.as_bytes().to_vec())
                .collect();
            given.sort();
            given.dedup();
            assert_eq!(sorted, given, "the prefixes given");
        }
        "home_country_code" => assert_eq!(c.fraud.home_country_code, v.as_bytes()),
        "national_prefix" => assert_eq!(c.fraud.national_prefix, v.as_bytes()),
        "cpm_warning" => assert!(c.fraud.cpm_warning <= 1_000_000),
        "cpm_critical" => assert!(c.fraud.cpm_critical <= 1_000_000),
        "call_limit" => assert!(c.fraud.call_limit <= 1_000_000),
        "spend_warning" => assert_eq!(parse_money(v), Ok(c.fraud.spend_warning)),
        "spend_critical" => assert_eq!(parse_money(v), Ok(c.fraud.spend_critical)),
        _ => {}
    }
}

/// The config's values, to compare (cheaper than its Debug text, which
/// formats two pattern automatons). The scanner pattern lists are left
/// out: a list that `Patterns::parse` refuses is never assigned.
type Fraud = (
    Option<std::path::PathBuf>,
    u32,
    u64,
    Vec<Vec<u8>>,
    Vec<u8>,
    Vec<u8>,
    u64,
    u64,
    Money,
    Money,
    u32,
    Option<std::path::PathBuf>,
);

#[derive(Debug, PartialEq)]
struct Snapshot {
    main: (
        u64,
        Rate,
        Option<u64>,
        u8,
        u64,
        u64,
        u64,
        bool,
        u64,
        Vec<Cidr>,
        bool,
    ),
    more: (Option<std::path::PathBuf>, u64, u8, u8, u32),
    guess: (
        bool,
        Vec<u16>,
        Vec<Vec<u8>>,
        Vec<u8>,
        Vec<u8>,
        Vec<u8>,
        u32,
        u32,
        u32,
        u8,
    ),
    guess_more: (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64),
    fraud: Fraud,
}

fn snapshot(c: &Config) -> Snapshot {
    let (g, f) = (&c.guess, &c.fraud);
    Snapshot {
        main: (
            c.flood.table_size,
            c.flood.rate,
            c.flood.burst,
            c.flood.ipv6_prefix,
            c.flood.ban_time_ns,
            c.flood.ban_factor,
            c.flood.ban_max_ns,
            c.flood.ban_permanent,
            c.flood.ban_forget_ns,
            c.flood.allow.clone(),
            c.early_drop,
        ),
        more: (
            c.flood.state_file.clone(),
            c.save_interval_ns,
            c.flood.ban_prefix_v4,
            c.flood.ban_prefix_v6,
            c.flood.ban_prefix_threshold,
        ),
        guess: (
            g.normalize,
            g.normalize_codes.clone(),
            g.normalize_methods.clone(),
            g.challenge_realm.clone(),
            g.challenge_qop.clone(),
            g.challenge_algorithm.clone(),
            g.challenge_nonce_bytes,
            g.challenge_nonce_bytes_register,
            g.challenge_nonce_expire_s,
            g.challenge_nonce_flags,
        ),
        guess_more: (
            g.enum_threshold,
            g.enum_window_ns,
            g.auth_maxretry,
            g.auth_findtime_ns,
            g.user_maxretry,
            g.user_findtime_ns,
            g.user_throttle_ns,
            g.auth_trust_ns,
            g.user_table_size,
            g.txn_table_size,
        ),
        fraud: (
            f.rules_file.clone(),
            f.max_rules,
            f.account_table_size,
            f.intl_prefixes.clone(),
            f.home_country_code.clone(),
            f.national_prefix.clone(),
            f.cpm_warning,
            f.cpm_critical,
            f.spend_warning,
            f.spend_critical,
            f.call_limit,
            f.state_file.clone(),
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut c = Config::default();
    let mut hay: &str = "";
    let mut g = GuessConfig::default();
    for line in text.split('\n') {
        let (name, value) = line.split_once('=').unwrap_or(("", line));
        // The parsers alone, on any value.
        let v = value.trim();
        check_duration(v);
        check_rate(v);
        check_money(v);
        check_key(v);
        for token in v.split(|c: char| c == ',' || c.is_whitespace()) {
            cidr_contains_itself(token);
        }
        check_patterns(&mut g, value, hay.as_bytes());
        hay = value;
        if name.is_empty() {
            continue;
        }
        let before = snapshot(&c);
        let allow_before = c.flood.allow.len();
        match c.set(name, value) {
            Err(ConfigError::UnknownParam(n)) => {
                assert!(!KNOWN.contains(&name), "{name} is known");
                assert_eq!(n, name);
                assert_eq!(snapshot(&c), before, "an unknown name changed the config");
            }
            Err(e @ ConfigError::Invalid { param, .. }) => {
                assert_eq!(param, name, "{e}");
                assert!(e.to_string().contains(name), "{e}");
                if name != "allow" {
                    assert_eq!(
                        snapshot(&c),
                        before,
                        "{name}={value:?} refused, yet the config changed"
                    );
                }
            }
            Ok(()) => {
                check_set(&c, name, v);
                if name == "allow" {
                    let tokens: Vec<&str> = v
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|t| !t.is_empty())
                        .collect();
                    assert_eq!(c.flood.allow.len(), allow_before + tokens.len());
                    for (cidr, t) in c.flood.allow[allow_before..].iter().zip(&tokens) {
                        assert_eq!(Ok(*cidr), Cidr::parse(t));
                    }
                } else {
                    let once = snapshot(&c);
                    c.set(name, value).expect("the same value twice");
                    assert_eq!(snapshot(&c), once, "{name}={value:?} twice is not once");
                }
            }
        }
    }
    let _ = c.validate();
    let _ = c.fraud.validate();
});
