//! Suspensions survive a restart: written by the timer process to
//! `fraud_state_file` when they change (and at shutdown), read at start.
//!
//! ```text
//! # sipguard accounts v1
//! # account reason since_unix_ms
//! alice spend 1795000000000
//! ```
//!
//! Names are percent-encoded outside printable ASCII (they come from SIP
//! headers). Written to a temporary file and renamed, like the ban state.

use super::accounts::{Accounts, Reason};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

const MAGIC: &str = "# sipguard accounts v1";

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

/// Write every suspended account. Returns how many.
pub fn save(accounts: &Accounts, path: &Path, now: u64) -> Result<usize, String> {
    let mut text = format!("{MAGIC}\n# account reason since_unix_ms\n");
    let mut n = 0;
    let skipped = accounts.list(now, |a| {
        if let Some(r) = a.suspended {
            encode(&a.name, &mut text);
            let _ = writeln!(text, " {} {}", r.name(), a.since_wall_ms);
            n += 1;
        }
        true
    });
    if skipped > 0 {
        return Err(format!(
            "{skipped} account buckets were busy; {} left as it was",
            path.display()
        ));
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let io = |e: std::io::Error| format!("{}: {e}", tmp.display());
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(n)
}

fn parse(text: &str) -> Result<Vec<(Vec<u8>, Reason, u64)>, String> {
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, l)| l) != Some(MAGIC) {
        return Err(format!("line 1: expected \"{MAGIC}\""));
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", n + 1);
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let [name, reason, since] = f[..] else {
            return Err(bad("expected 3 fields"));
        };
        let name = decode(name).ok_or_else(|| bad("bad account name"))?;
        let reason = Reason::from_name(reason).ok_or_else(|| bad("unknown reason"))?;
        let since = since.parse().map_err(|_| bad("bad time"))?;
        out.push((name, reason, since));
    }
    Ok(out)
}

/// Restore suspensions. A missing file is none; a corrupt one is refused
/// whole and moved aside to `<path>.corrupt`.
pub fn load(accounts: &Accounts, path: &Path, now: u64) -> Result<usize, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let saved = String::from_utf8(bytes)
        .map_err(|_| "not text".to_string())
        .and_then(|t| parse(&t));
    let saved = match saved {
        Ok(s) => s,
        Err(why) => {
            let aside = path.with_extension("corrupt");
            let moved = match std::fs::rename(path, &aside) {
                Ok(()) => format!("moved to {}", aside.display()),
                Err(e) => format!("could not move it aside: {e}"),
            };
            return Err(format!("{}: {why} ({moved})", path.display()));
        }
    };
    let mut n = 0;
    for (name, reason, since) in saved {
        accounts
            .restore(&name, reason, since, now)
            .map_err(|e| format!("{}: account table: {e:?}", path.display()))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::accounts::Thresholds;
    use super::*;

    #[test]
    fn suspensions_round_trip() {
        let dir = std::env::temp_dir().join(format!("sipguard-acc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accounts.state");
        let a = Accounts::create(64, Thresholds::default()).unwrap();
        a.suspend(b"al ice%", Reason::Spend, 1, 1234).unwrap();
        a.suspend(b"bob", Reason::Rpc, 1, 99).unwrap();
        assert_eq!(save(&a, &path, 2).unwrap(), 2);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("al%20ice%25 spend 1234"));
        let b = Accounts::create(64, Thresholds::default()).unwrap();
        assert_eq!(load(&b, &path, 5).unwrap(), 2);
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
}
