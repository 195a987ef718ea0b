//! `cargo fuzz run fraud_state_file`: the suspension state file
//! (`fraud_state_file`, src/fraud/persist.rs) read from arbitrary bytes,
//! written to a file and loaded by `persist::load` into a fresh account
//! table (8 or 64 accounts, by the input's length).
//!
//! Properties, checked against a small model of the format written here
//! (magic line, version 1 or 2, then `account reason since_unix_ms`, names
//! percent-encoded; version 2 also has `baseline` lines of 7 fields, which
//! a table without baselines reads and leaves):
//! - a file whose first line is not the magic line is refused and moved
//!   aside to `<file>.corrupt` unchanged, with nothing restored;
//! - otherwise it loads: one `file:line: why; line skipped` warning per bad
//!   line (too long, not text, wrong fields, bad name, reason or time), in
//!   order, the first 100 of them, then one "N more"; every good line is restored or handed back as
//!   unrestored (its bucket full), never both, never lost; the table plus
//!   the unrestored lines are the good lines, the last of a name winning;
//! - saved with the unrestored lines carried (`persist::save`), the file
//!   has only good lines and loaded into another table gives the same.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use libfuzzer_sys::fuzz_target;
use sipguard::fraud::accounts::{Accounts, Reason, Thresholds, NAME_BYTES};
use sipguard::fraud::persist::{load, save, Saved};
use std::collections::BTreeMap;

const MAGIC_V1: &[u8] = b"# sipguard accounts v1";
const MAGIC: &[u8] = b"# sipguard accounts v2";
/// Longest line the reader takes (without its newline and a final CR), by version.
const MAX_LINE_V1: usize = 256;
const MAX_LINE: usize = 4096;
/// Baseline lines: destinations and hours at most.
const DEST_SLOTS: usize = 16;
const HOURS: usize = 168;
const CLASSES: [&str; 12] = [
    "domestic", "mobile", "international", "premium", "high-risk", "toll-free", "shared-cost", "uan",
    "voip", "personal", "satellite", "fixed",
];
/// Bad lines warned about one by one.
const MAX_REPORTED: usize = 100;
const NOW: u64 = 7 * 86_400 * 1_000_000_000;

/// The format's own decoding, written independently: `%` and two hex
/// digits is a byte, anything else itself.
///
/// Also accepted, as the reader does (it reads the two characters with
/// `u8::from_str_radix`, which takes a sign): `%+` and one hex digit. The
/// saver never writes that; harmless, reported, modelled rather than
/// failed on.
fn decode(s: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = match *s.get(i + 1)? {
                b'+' => 0,
                b => hex(b)?,
            };
            let lo = hex(*s.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

enum Line {
    Blank,
    Bad,
    Good(Saved),
}

/// A version 2 baseline line's fields after `baseline` (written here from
/// the format: name, first hour, hour, hour's spend, `day:cc:class,...` or
/// `-`, `hour:money,...` or `-`).
fn baseline_ok(f: &[&str]) -> bool {
    let [name, first, hour, spent, dests, spend] = f else {
        return false;
    };
    let list = |s: &str, max: usize, item: &dyn Fn(&str) -> bool| {
        s == "-" || (s.split(',').count() <= max && s.split(',').all(item))
    };
    decode(name.as_bytes()).is_some_and(|n| !n.is_empty() && n.len() <= NAME_BYTES)
        && first.parse::<u32>().is_ok()
        && hour.parse::<u32>().is_ok()
        && spent.parse::<u64>().is_ok()
        && list(dests, DEST_SLOTS, &|d| {
            let p: Vec<&str> = d.split(':').collect();
            matches!(p[..], [day, cc, class] if day.parse::<u32>().is_ok()
                && cc.parse::<u16>().is_ok() && CLASSES.contains(&class))
        })
        && list(spend, HOURS, &|h| {
            h.split_once(':').is_some_and(|(i, v)| {
                i.parse::<usize>().is_ok_and(|i| i < HOURS) && v.parse::<u32>().is_ok()
            })
        })
}

fn model_line(line: &[u8], v2: bool) -> Line {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > if v2 { MAX_LINE } else { MAX_LINE_V1 } {
        return Line::Bad;
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Line::Bad;
    };
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Blank;
    }
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if v2 && line.starts_with("baseline ") && f.len() != 3 {
        // No baseline table here: a good line is read and left.
        return if baseline_ok(&f[1..]) { Line::Blank } else { Line::Bad };
    }
    let [name, reason, since] = f[..] else {
        return Line::Bad;
    };
    match (
        // an account name is 1..NAME_BYTES bytes, as the script functions take it
        decode(name.as_bytes()).filter(|n| !n.is_empty() && n.len() <= NAME_BYTES),
        Reason::from_name(reason),
        since.parse::<u64>(),
    ) {
        (Some(n), Some(r), Ok(s)) => Line::Good((n, r, s)),
        _ => Line::Bad,
    }
}

struct Model {
    magic: bool,
    /// Line numbers (1-based) of the bad lines.
    bad: Vec<usize>,
    good: Vec<Saved>,
}

fn model(bytes: &[u8]) -> Model {
    let mut lines = bytes.split(|&b| b == b'\n');
    let first = lines.next().map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let v2 = first == Some(MAGIC);
    let mut m = Model {
        magic: v2 || first == Some(MAGIC_V1),
        bad: Vec::new(),
        good: Vec::new(),
    };
    for (n, line) in lines.enumerate() {
        match model_line(line, v2) {
            Line::Blank => {}
            Line::Bad => m.bad.push(n + 2),
            Line::Good(s) => m.good.push(s),
        }
    }
    m
}

/// Suspended accounts in the table.
fn table(a: &Accounts) -> BTreeMap<Vec<u8>, (Reason, u64)> {
    let mut t = BTreeMap::new();
    let skipped = a.list(NOW, |i| {
        let r = i.suspended.expect("only restored suspensions are in the table");
        assert!(
            t.insert(i.name, (r, i.since_wall_ms)).is_none(),
            "a name twice in the table"
        );
        true
    });
    assert_eq!(skipped, 0, "no other process holds a bucket");
    t
}

/// Lines in order, the last of a name winning.
fn last_wins<'a>(lines: impl IntoIterator<Item = &'a Saved>) -> BTreeMap<Vec<u8>, (Reason, u64)> {
    lines.into_iter().map(|(n, r, s)| (n.clone(), (*r, *s))).collect()
}

