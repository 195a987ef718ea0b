//! The toll-fraud handle's use of the learnt baselines ([`super::baseline`]):
//! a dial check's destination, a call's spend learnt at its end, the timer's
//! spend comparison, the anomaly events, and seeding from past calls.

use super::accounts::{Crossing, Reason};
use super::baseline::{Action, Anomaly, Dest};
use super::rules::Class;
use super::{baseline_seed, number, plan, DialVerdict, Fraud, Printable};
use crate::util::log::{log, Level};
use std::fmt::Write;
use std::path::Path;

/// What a seeding run did.
pub use super::baseline_seed::SeedReport;

/// An account's learnt baseline, as `sipguard.baseline` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineView {
    /// (Unix day last called, destination), oldest first.
    pub dests: Vec<(u32, Dest)>,
    pub usual_hour: super::money::Money,
    pub usual_week: super::money::Money,
    /// Start of the baseline's first hour (Unix ms).
    pub since_unix_ms: u64,
}

impl Fraud {
    /// An allowed call of `account` to `e164` in `class`: with baselines, a
    /// first call to a destination of an `anomaly_classes` class is an
    /// anomaly, refused by `anomaly_action=refuse`. Writes the dial reason.
    pub(super) fn dial_allowed(
        &self,
        account: &[u8],
        e164: &[u8],
        class: Class,
        now: u64,
        wall_ms: u64,
        why: &mut impl Write,
    ) -> DialVerdict {
        let Some(b) = &self.baseline else {
            let _ = why.write_str(class.name());
            return DialVerdict::Allowed;
        };
        let dest = Dest::of(e164, class);
        // Busy: the baseline is advice; the call is judged without it.
        let Ok(Some(a)) = b.dial(self.accounts.key_of(account), account, dest, now, wall_ms) else {
            let _ = why.write_str(class.name());
            return DialVerdict::Allowed;
        };
        let refuse = b.cfg.action == Action::Refuse;
        self.anomaly_logged(account, &a, if refuse { "refused" } else { "warned" });
        if refuse {
            let _ = write!(why, "anomaly: first call to {dest}");
            DialVerdict::Anomaly
        } else {
            let _ = why.write_str(class.name());
            DialVerdict::Allowed
        }
    }

    fn anomaly_logged(&self, account: &[u8], a: &Anomaly, action: &str) {
        let name = Printable(account);
        match a {
            Anomaly::Destination(d) => log(
                Level::Warn,
                format_args!(
                    "sipguard: ANOMALY account={name} kind=destination country={} class={} action={action}",
                    d.cc,
                    d.class.name()
                ),
            ),
            Anomaly::Spend {
                value,
                threshold,
                usual,
            } => log(
                Level::Warn,
                format_args!(
                    "sipguard: ANOMALY account={name} kind=spend value={value} threshold={threshold} \
                     usual={usual} action={action}"
                ),
            ),
        }
    }

    /// A call's cost at its end joins its account's hour (`key`: the
    /// account table's key of the account).
    pub(super) fn learn_spend(&self, key: [u64; 2], cost: u64, now: u64) {
        if let Some(b) = &self.baseline {
            b.spent(key, cost, now, crate::util::clock::wall_ms());
        }
    }

    /// Timer work: every account spending over `spend_anomaly_floor` in
    /// the hour against its usual for this hour of the week; an anomaly
    /// suspends it (reason `anomaly`) when `anomaly_action=refuse`.
    pub(super) fn spend_anomalies(&self, now: u64, wall_ms: u64) {
        let Some(b) = &self.baseline else {
            return;
        };
        if b.cfg.spend_factor == 0 {
            return;
        }
        for (name, spend) in self.accounts.spending(now, b.cfg.spend_floor) {
            let key = self.accounts.key_of(&name);
            let Ok(Some(a)) = b.spend_check(key, &name, spend, now, wall_ms) else {
                continue;
            };
            let Anomaly::Spend { value, threshold, .. } = a else {
                continue;
            };
            if b.cfg.action == Action::Warn {
                self.anomaly_logged(&name, &a, "warned");
                continue;
            }
            self.anomaly_logged(&name, &a, "suspended");
            if let Ok(true) = self.accounts.suspend(&name, Reason::Anomaly, now, wall_ms) {
                let c = Crossing {
                    reason: Reason::Anomaly,
                    value: value.0,
                    threshold: threshold.0,
                };
                self.suspended(Printable(&name), &c);
            }
        }
    }

