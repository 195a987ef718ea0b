//! Bans survive a restart: saved to `state_file` (periodically and at
//! shutdown), restored at start.
//!
//! A text file, one entry per line, replaced atomically
//! ([`crate::util::atomic_file`]: a temporary file in the same directory, fsynced,
//! renamed over the file, the directory fsynced) so a crash mid-save leaves
//! the previous file intact:
//!
//! ```text
//! # sipguard state v1
//! # key until_unix_ms|permanent offences reason [prefix]
//! 192.0.2.7 1795000000000 2 flood
//! 2001:db8::/64 permanent 5 manual
//! 198.51.100.0/24 1795000000000 1 scanner prefix
//! ```
//!
//! A fifth field `prefix` marks a prefix ban (a network of `ban_prefix_v4`
//! or `ban_prefix_v6` bits). Ended bans are kept while their offences still
//! count for escalation. Monotonic time does not survive a reboot, so end
//! times are stored as wall time and turned back into monotonic time on load.
//!
//! Loading reads line by line through a bounded buffer ([`read_lines`], the
//! policy shared with the fraud state file). A file whose first
//! line is not ours is refused whole (moved aside to `<file>.corrupt`); a
//! bad line is skipped with a `file:line` warning and the others restored;
//! a file larger than this table could have written is not read at all
//! (moved aside to `<file>.too-large`), so a huge or sparse file cannot make
//! the start read gigabytes.

use crate::flood::ban::Reason;
use crate::flood::region::Flood;
use crate::flood::table::{Restored, BAN_WAYS, PERMANENT};
use crate::sip::addr::Key;
use crate::util::clock::{wall_ms, NS_PER_MS};
use crate::util::log::{log, Level};
use std::fmt::Write as _;

use std::path::Path;

const MAGIC_LINE: &str = "# sipguard state v1";

/// Longer than any line a save writes (under 100 bytes); a longer line is
/// not ours and is skipped unread.
pub const MAX_LINE: usize = 128;

pub use crate::util::state_file::StateError;
use crate::util::state_file::{read_lines, Format};

/// One saved entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Saved {
    key: Key,
    /// A network of the prefix table.
    prefix: bool,
    /// Wall-clock end in ms; None = permanent.
    until_ms: Option<u64>,
    offences: u32,
    reason: Reason,
}

pub(crate) fn mono_to_wall_ms(until: u64, now: u64, wall_now: u64) -> u64 {
    if until >= now {
        wall_now + (until - now) / NS_PER_MS
    } else {
        wall_now.saturating_sub((now - until) / NS_PER_MS)
    }
}

