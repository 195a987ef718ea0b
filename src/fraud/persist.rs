//! Suspensions survive a restart: written by the timer process to
//! `fraud_state_file` when they change (and at shutdown), read at start.
//!
//! ```text
//! # sipguard accounts v2
//! # account reason since_unix_ms
//! alice spend 1795000000000
//! baseline alice 498000 498100 15000 20560:44:international 10:15000,11:2500
//! ```
//!
//! Version 2 adds the learnt baselines ([`super::baseline`]): `baseline`,
//! the account, its first and current Unix hour, the current hour's spend,
//! its destinations (`day:country:class`) and its usual spend per hour of
//! the week (`hour:money`), `-` for an empty list. A version 1 file (no
//! baselines) is still read.
//!
//! Names are percent-encoded outside printable ASCII (they come from SIP
//! headers). Written by the same atomic writer as the ban state
//! ([`crate::util::atomic_file`]), and read under the same corruption policy
//! ([`crate::util::state_file::read_lines`]): at start a bad line is skipped with a
//! `file:line` warning and the others restored; a file whose first line is
//! not ours, or that is larger than the account table could have written,
//! is not read and is moved aside. A suspension the account table has no
//! room for is kept in the file by every later save (restored at a later
//! start).

use super::accounts::{Accounts, Reason, NAME_BYTES};
use super::baseline::{self, Baselines};
use crate::util::state_file::{read_lines, Format, StateError};
use std::fmt::Write as _;
use std::path::Path;

const MAGIC: &str = "# sipguard accounts v2";
/// Suspensions only; still read.
const MAGIC_V1: &str = "# sipguard accounts v1";

/// Longer than any suspension line a save writes (a 64-byte name
/// percent-encoded is 192 bytes, plus reason and time).
pub const MAX_LINE: usize = 256;
/// Longer than any baseline line (name, 16 destinations, 168 hours).
pub const MAX_BASELINE_LINE: usize = 4096;

/// The most bytes a save can write for `accounts`: one line per account,
/// with room for comments and for suspensions carried over.
pub fn max_file_bytes(accounts: &Accounts) -> u64 {
    (accounts.capacity() + 1024) * MAX_LINE as u64
}

/// The same, with a line per baseline.
fn max_bytes(accounts: &Accounts, baselines: Option<&Baselines>) -> u64 {
    max_file_bytes(accounts) + baselines.map_or(0, |b| b.capacity() * MAX_BASELINE_LINE as u64)
}

/// Whether the file at `path` starts as a version 1 file.
fn is_v1(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; MAGIC_V1.len() + 1];
    let n = std::fs::File::open(path)
        .and_then(|f| f.take(head.len() as u64).read(&mut head))
        .unwrap_or(0);
    let m = MAGIC_V1.len();
    n >= m && head[..m] == *MAGIC_V1.as_bytes() && (n == m || matches!(head[m], b'\n' | b'\r'))
}