/// Table and unrestored lines: names apart, together the wanted map.
fn check(a: &Accounts, unrestored: &[Saved], want: &BTreeMap<Vec<u8>, (Reason, u64)>, what: &str) {
    let t = table(a);
    for (n, _, _) in unrestored {
        assert!(!t.contains_key(n), "{what}: {n:?} both restored and unrestored");
    }
    let mut all = t;
    all.extend(last_wins(unrestored));
    assert_eq!(&all, want, "{what}: table and unrestored lines are not the file");
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch::dir("accounts");
    let entries = if data.len() % 2 == 0 { 64 } else { 8 };
    let a = Accounts::create(entries, Thresholds::default()).expect("account table");
    let path = dir.join("accounts.state");
    std::fs::write(&path, data).expect("write the state file");
    let m = model(data);
    let loaded = load(&a, &path, NOW);
    let loaded = match loaded {
        Err(why) => {
            assert!(!m.magic, "a file of ours refused: {why}");
            assert!(why.contains("line 1"), "{why}");
            assert!(table(&a).is_empty(), "a refused file restored something");
            assert!(!path.exists(), "a refused file is moved aside");
            assert_eq!(
                std::fs::read(path.with_extension("corrupt")).expect("the .corrupt copy"),
                data
            );
            scratch::clean(dir);
            return;
        }
        Ok(l) => l,
    };
    assert!(m.magic, "a file without the magic line accepted");
    assert_eq!(
        std::fs::read(&path).ok().as_deref(),
        Some(data),
        "a loaded file stays"
    );
    let file = path.display().to_string();
    let named = m.bad.len().min(MAX_REPORTED);
    let summary = m.bad.len() > MAX_REPORTED;
    assert_eq!(
        loaded.warnings.len(),
        named + usize::from(summary),
        "one warning per bad line, the first {MAX_REPORTED}: {:?}",
        loaded.warnings
    );
    for (w, n) in loaded.warnings.iter().zip(&m.bad[..named]) {
        let head = format!("{file}:{n}: ");
        assert!(w.starts_with(&head) && w.ends_with("; line skipped"), "{w}");
    }
    if summary {
        let more = format!("{file}: {} more bad lines skipped", m.bad.len() - MAX_REPORTED);
        assert_eq!(loaded.warnings.last(), Some(&more));
    }
    assert_eq!(
        loaded.restored + loaded.unrestored.len(),
        m.good.len(),
        "every good line restored or handed back"
    );
    let want = last_wins(&m.good);
    check(&a, &loaded.unrestored, &want, "load");

    // Saved with the unrestored lines carried, and loaded again.
    let path2 = dir.join("accounts2.state");
    let written = save(&a, &path2, NOW, &loaded.unrestored).expect("save");
    assert_eq!(written, table(&a).len() + loaded.unrestored.len());
    let text = std::fs::read(&path2).expect("the saved file");
    assert!(text.starts_with(MAGIC), "the saver writes version 2");
    let saved = model(&text);
    assert!(
        saved.magic && saved.bad.is_empty(),
        "the saver writes only good lines"
    );
    assert_eq!(saved.good.len(), written);
    assert_eq!(
        last_wins(&saved.good),
        want,
        "the saved file says what was loaded"
    );
    let b = Accounts::create(entries, Thresholds::default()).expect("account table");
    let again = load(&b, &path2, NOW).expect("a saved file loads");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    check(&b, &again.unrestored, &want, "reload");
    scratch::clean(dir);
});
