//! The body of a sipguard DMQ message: versioned text, one change a line,
//! at most [`MAX_BODY`] bytes (a batch that does not fit is split).
//!
//! ```text
//! sipguard-cluster/1 changes
//! B 192.0.2.7 1795000000000 2 1 1794999700000123
//! B 198.51.100.0/24 permanent 1 4 1794999700000456 prefix
//! U 192.0.2.7 1794999800000789
//! ```
//!
//! `B key until_unix_ms|permanent offences reason_code ts_us [prefix]` is a
//! ban, `U key ts_us [prefix]` an unban; `prefix` marks a network of the
//! prefix table. Names travel in hex (a SIP user name may hold any byte):
//! `T name until_unix_ms failures ts_us` throttles a user name, `t name
//! ts_us` lifts it; `S name reason_code since_unix_ms ts_us` suspends an
//! account, `s name ts_us` lifts it. `N which name value ts_us` is the
//! sending node's own count `which` for a name (1: authentication failures
//! of a user name within `user_findtime`). The first line's word says what the message is: `changes`
//! (a batch of changes made on the sending node), `sync` (a request for
//! the current state, no lines), `snapshot N last|more` (chunk N of the
//! answer to a sync). An unknown version or word is refused whole; a bad
//! line is refused whole too (peers run the same code: a bad line means a
//! message that is not ours).

use super::change::{Change, Kind, NAME_MAX, PERMANENT_MS};
use crate::sip::addr::Key;
use std::fmt::Write as _;

/// Largest body: DMQ carries it in one SIP request over UDP or TCP; 60 KB
/// keeps it under the 64 KB of a UDP datagram with the headers.
pub const MAX_BODY: usize = 60_000;

const MAGIC: &str = "sipguard-cluster/1";

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Changes,
    Sync,
    /// Chunk of a snapshot; `last`: the final one.
    Snapshot {
        index: u32,
        last: bool,
    },
}

fn header(m: Message) -> String {
    match m {
        Message::Changes => format!("{MAGIC} changes\n"),
        Message::Sync => format!("{MAGIC} sync\n"),
        Message::Snapshot { index, last } => {
            format!(
                "{MAGIC} snapshot {index} {}\n",
                if last { "last" } else { "more" }
            )
        }
    }
}

/// The body of a sync request.
pub fn sync_request() -> String {
    header(Message::Sync)
}

fn line(c: &Change) -> String {
    let mut s = String::with_capacity(96);
    let prefix = if c.prefix { " prefix" } else { "" };
    let _ = match c.kind {
        Kind::Ban => {
            let _ = write!(s, "B {} ", c.key);
            if c.until_ms == PERMANENT_MS {
                s.push_str("permanent");
            } else {
                let _ = write!(s, "{}", c.until_ms);
            }
            writeln!(s, " {} {} {}{prefix}", c.offences, c.reason, c.ts_us)
        }
        Kind::Unban => writeln!(s, "U {} {}{prefix}", c.key, c.ts_us),
        Kind::Throttle => writeln!(s, "T {} {} {} {}", Hex(c.name()), c.until_ms, c.offences, c.ts_us),
        Kind::Unthrottle => writeln!(s, "t {} {}", Hex(c.name()), c.ts_us),
        Kind::Suspend => writeln!(s, "S {} {} {} {}", Hex(c.name()), c.reason, c.until_ms, c.ts_us),
        Kind::Unsuspend => writeln!(s, "s {} {}", Hex(c.name()), c.ts_us),
        Kind::Count => writeln!(s, "N {} {} {} {}", c.reason, Hex(c.name()), c.offences, c.ts_us),
    };
    s
}

struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > 2 * NAME_MAX {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `changes` as message bodies of at most `max` bytes each (at least one
/// line each); `snapshot`: numbered snapshot chunks, the last one marked
/// (an empty snapshot is one empty chunk), else `changes` messages.
pub fn encode(changes: &[Change], snapshot: bool, max: usize) -> Vec<String> {
    let head = |index: u32, last: bool| {
        header(if snapshot {
            Message::Snapshot { index, last }
        } else {
            Message::Changes
        })
    };
    let mut bodies: Vec<String> = Vec::new();
    let mut cur = head(0, false);
    let mut lines = 0;
    for c in changes {
        let l = line(c);
        if lines > 0 && cur.len() + l.len() > max {
            bodies.push(std::mem::replace(&mut cur, head(bodies.len() as u32 + 1, false)));
            lines = 0;
        }
        cur.push_str(&l);
        lines += 1;
    }
    if lines > 0 || snapshot {
        bodies.push(cur);
    }
    if snapshot {
        // Only the last chunk says so; rewrite its header.
        let n = bodies.len() as u32 - 1;
        if let Some(b) = bodies.last_mut() {
            let rest = b.split_once('\n').map(|x| x.1.to_string()).unwrap_or_default();
            *b = head(n, true) + &rest;
        }
    }
    bodies
}

/// A body: what it is and its changes, or why it is refused.
pub fn decode(body: &[u8]) -> Result<(Message, Vec<Change>), String> {
    if body.len() > MAX_BODY + 1024 {
        return Err(format!("body of {} bytes is too large", body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let mut f = first.split_ascii_whitespace();
    if f.next() != Some(MAGIC) {
        return Err(format!("not a {MAGIC} body"));
    }
    let message = match (f.next(), f.next(), f.next(), f.next()) {
        (Some("changes"), None, _, _) => Message::Changes,
        (Some("sync"), None, _, _) => Message::Sync,
        (Some("snapshot"), Some(i), Some(l @ ("last" | "more")), None) => Message::Snapshot {
            index: i.parse().map_err(|_| "bad snapshot index".to_string())?,
            last: l == "last",
        },
        _ => return Err(format!("unknown message \"{first}\"")),
    };
    let mut changes = Vec::new();
    for (n, l) in lines.enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        changes.push(parse_line(l).map_err(|e| format!("line {}: {e}", n + 2))?);
    }
    Ok((message, changes))
}

fn parse_key(text: &str) -> Option<Key> {
    if text.contains('/') {
        Key::parse_network(text)
    } else {
        Key::parse(text, 128)
    }
}

fn parse_line(l: &str) -> Result<Change, &'static str> {
    let f: Vec<&str> = l.split_ascii_whitespace().collect();
    let (fixed, prefix) = match f.last() {
        Some(&"prefix") => (&f[..f.len() - 1], true),
        _ => (&f[..], false),
    };
    let num = |s: &str| s.parse::<u64>().map_err(|_| "bad number");
    let u32_of = |s: &str| num(s).map(|v| v.min(u32::MAX as u64) as u32);
    let key = |s: &str| parse_key(s).ok_or("bad address");
    let name = |s: &str| parse_hex(s).ok_or("bad name");
    let c = match fixed {
        ["B", k, until, offences, reason, ts] => Change {
            until_ms: if *until == "permanent" {
                PERMANENT_MS
            } else {
                num(until)?
            },
            offences: u32_of(offences)?,
            reason: u32_of(reason)?,
            ts_us: num(ts)?,
            ..Change::of_key(Kind::Ban, key(k)?, prefix)
        },
        ["U", k, ts] => Change {
            ts_us: num(ts)?,
            ..Change::of_key(Kind::Unban, key(k)?, prefix)
        },
        ["T", n, until, failures, ts] if !prefix => Change {
            until_ms: num(until)?,
            offences: u32_of(failures)?,
            ts_us: num(ts)?,
            ..Change::of_name(Kind::Throttle, &name(n)?)
        },
        ["t", n, ts] if !prefix => Change {
            ts_us: num(ts)?,
            ..Change::of_name(Kind::Unthrottle, &name(n)?)
        },
        ["S", n, reason, since, ts] if !prefix => Change {
            reason: u32_of(reason)?,
            until_ms: num(since)?,
            ts_us: num(ts)?,
            ..Change::of_name(Kind::Suspend, &name(n)?)
        },
        ["s", n, ts] if !prefix => Change {
            ts_us: num(ts)?,
            ..Change::of_name(Kind::Unsuspend, &name(n)?)
        },
        ["N", which, n, value, ts] if !prefix => Change {
            reason: u32_of(which)?,
            offences: u32_of(value)?,
            ts_us: num(ts)?,
            ..Change::of_name(Kind::Count, &name(n)?)
        },
        _ => return Err("expected a B, U, T, t, S, s or N line"),
    };
    Ok(c)
}
