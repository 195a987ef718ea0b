//! Bans survive a restart: saved to `state_file` (periodically and at
//! shutdown), restored at start.
//!
//! A text file, one entry per line, written to a temporary file and renamed
//! so a crash mid-save leaves the previous file intact:
//!
//! ```text
//! # sipguard state v1
//! # key until_unix_ms|permanent offences reason
//! 192.0.2.7 1795000000000 2 flood
//! 2001:db8::/64 permanent 5 manual
//! ```
//!
//! Ended bans are kept while their offences still count for escalation.
//! Monotonic time does not survive a reboot, so end times are stored as wall
//! time and turned back into monotonic time on load.

use crate::addr::Key;
use crate::ban::Reason;
use crate::clock::{wall_ms, NS_PER_MS};
use crate::log::{log, Level};
use crate::region::Region;
use crate::table::PERMANENT;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

const MAGIC_LINE: &str = "# sipguard state v1";

#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    Io(String),
    Corrupt(String),
}

/// One saved entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Saved {
    key: Key,
    /// Wall-clock end in ms; None = permanent.
    until_ms: Option<u64>,
    offences: u32,
    reason: Reason,
}

fn mono_to_wall_ms(until: u64, now: u64, wall_now: u64) -> u64 {
    if until >= now {
        wall_now + (until - now) / NS_PER_MS
    } else {
        wall_now.saturating_sub((now - until) / NS_PER_MS)
    }
}

/// None when the end lies further from now than the clock can count:
/// only a damaged file says that.
fn wall_to_mono(until_ms: u64, now: u64, wall_now: u64) -> Option<u64> {
    if until_ms >= wall_now {
        (until_ms - wall_now)
            .checked_mul(NS_PER_MS)
            .and_then(|d| now.checked_add(d))
            .filter(|t| *t < PERMANENT)
    } else {
        let ago = (wall_now - until_ms).checked_mul(NS_PER_MS)?;
        Some(now.saturating_sub(ago).max(1))
    }
}

/// Write every ban and remembered offender to `path`. Returns entries written.
/// If any bucket could not be read, the previous file is kept.
pub fn save(region: &Region, path: &Path, now: u64) -> Result<usize, StateError> {
    let wall_now = wall_ms();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{MAGIC_LINE}\n# key until_unix_ms|permanent offences reason"
    );
    let mut count = 0;
    let skipped = region.for_each_entry(now, |e| {
        if e.offences > 0 || e.banned {
            let reason = e.reason.unwrap_or(Reason::Flood).name();
            let _ = match e.ban_until {
                PERMANENT => writeln!(text, "{} permanent {} {reason}", e.key, e.offences),
                until => writeln!(
                    text,
                    "{} {} {} {reason}",
                    e.key,
                    mono_to_wall_ms(until, now, wall_now),
                    e.offences
                ),
            };
            count += 1;
        }
        true
    });
    if skipped > 0 {
        return Err(StateError::Io(format!(
            "{skipped} table buckets were busy; {} left as it was",
            path.display()
        )));
    }
    // Per process: the timer's periodic save may overlap the shutdown save.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let io = |e: std::io::Error| StateError::Io(format!("{}: {e}", tmp.display()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| StateError::Io(format!("{}: {e}", path.display())))?;
    Ok(count)
}

fn parse(text: &str, ipv6_prefix: u8) -> Result<Vec<Saved>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, MAGIC_LINE)) => {}
        _ => return Err(format!("line 1: expected \"{MAGIC_LINE}\"")),
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: \"{line}\"", n + 1);
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let [key, until, offences, reason] = f[..] else {
            return Err(bad("expected 4 fields"));
        };
        let key = Key::parse(key, ipv6_prefix).ok_or_else(|| bad("bad address"))?;
        let until_ms = match until {
            "permanent" => None,
            t => Some(t.parse().map_err(|_| bad("bad end time"))?),
        };
        let offences = offences.parse().map_err(|_| bad("bad offence count"))?;
        let reason = Reason::from_name(reason).ok_or_else(|| bad("unknown reason"))?;
        out.push(Saved {
            key,
            until_ms,
            offences,
            reason,
        });
    }
    Ok(out)
}

