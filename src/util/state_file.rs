//! The state files' one load policy (bans, [`crate::flood::state`];
//! suspensions, [`crate::fraud::persist`]): bounded, line by line, a bad
//! line skipped with a warning, a file that is not ours moved aside. Their
//! one writer is [`crate::util::atomic_file`].

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;

/// Bad lines reported one by one; past this, one summary line.
const MAX_REPORTED: usize = 100;

#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    Io(String),
    Corrupt(String),
}

/// How reading one line went.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The line is in the buffer (without its newline or a final CR).
    Read,
    /// Longer than the limit: skipped without being stored.
    TooLong,
    End,
}

/// Read one line into `out` (cleared first), never holding more than
/// `max` bytes of it (and a CR).
fn read_bounded_line(r: &mut impl BufRead, out: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    out.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if !too_long && out.len() + chunk.len() <= max + 1 {
            out.extend_from_slice(chunk);
        } else {
            too_long = true;
            out.clear();
        }
        r.consume(used);
        if done {
            break;
        }
    }
    if out.last() == Some(&b'\r') {
        out.pop();
    }
    Ok(match (any, too_long || out.len() > max) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Read,
    })
}

/// Move a file we refuse out of the way of the next save.
fn move_aside(path: &Path, ext: &str) -> String {
    let aside = path.with_extension(ext);
    match std::fs::rename(path, &aside) {
        Ok(()) => format!("moved to {}", aside.display()),
        Err(e) => format!("could not move it aside: {e}"),
    }
}

/// A state file's format, for [`read_lines`].
pub struct Format<'a> {
    /// The first line; a file that does not start with it is not ours.
    pub magic: &'a str,
    /// Longer than any line a save writes.
    pub max_line: usize,
    /// The most bytes a save can write; a larger file is not read.
    pub max_bytes: u64,
    /// What wrote the file, for the oversize message ("a table of N entries").
    pub table: &'a dyn std::fmt::Display,
}

/// The one corruption policy of both state files (bans and suspensions).
///
/// A missing file is empty: Ok(()) with no line seen. A file larger than
/// `max_bytes` is not read (checked before reading, and the reading is
/// bounded by it too) and moved aside to `<path>.too-large`. A file whose
/// first line is not `magic` is refused whole and moved aside to
/// `<path>.corrupt` (it is not a state file; the next save would erase
/// what an operator may want from it). Blank and `#` lines are skipped.
/// Every other line goes to `line` with its number; a line that is too
/// long, not UTF-8, or that `line` rejects is skipped with a warning
/// `<path>:<n>: <why>; line skipped` passed to `warn` (the first
/// [`MAX_REPORTED`], then one `<path>: <k> more bad lines skipped`).
pub fn read_lines(
    path: &Path,
    format: &Format<'_>,
    mut line: impl FnMut(usize, &str) -> Result<(), Cow<'static, str>>,
    mut warn: impl FnMut(String),
) -> Result<(), StateError> {
    let io = |e: std::io::Error| StateError::Io(format!("{}: {e}", path.display()));
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(StateError::Io(format!("{}: not a regular file", path.display())));
    }
    let limit = format.max_bytes;
    if meta.len() > limit {
        let moved = move_aside(path, "too-large");
        return Err(StateError::Io(format!(
            "{}: {} bytes, more than {} can have saved ({limit} bytes); not read ({moved})",
            path.display(),
            meta.len(),
            format.table
        )));
    }
    let mut reader = BufReader::new(file.take(limit));
    let mut buf = Vec::with_capacity(format.max_line + 1);
    let first = read_bounded_line(&mut reader, &mut buf, format.max_line).map_err(io)?;
    if first != Line::Read || buf != format.magic.as_bytes() {
        drop(reader);
        let moved = move_aside(path, "corrupt");
        return Err(StateError::Corrupt(format!(
            "{}: line 1: expected \"{}\" ({moved})",
            path.display(),
            format.magic
        )));
    }
    let file = path.display();
    let mut bad = 0usize;
    for n in 2.. {
        let res = match read_bounded_line(&mut reader, &mut buf, format.max_line).map_err(io)? {
            Line::End => break,
            Line::TooLong => Err("line too long".into()),
            Line::Read => match std::str::from_utf8(&buf) {
                Err(_) => Err("not text".into()),
                Ok(l) => {
                    let l = l.trim();
                    if l.is_empty() || l.starts_with('#') {
                        continue;
                    }
                    line(n, l)
                }
            },
        };
        if let Err(why) = res {
            bad += 1;
            if bad <= MAX_REPORTED {
                warn(format!("{file}:{n}: {why}; line skipped"));
            }
        }
    }
    if bad > MAX_REPORTED {
        warn(format!("{file}: {} more bad lines skipped", bad - MAX_REPORTED));
    }
    Ok(())
}