fn encode(name: &[u8], out: &mut String) {
    for &b in name {
        if b.is_ascii_graphic() && b != b'%' && b != b'#' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A saved suspension: account, reason, since (Unix ms).
pub type Saved = (Vec<u8>, Reason, u64);

/// Write every suspended account, and `carried` (saved suspensions that
/// could not be restored at start) unless the table has the account
/// suspended too. Returns how many.
pub fn save(accounts: &Accounts, path: &Path, now: u64, carried: &[Saved]) -> Result<usize, String> {
    save_with(accounts, None, path, now, carried)
}

/// [`save`], and every baseline of `baselines`.
pub fn save_with(
    accounts: &Accounts,
    baselines: Option<&Baselines>,
    path: &Path,
    now: u64,
    carried: &[Saved],
) -> Result<usize, String> {
    let mut text = format!("{MAGIC}\n# account reason since_unix_ms\n");
    let mut written = Vec::new();
    let skipped = accounts.list(now, |a| {
        if let Some(r) = a.suspended {
            line(&mut text, &a.name, r, a.since_wall_ms);
            written.push(a.name);
        }
        true
    });
    if skipped > 0 {
        return Err(format!(
            "{skipped} account buckets were busy; {} left as it was",
            path.display()
        ));
    }
    let mut n = written.len();
    for (name, reason, since) in carried {
        if !written.contains(name) {
            line(&mut text, name, *reason, *since);
            n += 1;
        }
    }
    if let Some(b) = baselines {
        text.push_str("# baseline account first_hour hour hour_spend day:country:class,... how:money,...\n");
        let mut name = String::new();
        let skipped = b.list(|s| {
            name.clear();
            encode(&s.name, &mut name);
            baseline::to_line(&s, &name, &mut text);
            true
        });
        if skipped > 0 {
            return Err(format!(
                "{skipped} baseline buckets were busy; {} left as it was",
                path.display()
            ));
        }
    }
    crate::util::atomic_file::write(path, text.as_bytes())?;
    Ok(n)
}

fn line(text: &mut String, name: &[u8], reason: Reason, since: u64) {
    encode(name, text);
    let _ = writeln!(text, " {} {since}", reason.name());
}

/// An account name as saved: as the script functions take them (a longer
/// name would be stored cut, and come back as another account).
fn account_name(s: &str) -> Result<Vec<u8>, &'static str> {
    decode(s)
        .filter(|n| !n.is_empty() && n.len() <= NAME_BYTES)
        .ok_or("bad account name")
}

/// A version 2 baseline line (`baseline <account> ...`).
fn parse_baseline(line: &str) -> Result<baseline::Saved, &'static str> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let name = account_name(f.get(1).ok_or("expected 7 fields")?)?;
    baseline::from_fields(name, &f[2..])
}

/// One line (not blank, not a comment): the suspension or why not.
fn parse_line(line: &str) -> Result<Saved, &'static str> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let [name, reason, since] = f[..] else {
        return Err("expected 3 fields");
    };
    let name = account_name(name)?;
    let reason = Reason::from_name(reason).ok_or("unknown reason")?;
    let since = since.parse().map_err(|_| "bad time")?;
    Ok((name, reason, since))
}

/// What [`load`] restored.
#[derive(Debug, Default)]
pub struct Loaded {
    pub restored: usize,
    /// `file:line: why` of each line skipped (the first hundred, then one
    /// line saying how many more).
    pub warnings: Vec<String>,
    /// Good lines the account table had no room for (their bucket full of
    /// live accounts) or could not lock: [`save`] carries them on.
    pub unrestored: Vec<Saved>,
}

/// Restore suspensions. A missing file is none; bad lines and files as
/// [`read_lines`] says (the policy of the ban state file too); a file is
/// too large past [`max_file_bytes`].
pub fn load(accounts: &Accounts, path: &Path, now: u64) -> Result<Loaded, String> {
    load_with(accounts, None, path, now)
}