/// Restore from `path`. Missing file: Ok(0). Returns active bans restored.
/// A corrupt file is refused whole (a half-trusted file is worse than none)
/// and moved aside to `<path>.corrupt`, so the next save cannot erase what
/// an operator may want to recover from it.
pub fn load(region: &Region, path: &Path, now: u64) -> Result<usize, StateError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StateError::Io(format!("{}: {e}", path.display()))),
    };
    let entries = String::from_utf8(text)
        .map_err(|_| "not text".to_string())
        .and_then(|t| parse(&t, region.cfg.ipv6_prefix))
        .and_then(|saved| to_monotonic(saved, now, wall_ms()));
    let entries = match entries {
        Ok(e) => e,
        Err(why) => {
            let aside = path.with_extension("corrupt");
            let moved = match std::fs::rename(path, &aside) {
                Ok(()) => format!("moved to {}", aside.display()),
                Err(e) => format!("could not move it aside: {e}"),
            };
            return Err(StateError::Corrupt(format!(
                "{}: {why} ({moved})",
                path.display()
            )));
        }
    };
    let mut active = 0;
    for (s, until) in entries {
        if until != PERMANENT && until <= now && until.saturating_add(region.cfg.ban_forget_ns) <= now {
            continue; // offences already forgotten
        }
        match region.restore(s.key, until, s.offences, s.reason, now) {
            Ok(true) => active += 1,
            Ok(false) => {}
            Err(e) => log(
                Level::Warn,
                format_args!("sipguard: state_file entry {} not restored: {e:?}", s.key),
            ),
        }
    }
    Ok(active)
}

/// Every entry with its end in monotonic time, or why the file is corrupt.
fn to_monotonic(saved: Vec<Saved>, now: u64, wall_now: u64) -> Result<Vec<(Saved, u64)>, String> {
    saved
        .into_iter()
        .map(|s| match s.until_ms {
            None => Ok((s, PERMANENT)),
            Some(ms) => wall_to_mono(ms, now, wall_now)
                .map(|t| (s, t))
                .ok_or_else(|| format!("end time {ms} of {} is out of range", s.key)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::NS_PER_SEC as S;

    fn region() -> Region {
        crate::region::small_region(|_| {})
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sipguard-state-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("bans.state")
    }

    #[test]
    fn bans_round_trip() {
        let t0 = 1000 * S;
        let a = region();
        a.ban("192.0.2.7", Some(100 * S), t0).unwrap();
        a.ban("2001:db8::1", Some(PERMANENT), t0).unwrap();
        let path = tmp("rt");
        assert_eq!(save(&a, &path, t0).unwrap(), 2);
        // A new region, as after a restart, at another monotonic time.
        let b = region();
        let t1 = 5000 * S;
        assert_eq!(load(&b, &path, t1).unwrap(), 2);
        let mut seen = Vec::new();
        b.for_each_entry(t1, |e| {
            seen.push((e.key.to_string(), e.ban_ns, e.offences, e.reason));
            true
        });
        seen.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(seen[0].0, "192.0.2.7");
        assert!(seen[0].1 > 98 * S && seen[0].1 <= 100 * S, "{:?}", seen[0]);
        assert_eq!(
            seen[1],
            ("2001:db8::/64".to_string(), PERMANENT, 1, Some(Reason::Manual))
        );
    }

    #[test]
    fn missing_file_is_fine() {
        assert_eq!(
            load(&region(), Path::new("/nonexistent/sipguard.state"), S),
            Ok(0)
        );
    }

    #[test]
    fn corrupt_file_is_refused_whole() {
        let path = tmp("bad");
        std::fs::write(&path, "garbage\n").unwrap();
        assert!(matches!(load(&region(), &path, S), Err(StateError::Corrupt(m)) if m.contains("line 1")));
        std::fs::write(
            &path,
            format!("{MAGIC_LINE}\n10.0.0.1 permanent 1 flood\n10.0.0.x 5 1 flood\n"),
        )
        .unwrap();
        let r = region();
        assert!(matches!(load(&r, &path, S), Err(StateError::Corrupt(m)) if m.contains("line 3")));
        let mut n = 0;
        r.for_each_entry(S, |_| {
            n += 1;
            true
        });
        assert_eq!(n, 0, "nothing restored from a corrupt file");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(load(&r, &path, S), Err(StateError::Corrupt(_))));
        // Kept aside for the operator, so the next save does not erase it.
        assert_eq!(
            std::fs::read(path.with_extension("corrupt")).unwrap(),
            [0xff, 0xfe, 0x00]
        );
        assert!(!path.exists());
    }

    #[test]
    fn end_times_beyond_the_clock_are_corrupt() {
        let path = tmp("far");
        std::fs::write(
            &path,
            format!("{MAGIC_LINE}\n10.0.0.1 99999999999999999 1 flood\n"),
        )
        .unwrap();
        let r = region();
        assert!(matches!(load(&r, &path, S), Err(StateError::Corrupt(m)) if m.contains("out of range")));
    }
}
