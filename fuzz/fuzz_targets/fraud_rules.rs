//! `cargo fuzz run fraud_rules`: the toll-fraud rules file (`fraud_rules`,
//! src/fraud/rules.rs) from arbitrary bytes.
//!
//! Properties:
//! - text that is not UTF-8 is refused by `rules::load` ("not UTF-8 text");
//! - an error names the file and a line that exists (`file:N: ...`);
//! - a parsed set is well formed: prefixes 1..20 digits, sorted, distinct;
//!   account names 1..64 bytes, no blanks or '#', sorted, distinct, never
//!   "default" (that one is `default`); known classes only; limit <= 1000000;
//! - written back out as rules text it parses to the same set;
//! - the order of the lines does not matter: the lines reversed parse to
//!   the same set, or fail too;
//! - `fraud_max_rules` refuses exactly the sets with more rules of one kind.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use libfuzzer_sys::fuzz_target;
use sipguard::fraud::rules::{load, parse, AccountRule, RuleSet, CLASSES, MAX_NAME, MAX_PREFIX};
use std::fmt::Write as _;

const FILE: &str = "rules.txt";
const MAX_RULES: usize = 4096;

fn class_list(bits: u32) -> String {
    let names: Vec<&str> = CLASSES
        .iter()
        .filter(|c| bits & c.bit() != 0)
        .map(|c| c.name())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// The set as rules text.
fn render(set: &RuleSet) -> String {
    let mut t = String::from("# written back by the fuzz target\n");
    for p in &set.prefixes {
        let digits = std::str::from_utf8(&p.digits).expect("digits");
        let _ = writeln!(t, "prefix {digits} {} {}", p.class.name(), p.rate);
    }
    let account = |t: &mut String, a: &AccountRule| {
        let name = std::str::from_utf8(&a.name).expect("a name from text");
        let _ = writeln!(t, "account {name} {} limit={}", class_list(a.classes), a.limit);
    };
    if let Some(d) = &set.default {
        account(&mut t, d);
    }
    for a in &set.accounts {
        account(&mut t, a);
    }
    t
}

fn well_formed(set: &RuleSet) {
    let valid = CLASSES.iter().fold(0, |m, c| m | c.bit());
    for p in &set.prefixes {
        assert!(
            (1..=MAX_PREFIX).contains(&p.digits.len()) && p.digits.iter().all(u8::is_ascii_digit),
            "prefix {:?}",
            p.digits
        );
        // Display and parse agree on the rate (4 decimals).
        assert_eq!(
            sipguard::fraud::money::parse_money(&p.rate.to_string()),
            Ok(p.rate)
        );
    }
    assert!(
        set.prefixes.windows(2).all(|w| w[0].digits < w[1].digits),
        "prefixes sorted, distinct"
    );
    let name_ok = |a: &AccountRule| {
        !a.name.is_empty()
            && a.name.len() <= MAX_NAME
            && !a.name.iter().any(|b| b.is_ascii_whitespace() || *b == b'#')
            && a.classes & !valid == 0
            && a.limit <= 1_000_000
    };
    for a in &set.accounts {
        assert!(name_ok(a) && a.name != b"default", "account {a:?}");
    }
    assert!(
        set.accounts.windows(2).all(|w| w[0].name < w[1].name),
        "accounts sorted, distinct"
    );
    if let Some(d) = &set.default {
        assert!(name_ok(d) && d.name == b"default", "default {d:?}");
    }
}

/// `file:N: ...` with N a line of `text`.
fn names_a_line(e: &str, text: &str) {
    let rest = e
        .strip_prefix(FILE)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or_else(|| panic!("error without the file name: {e}"));
    let (n, msg) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("error without a line: {e}"));
    let n: usize = n.parse().unwrap_or_else(|_| panic!("bad line number: {e}"));
    assert!(
        n >= 1 && n <= text.lines().count(),
        "line {n} of {}: {e}",
        text.lines().count()
    );
    assert!(!msg.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let dir = scratch::dir("rules");
        let path = dir.join("rules.txt");
        std::fs::write(&path, data).expect("write the rules file");
        let e = load(&path, MAX_RULES).expect_err("not UTF-8 is refused");
        assert!(e.ends_with("not UTF-8 text"), "{e}");
        scratch::clean(dir);
        return;
    };
    let reversed: Vec<&str> = text.lines().rev().collect();
    let reversed = reversed.join("\n");
    match parse(text, FILE, MAX_RULES) {
        Err(e) => {
            names_a_line(&e, text);
            assert!(
                parse(&reversed, FILE, MAX_RULES).is_err(),
                "reversed lines accepted: {e}"
            );
        }
        Ok(set) => {
            well_formed(&set);
            let out = render(&set);
            assert_eq!(
                parse(&out, FILE, MAX_RULES).as_ref(),
                Ok(&set),
                "written back as\n{out}"
            );
            assert_eq!(
                parse(&reversed, FILE, MAX_RULES).as_ref(),
                Ok(&set),
                "lines reversed"
            );
            let most = set.prefixes.len().max(set.accounts.len());
            assert_eq!(
                parse(text, FILE, most).as_ref(),
                Ok(&set),
                "fraud_max_rules {most}"
            );
            if most > 0 {
                let e = parse(text, FILE, most - 1).expect_err("one rule too many");
                assert!(e.contains("fraud_max_rules"), "{e}");
            }
        }
    }
});
