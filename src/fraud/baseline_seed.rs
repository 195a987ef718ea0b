//! Seeding the baselines from past calls, so a new deployment does not
//! start blind: a CSV of `account,start,duration,number,cost` (a CDR
//! export), read by `sipguard.seed_baseline <file>` or at start
//! (`baseline_seed_file`).
//!
//! `start` is Unix seconds or a UTC date and time (`2026-11-30T10:00:00Z`,
//! `2026-11-30 10:00:00`, `2026-11-30T10:00`); `duration` whole seconds;
//! `number` as dialled (normalized like a dial check's); `cost` an amount
//! (`0.25`). A first line that does not parse as a call is a header. A call
//! older than `baseline_days` is left out; each account's usual spend per
//! hour of the week is its calls' cost in that hour, summed and divided by
//! the weeks the file covers for it (at most `baseline_days` / 7); each
//! call's destination is noted on its day. Bad lines are skipped and named
//! (`file:line: why`); a run reads at most [`MAX_LINES`] lines of at most
//! [`MAX_LINE`] bytes, and keeps at most as many accounts as the baseline
//! table holds.

use super::baseline::{hour_of_week, BaselineConfig, Dest, Saved, HOURS_OF_WEEK};
use super::money::parse_money;
use super::rules::Class;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub const MAX_LINES: usize = 5_000_000;
pub const MAX_LINE: usize = 1024;
/// Bad lines named one by one; past this, counted.
const MAX_REPORTED: usize = 100;
const HOUR_S: u64 = 3600;
const DAY_S: u64 = 24 * HOUR_S;

/// What a seeding run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Calls used.
    pub calls: usize,
    /// Accounts seeded.
    pub accounts: usize,
    /// Bad lines skipped.
    pub skipped: usize,
    /// Calls older than `baseline_days`, left out.
    pub old: usize,
    /// Accounts the table had no room for (or that came past its size).
    pub unstored: usize,
    /// `file:line: why` of the first bad lines.
    pub warnings: Vec<String>,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls of {} accounts, {} lines skipped, {} calls older than baseline_days, {} accounts not stored",
            self.calls, self.accounts, self.skipped, self.old, self.unstored
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of a start time.
pub fn parse_time(s: &str) -> Result<u64, &'static str> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| "bad start time");
    }
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let bad = "bad start time: expected Unix seconds or YYYY-MM-DD HH:MM[:SS] (UTC)";
    let (date, time) = s.split_once(['T', ' ']).ok_or(bad)?;
    let num = |t: &str, lo: u32, hi: u32| -> Result<u32, &'static str> {
        t.parse::<u32>()
            .ok()
            .filter(|n| t.len() >= 2 && (lo..=hi).contains(n))
            .ok_or(bad)
    };
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    let ([y, mo, da], [h, mi, rest @ ..]) = (&d[..], &t[..]) else {
        return Err(bad);
    };
    let sec = match rest {
        [] => 0,
        [sec] => num(sec, 0, 60)?,
        _ => return Err(bad),
    };
    let (y, mo, da) = (num(y, 1970, 9999)?, num(mo, 1, 12)?, num(da, 1, 31)?);
    let days = days_from_civil(y as i64, mo, da);
    Ok(days as u64 * DAY_S + num(h, 0, 23)? as u64 * HOUR_S + num(mi, 0, 59)? as u64 * 60 + sec as u64)
}

/// One call of the file.
struct Call<'a> {
    account: &'a str,
    start: u64,
    number: &'a str,
    cost: u64,
}

fn parse_call(line: &str) -> Result<Call<'_>, &'static str> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    let [account, start, duration, number, cost] = f[..] else {
        return Err("expected 5 fields: account,start,duration,number,cost");
    };
    if account.is_empty() || account.len() > super::accounts::NAME_BYTES {
        return Err("bad account name: 1..64 bytes");
    }
    let start = parse_time(start)?;
    duration
        .parse::<u64>()
        .map_err(|_| "bad duration: expected whole seconds")?;
    let cost = parse_money(cost).map_err(|_| "bad cost: expected an amount like 0.25")?;
    Ok(Call {
        account,
        start,
        number,
        cost: cost.0,
    })
}