    /// Hand every anomaly raised since the last call (by any process) to
    /// `f` (the host's event route). Timer process.
    pub fn anomaly_events(&self, mut f: impl FnMut(&[u8], &Anomaly)) {
        if let Some(b) = &self.baseline {
            for (name, a) in b.take_events() {
                f(&name, &a);
            }
        }
    }

    /// Anomalies so far: (destination, spend).
    pub fn anomaly_counts(&self) -> (u64, u64) {
        self.baseline
            .as_ref()
            .map_or((0, 0), |b| (b.stats().destination, b.stats().spend))
    }

    /// Accounts a baseline can be kept for (0: baselines are off).
    pub fn baseline_capacity(&self) -> u64 {
        self.baseline.as_ref().map_or(0, |b| b.capacity())
    }

    /// The usual spend of `account` in this hour of the week (tests, RPC).
    pub fn usual_spend(&self, account: &[u8], now: u64, wall_ms: u64) -> Option<super::money::Money> {
        let b = self.baseline.as_ref()?;
        b.usual(self.accounts.key_of(account), now, wall_ms)
    }

    /// The learnt baseline of `account`: its destinations, its usual spend
    /// in this hour of the week and over a week. NotFound: it has none (or
    /// baselines are off).
    pub fn baseline_of(
        &self,
        account: &[u8],
        now: u64,
        wall_ms: u64,
    ) -> Result<BaselineView, crate::shm::keyed::KeyedError> {
        let b = self
            .baseline
            .as_ref()
            .ok_or(crate::shm::keyed::KeyedError::NotFound)?;
        let s = b.get(self.accounts.key_of(account), now)?;
        let how = super::baseline::hour_of_week((wall_ms / 3_600_000) as u32);
        Ok(BaselineView {
            usual_hour: super::money::Money(
                s.spend
                    .iter()
                    .find(|(i, _)| *i == how)
                    .map_or(0, |(_, v)| *v as u64),
            ),
            usual_week: super::money::Money(s.spend.iter().map(|(_, v)| *v as u64).sum()),
            since_unix_ms: s.first_hour as u64 * 3_600_000,
            dests: s.dests,
        })
    }

    /// Seed the baselines from a CSV of past calls (README: "Seeding from
    /// past calls"): the accounts in the file get its destinations added
    /// and their usual spend replaced by what the file gives.
    pub fn seed_baseline(&self, path: &Path, now: u64, wall_ms: u64) -> Result<SeedReport, String> {
        let b = self
            .baseline
            .as_ref()
            .ok_or("baselines are off (baseline_days is 0)")?;
        let classify = |n: &[u8]| -> Option<(Vec<u8>, Class)> {
            let digits = number::normalize(n, &self.cfg).ok()?.digits().to_vec();
            let class = self
                .rules
                .read(|v| v.dest(&digits))
                .flatten()
                .map(|d| d.class)
                .or_else(|| plan::class(&digits))?;
            Some((digits, class))
        };
        let (seeds, mut report) = baseline_seed::read(path, &b.cfg, b.capacity(), wall_ms, classify)?;
        for s in &seeds {
            if b.restore(self.accounts.key_of(&s.name), s, true, now).is_err() {
                report.unstored += 1;
            }
        }
        report.accounts = seeds.len() - report.unstored;
        for w in &report.warnings {
            log(Level::Warn, format_args!("sipguard: baseline seed {w}"));
        }
        log(
            Level::Notice,
            format_args!("sipguard: baselines seeded from {}: {report}", path.display()),
        );
        Ok(report)
    }

