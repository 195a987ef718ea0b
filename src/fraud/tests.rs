use super::*;
use crate::util::fixed_buf::FixedBuf;

const S: u64 = 1_000_000_000;

fn rules_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sipguard-fraud-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("rules.txt");
    std::fs::write(&p, text).unwrap();
    p
}

const RULES: &str = "prefix 1 domestic 0.01\nprefix 44 international 0.05\nprefix 449 premium 1.5\n\
                     account default domestic limit=2\naccount intl domestic,international,premium\n";

fn fraud(name: &str, f: impl FnOnce(&mut FraudConfig)) -> Fraud {
    let mut c = FraudConfig {
        rules_file: Some(rules_file(name, RULES)),
        ..Default::default()
    };
    f(&mut c);
    Fraud::create(&c, S).unwrap()
}

fn dial(f: &Fraud, account: &str, number: &str, now: u64) -> (DialVerdict, String) {
    let mut why = FixedBuf::<128>::new();
    let d = f.dial_check(account.as_bytes(), number.as_bytes(), now, 0, &mut why);
    (d.verdict, why.as_str().to_string())
}

#[test]
fn every_dialled_form_of_a_class_is_refused() {
    let f = fraud("forms", |_| {});
    for n in ["+442071234567", "00442071234567", "011442071234567"] {
        assert_eq!(
            dial(&f, "alice", n, S),
            (
                DialVerdict::ClassDenied,
                "class international not permitted".into()
            ),
            "{n}"
        );
        assert_eq!(dial(&f, "intl", n, S).0, DialVerdict::Allowed);
    }
    assert_eq!(
        dial(&f, "alice", "12125550100", S),
        (DialVerdict::Allowed, "domestic".into())
    );
    assert_eq!(dial(&f, "alice", "999", S).0, DialVerdict::NoRule);
    assert_eq!(dial(&f, "alice", "bob", S).0, DialVerdict::NoRule);
    assert_eq!(dial(&f, "", "1", S).0, DialVerdict::Unavailable);
    assert_eq!(dial(&f, &"a".repeat(65), "1", S).0, DialVerdict::Unavailable);
    assert_eq!(f.stats().denied, 7);
}

#[test]
fn velocity_suspends_and_rpc_restores() {
    let f = fraud("cpm", |c| c.cpm_critical = 3);
    for i in 0..3 {
        assert_eq!(dial(&f, "alice", "1212", S + i).0, DialVerdict::Allowed);
    }
    let (v, why) = dial(&f, "alice", "1212", S + 5);
    assert_eq!(
        (v, why.as_str()),
        (DialVerdict::Velocity, "velocity exceeded: cpm 4 over 3")
    );
    assert_eq!(dial(&f, "alice", "1212", S + 6).0, DialVerdict::Suspended);
    let t = CallTicket::default();
    let mut why = FixedBuf::<64>::new();
    assert_eq!(
        f.call_start(b"alice", 0, Money(0), S, &t, &mut why),
        StartVerdict::Suspended
    );
    let mut events = Vec::new();
    f.tick(2 * S, 0, |n, r| events.push((n.to_vec(), r)));
    assert_eq!(events, vec![(b"alice".to_vec(), Reason::Cpm)]);
    assert_eq!(
        f.stats().suspended_accounts,
        1,
        "the tick counts suspended accounts"
    );
    f.unsuspend(b"alice", 3 * S).unwrap();
    assert_eq!(dial(&f, "alice", "1212", 3 * S).0, DialVerdict::Allowed);
    assert_eq!(f.stats().suspensions, 1);
    f.tick(4 * S, 0, |_, _| {});
    assert_eq!(f.stats().suspended_accounts, 0, "a gauge: back to 0");
}

#[test]
fn limit_from_the_account_rule_and_the_argument() {
    let f = fraud("limit", |c| c.call_limit = 5);
    let t: Vec<CallTicket> = (0..4).map(|_| CallTicket::default()).collect();
    let mut why = FixedBuf::<64>::new();
    let mut start = |i: usize, limit| f.call_start(b"alice", limit, Money(0), S, &t[i], &mut why);
    assert_eq!(start(0, 0), StartVerdict::Admitted);
    assert_eq!(start(1, 0), StartVerdict::Admitted);
    assert_eq!(start(2, 0), StartVerdict::LimitReached, "default rule: limit=2");
    assert_eq!(start(2, 3), StartVerdict::Admitted, "the argument wins");
    assert_eq!(f.stats().active_calls, 3);
    for ticket in &t {
        f.call_end(ticket, 2 * S).unwrap();
    }
    assert_eq!((f.stats().active_calls, f.active_calls_counted()), (0, 0));
}