/// [`load`], and the baselines of a version 2 file into `baselines` (they
/// are skipped without it: baselines are off).
pub fn load_with(
    accounts: &Accounts,
    baselines: Option<&Baselines>,
    path: &Path,
    now: u64,
) -> Result<Loaded, String> {
    let table = format!("an account table of {}", accounts.capacity());
    let v1 = is_v1(path);
    let format = Format {
        magic: if v1 { MAGIC_V1 } else { MAGIC },
        max_line: if v1 { MAX_LINE } else { MAX_BASELINE_LINE },
        max_bytes: max_bytes(accounts, baselines),
        table: &table,
    };
    let mut out = Loaded::default();
    let mut warnings = Vec::new();
    read_lines(
        path,
        &format,
        |_, l| {
            if !v1 && l.starts_with("baseline ") && l.split_ascii_whitespace().count() != 3 {
                let s = parse_baseline(l)?;
                if let Some(b) = baselines {
                    b.restore(accounts.key_of(&s.name), &s, false, now)
                        .map_err(|_| "baseline table bucket full or busy")?;
                }
                return Ok(());
            }
            let (name, reason, since) = parse_line(l)?;
            match accounts.restore(&name, reason, since, now) {
                Ok(()) => out.restored += 1,
                Err(_) => out.unrestored.push((name, reason, since)),
            }
            Ok(())
        },
        |w| warnings.push(w),
    )
    .map_err(|e| match e {
        StateError::Io(m) | StateError::Corrupt(m) => m,
    })?;
    out.warnings = warnings;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::accounts::{CallTicket, Thresholds};
    use super::super::money::Money;
    use super::*;

    #[test]
    fn a_name_longer_than_an_account_name_is_a_bad_line() {
        assert!(parse_line(&format!("{} rpc 1", "a".repeat(NAME_BYTES))).is_ok());
        assert_eq!(
            parse_line(&format!("{} rpc 1", "a".repeat(NAME_BYTES + 1))).unwrap_err(),
            "bad account name"
        );
    }

    #[test]
    fn suspensions_round_trip() {
        let dir = std::env::temp_dir().join(format!("sipguard-acc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accounts.state");
        let a = Accounts::create(64, Thresholds::default()).unwrap();
        a.suspend(b"al ice%", Reason::Spend, 1, 1234).unwrap();
        a.suspend(b"bob", Reason::Rpc, 1, 99).unwrap();
        assert_eq!(save(&a, &path, 2, &[]).unwrap(), 2);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("al%20ice%25 spend 1234"));
        let b = Accounts::create(64, Thresholds::default()).unwrap();
        assert_eq!(load(&b, &path, 5).unwrap().restored, 2);
        let mut got = Vec::new();
        b.list(5, |i| {
            got.push((i.name, i.suspended, i.since_wall_ms));
            true
        });
        got.sort();
        assert_eq!(
            got,
            vec![
                (b"al ice%".to_vec(), Some(Reason::Spend), 1234),
                (b"bob".to_vec(), Some(Reason::Rpc), 99)
            ]
        );
        std::fs::write(&path, "junk\n").unwrap();
        assert!(load(&b, &path, 5).unwrap_err().contains("line 1"));
        assert!(path.with_extension("corrupt").exists());
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sipguard-acc-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn suspended(a: &Accounts) -> Vec<(Vec<u8>, Option<Reason>, u64)> {
        let mut got = Vec::new();
        a.list(5, |i| {
            if i.suspended.is_some() {
                got.push((i.name, i.suspended, i.since_wall_ms));
            }
            true
        });
        got.sort();
        got
    }

    #[test]
    fn bad_lines_are_skipped_and_the_others_restored() {
        let path = dir("badlines").join("accounts.state");
        let mut text = format!("{MAGIC}\n# comment\nalice spend 1\nbob spend\ncarl cash 3\n");
        text.push_str("dave rpc soon\n%zz cpm 4\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xffeve rpc 5\nfred cpm 6\n");
        std::fs::write(&path, bytes).unwrap();
        let a = Accounts::create(64, Thresholds::default()).unwrap();
        let got = load(&a, &path, 5).unwrap();
        assert_eq!((got.restored, got.unrestored.len()), (2, 0));
        let file = path.display().to_string();
        let want: Vec<String> = [
            (4, "expected 3 fields"),
            (5, "unknown reason"),
            (6, "bad time"),
            (7, "bad account name"),
            (8, "not text"),
        ]
        .iter()
        .map(|(n, why)| format!("{file}:{n}: {why}; line skipped"))
        .collect();
        assert_eq!(got.warnings, want);
        assert_eq!(
            suspended(&a),
            vec![
                (b"alice".to_vec(), Some(Reason::Spend), 1),
                (b"fred".to_vec(), Some(Reason::Cpm), 6)
            ]
        );
        assert!(path.exists(), "a file with good lines is not moved aside");
    }

    #[test]
    fn long_lines_and_oversize_files() {
        let path = dir("oversize").join("accounts.state");
        let a = Accounts::create(64, Thresholds::default()).unwrap();
        let text = format!("{MAGIC}\nalice spend 1\n{} spend 2\nbob rpc 3", "x".repeat(5000));
        std::fs::write(&path, text).unwrap();
        let got = load(&a, &path, 5).unwrap();
        assert_eq!(got.restored, 2);
        assert_eq!(
            got.warnings,
            [format!("{}:3: line too long; line skipped", path.display())]
        );
        // A sparse gigabyte is refused from its size, unread, and kept aside.
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(1 << 30).unwrap();
        drop(f);
        let t = std::time::Instant::now();
        let e = load(&a, &path, 5).unwrap_err();
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(e.contains("1073741824 bytes") && e.contains("not read"), "{e}");
        assert!(!path.exists() && path.with_extension("too-large").exists());
        // Many bad lines: the first hundred named, then a count.
        let mut text = format!("{MAGIC}\n");
        for _ in 0..130 {
            text.push_str("junk\n");
        }
        std::fs::write(&path, text).unwrap();
        let got = load(&a, &path, 5).unwrap();
        assert_eq!(got.warnings.len(), 101);
        assert_eq!(
            got.warnings[100],
            format!("{}: 30 more bad lines skipped", path.display())
        );
    }

    #[test]
    fn a_failed_save_keeps_the_old_file_and_leaves_no_temporary() {
        let d = dir("failedsave");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("accounts.state");
        let a = Accounts::create(64, Thresholds::default()).unwrap();
        a.suspend(b"alice", Reason::Spend, 1, 1234).unwrap();
        // The target is a directory: the rename over it fails.
        std::fs::create_dir(&path).unwrap();
        assert!(save(&a, &path, 2, &[]).is_err());
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["accounts.state"], "no temporary file left behind");
        std::fs::remove_dir(&path).unwrap();
        assert_eq!(save(&a, &path, 2, &[]).unwrap(), 1);
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["accounts.state"]);
    }

    #[test]
    fn what_cannot_be_restored_is_kept_by_later_saves() {
        let path = dir("unrestored").join("accounts.state");
        std::fs::write(&path, format!("{MAGIC}\nnew1 cpm 5\nup3 rpc 7\nnew2 spend 9\n")).unwrap();
        // One bucket of 8, every cell with a call up: no room for a new name.
        let a = Accounts::create(8, Thresholds::default()).unwrap();
        let t: Vec<CallTicket> = (0..8).map(|_| CallTicket::default()).collect();
        for (i, ticket) in t.iter().enumerate() {
            a.start(format!("up{i}").as_bytes(), 0, Money(0), 1, ticket)
                .unwrap();
        }
        let got = load(&a, &path, 5).unwrap();
        assert_eq!(got.restored, 1, "the entry after a failed one is restored");
        assert_eq!(
            got.unrestored,
            vec![
                (b"new1".to_vec(), Reason::Cpm, 5),
                (b"new2".to_vec(), Reason::Spend, 9)
            ]
        );
        assert_eq!(suspended(&a), vec![(b"up3".to_vec(), Some(Reason::Rpc), 7)]);
        // A later save writes the table's suspensions and the unrestored ones.
        let mut carried = got.unrestored.clone();
        carried.push((b"up3".to_vec(), Reason::Cpm, 1));
        assert_eq!(save(&a, &path, 6, &carried).unwrap(), 3);
        let b = Accounts::create(64, Thresholds::default()).unwrap();
        assert_eq!(load(&b, &path, 7).unwrap().restored, 3);
        assert_eq!(
            suspended(&b),
            vec![
                (b"new1".to_vec(), Some(Reason::Cpm), 5),
                (b"new2".to_vec(), Some(Reason::Spend), 9),
                (b"up3".to_vec(), Some(Reason::Rpc), 7)
            ]
        );
    }
}