#[derive(Default)]
struct Acc {
    first_hour: u32,
    sums: Vec<u64>,
    dests: HashMap<u32, (u32, Dest)>,
}

/// Read the file at `path` into one [`Saved`] per account (at most
/// `max_accounts`). `classify` gives a dialled number's E.164 digits and
/// class (None: the destination is not noted; the cost still counts).
pub fn read(
    path: &Path,
    cfg: &BaselineConfig,
    max_accounts: u64,
    wall_ms: u64,
    mut classify: impl FnMut(&[u8]) -> Option<(Vec<u8>, Class)>,
) -> Result<(Vec<Saved>, SeedReport), String> {
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut reader = BufReader::new(file.take((MAX_LINES * (MAX_LINE + 1)) as u64));
    let now_s = wall_ms / 1000;
    let oldest = now_s.saturating_sub(cfg.days as u64 * DAY_S);
    let mut report = SeedReport::default();
    let mut accs: HashMap<String, Acc> = HashMap::new();
    let mut buf = Vec::with_capacity(MAX_LINE + 1);
    let bad = |report: &mut SeedReport, n: usize, why: &str| {
        report.skipped += 1;
        if report.skipped <= MAX_REPORTED {
            report.warnings.push(format!("{name}:{n}: {why}; line skipped"));
        }
    };
    for n in 1..=MAX_LINES {
        buf.clear();
        let got = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{name}: {e}"))?;
        if got == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
            // Skip the rest of the long line.
            let mut rest = Vec::new();
            let _ = (&mut reader).take(1 << 20).read_until(b'\n', &mut rest);
            bad(&mut report, n, "line too long");
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            bad(&mut report, n, "not text");
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let call = match parse_call(line) {
            Ok(c) => c,
            Err(_) if n == 1 => continue, // a header
            Err(why) => {
                bad(&mut report, n, why);
                continue;
            }
        };
        if call.start < oldest || call.start > now_s {
            report.old += 1;
            continue;
        }
        if !accs.contains_key(call.account) && accs.len() as u64 >= max_accounts {
            report.unstored += 1;
            continue;
        }
        let acc = accs.entry(call.account.to_string()).or_insert_with(|| Acc {
            first_hour: u32::MAX,
            sums: vec![0; HOURS_OF_WEEK],
            ..Default::default()
        });
        let hour = (call.start / HOUR_S) as u32;
        acc.first_hour = acc.first_hour.min(hour);
        acc.sums[hour_of_week(hour)] += call.cost;
        if let Some((digits, class)) = classify(call.number.as_bytes()) {
            let d = Dest::of(&digits, class);
            let day = (call.start / DAY_S) as u32;
            let e = acc
                .dests
                .entry((class as u32) << 16 | d.cc as u32)
                .or_insert((day, d));
            e.0 = e.0.max(day);
        }
        report.calls += 1;
    }
    if report.skipped > MAX_REPORTED {
        report.warnings.push(format!(
            "{name}: {} more bad lines skipped",
            report.skipped - MAX_REPORTED
        ));
    }
    let now_hour = (now_s / HOUR_S) as u32;
    let mut out = Vec::with_capacity(accs.len());
    for (account, acc) in accs {
        let weeks = (now_hour.saturating_sub(acc.first_hour) as usize)
            .div_ceil(HOURS_OF_WEEK)
            .clamp(1, cfg.weeks() as usize) as u64;
        let mut dests: Vec<(u32, Dest)> = acc.dests.into_values().collect();
        // The most recently called first: they are kept when there are more
        // than the slots.
        dests.sort_by_key(|(day, _)| std::cmp::Reverse(*day));
        dests.truncate(super::baseline::DEST_SLOTS);
        dests.reverse();
        out.push(Saved {
            name: account.into_bytes(),
            first_hour: acc.first_hour,
            hour: 0,
            hour_spend: 0,
            dests,
            spend: acc
                .sums
                .iter()
                .enumerate()
                .filter(|(_, s)| **s > 0)
                .map(|(i, s)| (i, (s / weeks).min(u32::MAX as u64) as u32))
                .collect(),
        });
    }
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times() {
        assert_eq!(parse_time("1795996800"), Ok(1_795_996_800));
        assert_eq!(parse_time("2026-11-30T00:00:00Z"), Ok(1_795_996_800));
        assert_eq!(
            parse_time("2026-11-30 10:30"),
            Ok(1_795_996_800 + 10 * 3600 + 1800)
        );
        assert_eq!(parse_time("1970-01-01T00:00:01+00:00"), Ok(1));
        for bad in [
            "",
            "2026-13-01T00:00",
            "2026-11-30",
            "30/11/2026 10:00",
            "2026-11-30T25:00",
            "-5",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_history_becomes_a_baseline() {
        let dir = std::env::temp_dir().join(format!("sipguard-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cdr.csv");
        let now_ms = 1_795_996_800_000 + 14 * DAY_S * 1000; // a Monday 00:00
        let mut text = String::from("account,start,duration,number,cost\n");
        // Two weeks of 0.10 every hour, to one number.
        for h in 0..14 * 24 {
            let t = now_ms / 1000 - (h + 1) * HOUR_S;
            text.push_str(&format!("alice,{t},60,+12125551234,0.1000\n"));
        }
        text.push_str("alice,1,60,+12125551234,0.1000\n"); // too old
        text.push_str("bob,yesterday,60,+1212,1\n");
        text.push_str("bob,1795996800,x,+1212,1\n");
        std::fs::write(&path, text).unwrap();
        let cfg = BaselineConfig {
            days: 28,
            ..Default::default()
        };
        let classify = |n: &[u8]| Some((n.strip_prefix(b"+").unwrap_or(n).to_vec(), Class::Domestic));
        let (seeds, report) = read(&path, &cfg, 10, now_ms, classify).unwrap();
        assert_eq!((report.calls, report.old, report.skipped), (336, 1, 2));
        assert_eq!(
            report.warnings[0],
            format!(
                "{}:339: bad start time: expected Unix seconds or YYYY-MM-DD HH:MM[:SS] (UTC); line skipped",
                path.display()
            )
        );
        assert!(report.warnings[1].ends_with(":340: bad duration: expected whole seconds; line skipped"));
        let s = &seeds[0];
        assert_eq!(s.spend.len(), 168);
        assert!(s.spend.iter().all(|(_, v)| *v == 1000), "0.10 an hour");
        assert_eq!(s.dests.len(), 1);
        assert_eq!(
            s.dests[0].1,
            Dest {
                cc: 1,
                class: Class::Domestic
            }
        );
    }

    #[test]
    fn long_lines_bytes_and_many_bad_lines_are_skipped_and_counted() {
        let dir = std::env::temp_dir().join(format!("sipguard-seed-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cdr.csv");
        let now_ms = 1_795_996_800_000u64;
        let mut data = format!("alice,{},60,+12125551234,0.1\n", now_ms / 1000 - 60).into_bytes();
        data.extend_from_slice(&vec![b'x'; 5000]);
        data.extend_from_slice(b"\nbob,1795996000,60,+1,\xff\n");
        for _ in 0..120 {
            data.extend_from_slice(b"junk\n");
        }
        data.extend_from_slice(format!("carol,{},60,+12125551234,0.1", now_ms / 1000 - 60).as_bytes());
        std::fs::write(&path, data).unwrap();
        let cfg = BaselineConfig {
            days: 7,
            ..Default::default()
        };
        let (seeds, r) = read(&path, &cfg, 1, now_ms, |_| None).unwrap();
        assert_eq!((r.calls, r.skipped, r.unstored), (1, 122, 1), "{r:?}");
        assert_eq!(seeds.len(), 1, "at most max_accounts");
        let file = path.display().to_string();
        assert_eq!(r.warnings[0], format!("{file}:2: line too long; line skipped"));
        assert_eq!(r.warnings[1], format!("{file}:3: not text; line skipped"));
        assert_eq!(r.warnings.len(), 101);
        assert_eq!(r.warnings[100], format!("{file}: 22 more bad lines skipped"));
        assert!(read(&dir.join("missing.csv"), &cfg, 1, now_ms, |_| None)
            .unwrap_err()
            .contains("missing.csv"));
    }
}