#[test]
fn bad_reload_keeps_the_old_rules() {
    let f = fraud("reload", |_| {});
    let path = f.cfg.rules_file.clone().unwrap();
    std::fs::write(&path, "prefix 44 domestic 0\nprefix 45 nowhere 1\n").unwrap();
    let e = f.reload().unwrap_err();
    assert!(
        e.ends_with(
            "rules.txt:2: unknown class \"nowhere\" (domestic, mobile, international, premium, high-risk or a \
             numbering-plan type)"
        ),
        "{e}"
    );
    assert_eq!(dial(&f, "alice", "+4420", S).0, DialVerdict::ClassDenied);
    std::fs::write(&path, "prefix 44 domestic 0\naccount default domestic\n").unwrap();
    assert_eq!(f.reload().unwrap(), (1, 1));
    assert_eq!(dial(&f, "alice", "+4420", S).0, DialVerdict::Allowed);
}

#[test]
fn a_bad_rules_file_refuses_to_start() {
    let c = FraudConfig {
        rules_file: Some(rules_file("bad", "prefix 44 international\n")),
        ..Default::default()
    };
    let e = Fraud::create(&c, S).err().unwrap();
    assert!(
        e.starts_with("parameter fraud_rules: ") && e.contains("rules.txt:1: expected: prefix"),
        "{e}"
    );
}

#[test]
fn log_names_are_printable() {
    assert_eq!(Printable(b"a b\nc").to_string(), "a?b?c");
}

#[test]
fn a_full_table_is_its_own_verdict() {
    // One bucket of 8 accounts, each holding a call.
    let f = fraud("full", |c| c.account_table_size = 8);
    let t: Vec<CallTicket> = (0..9).map(|_| CallTicket::default()).collect();
    let mut why = FixedBuf::<64>::new();
    for (i, ticket) in t.iter().enumerate().take(8) {
        let name = format!("acct{i}");
        assert_eq!(
            f.call_start(name.as_bytes(), 0, Money(0), S, ticket, &mut why),
            StartVerdict::Admitted
        );
    }
    assert_eq!(
        f.call_start(b"late", 0, Money(0), S, &t[8], &mut why),
        StartVerdict::TableFull
    );
    let (v, reason) = dial(&f, "late", "1212", S);
    assert_eq!(
        (v, reason.as_str()),
        (
            DialVerdict::TableFull,
            "account table full: bucket holds only live accounts"
        )
    );
}

#[test]
fn a_failed_save_is_retried_a_minute_later() {
    let dir = std::env::temp_dir().join(format!("sipguard-fraud-{}-save", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let f = fraud("save", |c| {
        c.state_file = Some(dir.join("missing-dir/accounts.state"))
    });
    f.suspend(b"alice", S, 0).unwrap();
    let lines = crate::util::log::capture(|| {
        for sec in 1..=3 {
            f.tick(sec * S, 0, |_, _| {});
        }
    });
    let errors: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("cannot save fraud_state_file"))
        .collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    std::fs::create_dir_all(dir.join("missing-dir")).unwrap();
    f.tick(30 * S, 0, |_, _| {});
    assert!(
        !dir.join("missing-dir/accounts.state").exists(),
        "not before a minute"
    );
    f.tick(62 * S, 0, |_, _| {});
    assert!(dir.join("missing-dir/accounts.state").exists());
}

#[test]
fn accounts_without_a_rule_claim_no_slot() {
    // No default rule; one bucket of 8 accounts.
    let c = FraudConfig {
        rules_file: Some(rules_file(
            "norule",
            "prefix 1 domestic 0\nprefix 44 international 0\naccount alice domestic\n",
        )),
        account_table_size: 8,
        ..Default::default()
    };
    let f = Fraud::create(&c, S).unwrap();
    for i in 0..50 {
        let name = format!("invented{i}");
        let want = if i % 2 == 0 {
            (DialVerdict::ClassDenied, "class domestic not permitted")
        } else {
            (DialVerdict::NoRule, "no rule for the number")
        };
        let (v, why) = dial(&f, &name, if i % 2 == 0 { "1212" } else { "999" }, S + i);
        assert_eq!((v, why.as_str()), want, "{name}");
    }
    let mut listed = 0;
    f.list(2 * S, |_| {
        listed += 1;
        true
    });
    assert_eq!(listed, 0, "no attempt counted, no slot claimed");
    assert_eq!(dial(&f, "alice", "1212", 2 * S).0, DialVerdict::Allowed);
    assert_eq!(dial(&f, "alice", "+4420", 2 * S).0, DialVerdict::ClassDenied);
}

#[test]
fn call_start_fails_closed_when_the_rules_cannot_be_read() {
    let f = fraud("unreadable", |c| c.call_limit = 0);
    f.rules.mark_active_written();
    let t = CallTicket::default();
    let mut why = FixedBuf::<64>::new();
    assert_eq!(
        f.call_start(b"alice", 0, Money(0), S, &t, &mut why),
        StartVerdict::Unavailable
    );
    assert_eq!(why.as_str(), "rules busy (reloading)");
    assert!(!t.is_live());
    assert_eq!(dial(&f, "alice", "1212", S).0, DialVerdict::Unavailable);
    // A limit given by the script needs no rule.
    assert_eq!(
        f.call_start(b"alice", 1, Money(0), S, &t, &mut why),
        StartVerdict::Admitted
    );
}