/// None when the end lies further from now than the clock can count:
/// only a damaged file says that.
pub(crate) fn wall_to_mono(until_ms: u64, now: u64, wall_now: u64) -> Option<u64> {
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

/// The most bytes a save of `region` can write: one line per slot of both
/// tables, with room for comments and slack.
pub fn max_file_bytes(region: &Flood) -> u64 {
    let slots = region.entries() + region.prefixes().capacity();
    (slots + 1024) * MAX_LINE as u64
}

/// Write every ban and remembered offender to `path`. Returns entries written.
/// If any bucket could not be read, the previous file is kept.
pub fn save(region: &Flood, path: &Path, now: u64) -> Result<usize, StateError> {
    let wall_now = wall_ms();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{MAGIC_LINE}\n# key until_unix_ms|permanent offences reason [prefix]"
    );
    let mut count = 0;
    let skipped = region.for_each_entry(now, |e| {
        if e.offences > 0 || e.banned {
            let reason = e.reason.unwrap_or(Reason::Flood).name();
            let prefix = if e.prefix { " prefix" } else { "" };
            let _ = match e.ban_until {
                PERMANENT => writeln!(text, "{} permanent {} {reason}{prefix}", e.key, e.offences),
                until => writeln!(
                    text,
                    "{} {} {} {reason}{prefix}",
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
    crate::util::atomic_file::write(path, text.as_bytes()).map_err(StateError::Io)?;
    Ok(count)
}

/// One line (not blank, not a comment): the entry or why not.
fn parse_line(line: &str, ipv6_prefix: u8) -> Result<Saved, &'static str> {
    let mut f = line.split_ascii_whitespace();
    let (Some(key), Some(until), Some(offences), Some(reason)) = (f.next(), f.next(), f.next(), f.next())
    else {
        return Err("expected 4 fields (or 5 with \"prefix\")");
    };
    let prefix = match (f.next(), f.next()) {
        (None, _) => false,
        (Some("prefix"), None) => true,
        _ => return Err("expected 4 fields (or 5 with \"prefix\")"),
    };
    let key = if prefix {
        Key::parse_network(key).ok_or("bad network")?
    } else {
        Key::parse(key, ipv6_prefix).ok_or("bad address")?
    };
    let until_ms = match until {
        "permanent" => None,
        t => Some(t.parse().map_err(|_| "bad end time")?),
    };
    let offences = offences.parse().map_err(|_| "bad offence count")?;
    let reason = Reason::from_name(reason).ok_or("unknown reason")?;
    Ok(Saved {
        key,
        prefix,
        until_ms,
        offences,
        reason,
    })
}

/// Restore from `path`. Missing file: Ok(0). Returns active bans restored.
/// Bad lines and files as [`read_lines`] says; a file is too large past
/// [`max_file_bytes`].
pub fn load(region: &Flood, path: &Path, now: u64) -> Result<usize, StateError> {
    let wall_now = wall_ms();
    let table = format!("a table of {} entries", region.entries());
    let format = Format {
        magic: MAGIC_LINE,
        max_line: MAX_LINE,
        max_bytes: max_file_bytes(region),
        table: &table,
    };
    let mut active = 0;
    read_lines(
        path,
        &format,
        |n, l| {
            let s = parse_line(l, region.cfg.ipv6_prefix)?;
            let until = match s.until_ms {
                None => PERMANENT,
                Some(ms) => wall_to_mono(ms, now, wall_now).ok_or("end time out of range")?,
            };
            if until != PERMANENT && until <= now && until.saturating_add(region.cfg.ban_forget_ns) <= now {
                return Ok(()); // offences already forgotten
            }
            match region.restore(s.key, s.prefix, until, s.offences, s.reason, now) {
                Ok(Restored::Ban) => active += 1,
                Ok(Restored::History) => {}
                Ok(Restored::Crowded) => log(
                    Level::Warn,
                    format_args!(
                        "sipguard: state_file {}:{n}: ban of {} not restored: its table bucket holds \
                         {BAN_WAYS} bans that outrank it (raise table_size); its offences are kept",
                        path.display(),
                        s.key
                    ),
                ),
                Err(crate::flood::table::TableError::BadAddress) => {
                    return Err(format!(
                        "{} is not a network of ban_prefix_v4/ban_prefix_v6 bits (or prefix bans are off)",
                        s.key
                    )
                    .into())
                }
                Err(e) => log(
                    Level::Warn,
                    format_args!("sipguard: state_file entry {} not restored: {e:?}", s.key),
                ),
            }
            Ok(())
        },
        |w| log(Level::Warn, format_args!("sipguard: state_file {w}")),
    )?;
    Ok(active)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::NS_PER_SEC as S;

    fn region() -> Flood {
        crate::flood::region::small_flood(|_| {})
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sipguard-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("bans.state")
    }

    fn entries(r: &Flood, now: u64) -> Vec<(String, u64, u32, Option<Reason>)> {
        let mut seen = Vec::new();
        r.for_each_entry(now, |e| {
            seen.push((e.key.to_string(), e.ban_ns, e.offences, e.reason));
            true
        });
        seen.sort_by(|x, y| x.0.cmp(&y.0));
        seen
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
        let seen = entries(&b, t1);
        assert_eq!(seen[0].0, "192.0.2.7");
        assert!(seen[0].1 > 98 * S && seen[0].1 <= 100 * S, "{:?}", seen[0]);
        assert_eq!(
            seen[1],
            ("2001:db8::/64".to_string(), PERMANENT, 1, Some(Reason::Manual))
        );
    }

    #[test]
    fn prefix_bans_round_trip() {
        let t0 = 1000 * S;
        let a = crate::flood::region::small_flood(|c| c.ban_prefix_threshold = 3);
        for i in 1..=3 {
            a.ban_offender(
                u128::from_be_bytes(crate::sip::addr::parse_address(&format!("198.51.100.{i}")).unwrap()),
                Reason::Scanner,
                t0,
            )
            .unwrap();
        }
        let path = tmp("prefix");
        assert_eq!(save(&a, &path, t0).unwrap(), 4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("198.51.100.0/24 ") && text.contains(" 1 scanner prefix\n"),
            "{text}"
        );
        let b = crate::flood::region::small_flood(|c| c.ban_prefix_threshold = 3);
        let t1 = 2000 * S;
        let mut n = None;
        let lines = crate::util::log::capture(|| n = Some(load(&b, &path, t1)));
        assert_eq!(n.take().unwrap(), Ok(4), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("BAN src=198.51.100.0 key=198.51.100.0/24 reason=restored")),
            "{lines:?}"
        );
        // The restored prefix ban covers the whole network.
        let v = b.check(&[198, 51, 100, 200], t1).unwrap();
        assert_eq!(v.verdict, crate::flood::table::Verdict::Banned);
        // A prefix of another length than configured is skipped, not misread.
        let c = crate::flood::region::small_flood(|c| c.ban_prefix_v4 = 16);
        let lines = crate::util::log::capture(|| n = Some(load(&c, &path, t1)));
        assert_eq!(n.unwrap(), Ok(3), "{lines:?}");
        let at = text.lines().position(|l| l.ends_with(" prefix")).unwrap() + 1;
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(":{at}: 198.51.100.0/24 is not a network of"))),
            "{lines:?}"
        );
    }

    #[test]
    fn a_failed_save_keeps_the_old_file_and_leaves_no_temporary() {
        let path = tmp("failedsave");
        let d = path.parent().unwrap();
        let r = region();
        r.ban("192.0.2.7", Some(100 * S), S).unwrap();
        assert_eq!(save(&r, &path, S).unwrap(), 1);
        let before = std::fs::read(&path).unwrap();
        // The directory turns read-only (or the target cannot be replaced):
        // here, a directory in the way of the temporary file.
        std::fs::create_dir(crate::util::atomic_file::temp_path(&path)).unwrap();
        assert!(matches!(save(&r, &path, S), Err(StateError::Io(_))));
        assert_eq!(std::fs::read(&path).unwrap(), before, "the old file is kept");
        std::fs::remove_dir(crate::util::atomic_file::temp_path(&path)).unwrap();
        // The target is a directory: the rename over it fails, and the
        // temporary file is removed.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(save(&r, &path, S), Err(StateError::Io(_))));
        let names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["bans.state"], "no temporary file left behind");
    }

    #[test]
    fn missing_file_is_fine() {
        assert_eq!(
            load(&region(), Path::new("/nonexistent/sipguard.state"), S),
            Ok(0)
        );
    }

    #[test]
    fn a_file_not_ours_is_refused_whole() {
        let path = tmp("bad");
        std::fs::write(&path, "garbage\n10.0.0.1 permanent 1 flood\n").unwrap();
        let r = region();
        assert!(matches!(load(&r, &path, S), Err(StateError::Corrupt(m)) if m.contains("line 1")));
        assert!(entries(&r, S).is_empty(), "nothing restored from a file not ours");
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
    fn bad_lines_are_skipped_and_the_others_restored() {
        let path = tmp("badlines");
        let mut text = format!("{MAGIC_LINE}\n# comment\n10.0.0.1 permanent 1 flood\n");
        text.push_str("10.0.0.x 5 1 flood\n"); // 4
        text.push_str("10.0.0.2 permanent 1\n"); // 5
        text.push_str("10.0.0.3 soon 1 flood\n"); // 6
        text.push_str("10.0.0.4 permanent x flood\n"); // 7
        text.push_str("10.0.0.5 permanent 1 angry\n"); // 8
        text.push_str("10.0.0.6 99999999999999999 1 flood\n"); // 9
        text.push_str(&format!("10.0.0.7 permanent 1 flood {}\n", "x".repeat(200))); // 10
        text.push_str("10.0.0.8 permanent 1 flood extra\n"); // 11
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xff10.0.0.9 permanent 1 flood\r\n"); // 12
        bytes.extend_from_slice(b"10.0.0.10 permanent 2 auth\r\n"); // 13, CRLF is fine
        bytes.extend_from_slice(b"10.0.0.11 permanent 3 scanner"); // 14, no final newline
        std::fs::write(&path, bytes).unwrap();
        let r = region();
        let mut n = None;
        let lines = crate::util::log::capture(|| n = Some(load(&r, &path, S)));
        assert_eq!(n.unwrap(), Ok(3));
        let file = path.display().to_string();
        let want: Vec<String> = [
            (4, "bad address"),
            (5, "expected 4 fields (or 5 with \"prefix\")"),
            (6, "bad end time"),
            (7, "bad offence count"),
            (8, "unknown reason"),
            (9, "end time out of range"),
            (10, "line too long"),
            (11, "expected 4 fields (or 5 with \"prefix\")"),
            (12, "not text"),
        ]
        .iter()
        .map(|(n, why)| format!("sipguard: state_file {file}:{n}: {why}; line skipped"))
        .collect();
        let got: Vec<&String> = lines.iter().filter(|l| l.contains("skipped")).collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "{lines:?}");
        let keys: Vec<String> = entries(&r, S).into_iter().map(|e| e.0).collect();
        assert_eq!(keys, ["10.0.0.1", "10.0.0.10", "10.0.0.11"]);
        assert!(path.exists(), "a file with good lines is not moved aside");
    }

    #[test]
    fn many_bad_lines_are_reported_up_to_a_cap() {
        let path = tmp("manybad");
        let mut text = format!("{MAGIC_LINE}\n");
        for _ in 0..150 {
            text.push_str("junk\n");
        }
        text.push_str("10.0.0.1 permanent 1 flood\n");
        std::fs::write(&path, text).unwrap();
        let r = region();
        let mut n = None;
        let lines = crate::util::log::capture(|| n = Some(load(&r, &path, S)));
        assert_eq!(n.unwrap(), Ok(1));
        assert_eq!(
            lines.iter().filter(|l| l.ends_with("; line skipped")).count(),
            100
        );
        assert!(
            lines.iter().any(|l| l.ends_with(": 50 more bad lines skipped")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_file_larger_than_the_table_could_write_is_not_read() {
        let r = region();
        let limit = max_file_bytes(&r);
        // A sparse gigabyte: refused from its size, without reading it.
        let path = tmp("huge");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(1 << 30).unwrap();
        drop(f);
        let t = std::time::Instant::now();
        let e = load(&r, &path, S).unwrap_err();
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            matches!(&e, StateError::Io(m) if m.contains("1073741824 bytes") && m.contains("not read")),
            "{e:?}"
        );
        assert!(!path.exists() && path.with_extension("too-large").exists());
        // Just over the limit, though every line is good: not read either.
        let line = "10.0.0.1 permanent 1 flood\n";
        let mut text = format!("{MAGIC_LINE}\n");
        while (text.len() as u64) <= limit {
            text.push_str(line);
        }
        std::fs::write(&path, &text).unwrap();
        assert!(matches!(load(&r, &path, S), Err(StateError::Io(m)) if m.contains("not read")));
        assert!(entries(&r, S).is_empty());
        // At the limit it is read.
        let mut text = format!("{MAGIC_LINE}\n10.0.0.1 permanent 1 flood\n");
        text.push_str(&"#".repeat(limit as usize - text.len() - 1));
        text.push('\n');
        assert_eq!(text.len() as u64, limit);
        std::fs::write(&path, &text).unwrap();
        let mut n = None;
        let lines = crate::util::log::capture(|| n = Some(load(&r, &path, S)));
        assert_eq!(n.unwrap(), Ok(1));
        assert!(lines.iter().any(|l| l.contains(":3: line too long")), "{lines:?}");
    }

    #[test]
    fn the_limit_fits_a_full_table() {
        // Every slot of both tables banned, with the longest keys: the file
        // a save writes stays under the limit that load accepts.
        let r = crate::flood::region::small_flood(|c| {
            c.ipv6_prefix = 127;
            c.ban_prefix_v6 = 126;
            c.ban_prefix_threshold = 0;
        });
        let path = tmp("full");
        for i in 0..200u32 {
            let _ = r.ban(
                &format!("ffff:ffff:ffff:ffff:ffff:ffff:{:x}:fffe", 0xf000 + i),
                Some(PERMANENT),
                S,
            );
        }
        save(&r, &path, S).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let longest = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::len)
            .max()
            .unwrap();
        assert!(longest < MAX_LINE, "{longest}");
        assert!(len < max_file_bytes(&r), "{len}");
    }
}