    /// `baseline_seed_file` at start: a file that cannot be read stops the
    /// start; bad lines are warned about and skipped.
    pub(super) fn seed_at_start(&self, now: u64) -> Result<(), String> {
        let Some(path) = self.cfg.baseline.seed_file.clone() else {
            return Ok(());
        };
        if self.baseline.is_none() {
            return Err("parameter baseline_seed_file: baseline_days is 0 (baselines are off)".into());
        }
        self.seed_baseline(&path, now, crate::util::clock::wall_ms())
            .map(|_| ())
            .map_err(|e| format!("parameter baseline_seed_file: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::accounts::CallTicket;
    use super::super::config::FraudConfig;
    use super::super::money::Money;
    use super::*;
    use crate::util::clock::wall_ms;
    use crate::util::fixed_buf::FixedBuf;

    const S: u64 = 1_000_000_000;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sipguard-anomaly-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Two weeks of alice's calls: 0.10 every hour to +1 212, and one to
    /// +44 a day.
    fn history(d: &Path) -> std::path::PathBuf {
        let now = wall_ms() / 1000;
        let mut text = String::from("account,start,duration,number,cost\n");
        for h in 1..=14 * 24 {
            text.push_str(&format!("alice,{},60,+12125551234,0.1000\n", now - h * 3600));
        }
        for day in 1..=14 {
            text.push_str(&format!("alice,{},60,+442071234567,0\n", now - day * 86_400));
        }
        let p = d.join("cdr.csv");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn fraud(d: &Path, f: impl FnOnce(&mut FraudConfig)) -> Fraud {
        let rules = d.join("rules.txt");
        std::fs::write(
            &rules,
            "prefix 1 domestic 0.01\nprefix 44 international 0.05\nprefix 882 high-risk 3\n\
             account default domestic,international,high-risk\n",
        )
        .unwrap();
        let mut c = FraudConfig {
            rules_file: Some(rules),
            spend_critical: Money(1_000_000),
            ..Default::default()
        };
        for (k, v) in [
            ("baseline_days", "28"),
            ("baseline_table_size", "64"),
            ("anomaly_action", "refuse"),
            ("spend_anomaly_factor", "5"),
            ("spend_anomaly_floor", "1"),
        ] {
            c.set(k, v).unwrap();
        }
        f(&mut c);
        Fraud::create(&c, S).unwrap()
    }

    fn dial(f: &Fraud, account: &str, number: &str) -> (DialVerdict, String) {
        let mut why = FixedBuf::<128>::new();
        let d = f.dial_check(account.as_bytes(), number.as_bytes(), S, wall_ms(), &mut why);
        (d.verdict, why.as_str().to_string())
    }

    #[test]
    fn a_seeded_account_calls_as_usual_and_a_new_risky_destination_is_refused() {
        let d = dir("dest");
        let f = fraud(&d, |_| {});
        let r = f.seed_baseline(&history(&d), S, wall_ms()).unwrap();
        assert_eq!((r.calls, r.accounts, r.skipped), (14 * 24 + 14, 1, 0));
        assert_eq!(
            dial(&f, "alice", "+12125550100"),
            (DialVerdict::Allowed, "domestic".into())
        );
        assert_eq!(
            dial(&f, "alice", "+442079999999"),
            (DialVerdict::Allowed, "international".into())
        );
        assert_eq!(
            dial(&f, "alice", "+88212345678"),
            (
                DialVerdict::Anomaly,
                "anomaly: first call to +882 high-risk".into()
            )
        );
        // A new account's first international call, and still refused: a
        // refused destination is not learnt.
        assert_eq!(dial(&f, "bob", "+442071234567").0, DialVerdict::Anomaly);
        assert_eq!(dial(&f, "bob", "+442071234567").0, DialVerdict::Anomaly);
        assert_eq!(
            dial(&f, "bob", "+12125550100").0,
            DialVerdict::Allowed,
            "domestic: no anomaly"
        );
        assert_eq!(f.anomaly_counts(), (3, 0));
        let mut ev = Vec::new();
        f.anomaly_events(|n, a| ev.push((n.to_vec(), a.kind(), a.detail())));
        ev.sort();
        assert_eq!(
            ev,
            vec![
                (b"alice".to_vec(), "destination", "+882 high-risk".to_string()),
                (b"bob".to_vec(), "destination", "+44 international".to_string())
            ]
        );
    }

    #[test]
    fn warn_allows_and_learns() {
        let d = dir("warn");
        let f = fraud(&d, |c| c.set("anomaly_action", "warn").unwrap());
        assert_eq!(
            dial(&f, "carol", "+88212345678"),
            (DialVerdict::Allowed, "high-risk".into())
        );
        assert_eq!(dial(&f, "carol", "+88212345678").0, DialVerdict::Allowed);
        assert_eq!(f.anomaly_counts(), (1, 0));
    }

    #[test]
    fn a_spend_spike_suspends_before_the_critical_level() {
        let d = dir("spend");
        let f = fraud(&d, |_| {});
        f.seed_baseline(&history(&d), S, wall_ms()).unwrap();
        assert_eq!(f.usual_spend(b"alice", S, wall_ms()), Some(Money(1_000)));
        let v = f.baseline_of(b"alice", S, wall_ms()).unwrap();
        assert_eq!(
            (v.usual_hour, v.usual_week, v.dests.len()),
            (Money(1_000), Money(168_000), 2)
        );
        assert!(f.baseline_of(b"nobody", S, wall_ms()).is_err());
        // 60 per minute: 1.0 a second. Threshold max(1.0, 5 × 0.10) = 1.0.
        let t = CallTicket::default();
        let mut why = FixedBuf::<64>::new();
        assert_eq!(dial(&f, "alice", "+12125550100").0, DialVerdict::Allowed);
        f.call_start(b"alice", 0, Money(600_000), S, &t, &mut why);
        f.call_answered(&t, S).unwrap();
        let mut events = Vec::new();
        f.tick(2 * S, wall_ms(), |n, r| events.push((n.to_vec(), r)));
        assert!(events.is_empty(), "1.0 is not over 1.0");
        f.tick(3 * S, wall_ms(), |n, r| events.push((n.to_vec(), r)));
        f.tick(4 * S, wall_ms(), |n, r| events.push((n.to_vec(), r)));
        assert_eq!(events, vec![(b"alice".to_vec(), Reason::Anomaly)]);
        assert_eq!(f.anomaly_counts(), (0, 1));
        let mut listed = Vec::new();
        f.list(4 * S, |a| {
            listed.push((a.name, a.suspended));
            true
        });
        assert_eq!(listed, vec![(b"alice".to_vec(), Some(Reason::Anomaly))]);
    }

    #[test]
    fn baselines_survive_a_restart_and_a_v1_file_is_read() {
        let d = dir("persist");
        let state = d.join("accounts.state");
        std::fs::write(&state, "# sipguard accounts v1\nmallory rpc 5\n").unwrap();
        let set_state = |c: &mut FraudConfig| c.state_file = Some(state.clone());
        let f = fraud(&d, set_state);
        assert_eq!(f.list(S, |_| true), 0);
        f.seed_baseline(&history(&d), S, wall_ms()).unwrap();
        f.tick_keeping_events(2 * S, wall_ms());
        let text = std::fs::read_to_string(&state).unwrap();
        assert!(text.starts_with("# sipguard accounts v2\n"), "{text}");
        assert!(
            text.contains("\nmallory rpc 5\n") && text.contains("\nbaseline alice "),
            "{text}"
        );
        drop(f);
        let g = fraud(&d, |c| c.state_file = Some(state.clone()));
        assert_eq!(g.usual_spend(b"alice", S, wall_ms()), Some(Money(1_000)));
        assert_eq!(dial(&g, "alice", "+442079999999").0, DialVerdict::Allowed);
        assert_eq!(dial(&g, "mallory", "+12125550100").0, DialVerdict::Suspended);
    }

    #[test]
    fn a_seed_file_at_start_that_cannot_be_read_names_the_parameter() {
        let d = dir("seedstart");
        let rules = d.join("rules.txt");
        std::fs::write(&rules, "prefix 1 domestic 0.01\n").unwrap();
        let mut c = FraudConfig {
            rules_file: Some(rules),
            ..Default::default()
        };
        c.set("baseline_seed_file", d.join("missing.csv").to_str().unwrap())
            .unwrap();
        let e = Fraud::create(&c, S).err().unwrap();
        assert!(
            e.contains("baseline_seed_file") && e.contains("baseline_days is 0"),
            "{e}"
        );
        c.set("baseline_days", "7").unwrap();
        let e = Fraud::create(&c, S).err().unwrap();
        assert!(
            e.starts_with("parameter baseline_seed_file: ") && e.contains("missing.csv"),
            "{e}"
        );
    }
}
