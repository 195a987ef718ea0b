//! The blocklist file: one IPv4 or IPv6 address or CIDR a line, as feeds
//! give them (not the `permissions` module's `group address mask ...`
//! lines), `#` starts a comment, blank lines ignored. Read whole (bounded:
//! line length, entry count) before anything is published, so a bad line
//! changes nothing.

use crate::sip::addr::Cidr;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Longest line read (an IPv6 CIDR with a comment fits easily).
const MAX_LINE: usize = 512;

/// One network: its first address (IPv4 in the mapped range) and prefix
/// length over 128 bits (an IPv4 /24 is 120).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Net {
    pub bits: u128,
    pub len: u8,
}

impl Net {
    /// The network of `text` (an address or CIDR); host bits are masked.
    pub fn parse(text: &str) -> Result<Net, &'static str> {
        let c = Cidr::parse(text)?;
        Ok(Net {
            bits: c.network(),
            len: c.prefix_len(),
        })
    }
}

/// Every network of the file at `path`, in file order (duplicates kept),
/// or `<file>:<line>: <why>`; more than `max` networks is refused.
pub fn load(path: &Path, max: usize) -> Result<Vec<Net>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(BufReader::new(f), max).map_err(|(line, why)| match line {
        0 => format!("{}: {why}", path.display()),
        n => format!("{}:{n}: {why}", path.display()),
    })
}

/// The networks of `r`, or (line number, why); line 0: the whole file.
pub fn parse(mut r: impl BufRead, max: usize) -> Result<Vec<Net>, (usize, String)> {
    let mut nets = Vec::new();
    let mut buf = Vec::with_capacity(MAX_LINE + 1);
    let mut line = 0;
    loop {
        buf.clear();
        line += 1;
        let n = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| (0, e.to_string()))?;
        if n == 0 {
            return Ok(nets);
        }
        if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
            return Err((line, format!("line longer than {MAX_LINE} bytes")));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| (line, "not UTF-8".to_string()))?;
        let text = text.split('#').next().unwrap_or_default().trim();
        if text.is_empty() {
            continue;
        }
        if nets.len() == max {
            return Err((
                line,
                format!("more than blocklist_max ({max}) entries: raise blocklist_max or shorten the list"),
            ));
        }
        let net = Net::parse(text).map_err(|why| (line, format!("\"{}\": {why}", text.escape_debug())))?;
        nets.push(net);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_cidrs_comments_and_blank_lines() {
        let text =
            "# APIBAN\n192.0.2.1\n\n198.51.100.0/24  # a network\r\n2001:db8::/32\n  ::1 \n10.1.2.3/8\n";
        let nets = parse(text.as_bytes(), 10).unwrap();
        assert_eq!(nets.len(), 5);
        assert_eq!(nets[0], Net::parse("192.0.2.1/32").unwrap());
        assert_eq!(nets[1].len, 120);
        assert_eq!(nets[2].len, 32);
        assert_eq!(nets[3].len, 128);
        // host bits masked
        assert_eq!(nets[4], Net::parse("10.0.0.0/8").unwrap());
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let e = parse("192.0.2.1\n# ok\n192.0.2.300\n".as_bytes(), 10).unwrap_err();
        assert_eq!(e.0, 3);
        assert!(e.1.contains("192.0.2.300"), "{}", e.1);
        assert_eq!(parse("10.0.0.0/33\n".as_bytes(), 10).unwrap_err().0, 1);
        assert_eq!(parse("::1/129\n".as_bytes(), 10).unwrap_err().0, 1);
        let long = format!("{}\n", "1".repeat(600));
        assert!(parse(long.as_bytes(), 10).unwrap_err().1.contains("longer"));
    }

    #[test]
    fn more_entries_than_the_maximum_is_refused() {
        let text = "192.0.2.1\n192.0.2.2\n# c\n192.0.2.3\n";
        assert_eq!(parse(text.as_bytes(), 3).unwrap().len(), 3);
        let e = parse(text.as_bytes(), 2).unwrap_err();
        assert_eq!(e.0, 4);
        assert!(e.1.contains("blocklist_max (2)"), "{}", e.1);
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("sipguard-bl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("list.txt");
        std::fs::write(&p, "192.0.2.1\nnonsense\n").unwrap();
        let e = load(&p, 10).unwrap_err();
        assert!(
            e.ends_with("list.txt:2: \"nonsense\": not an IPv4 or IPv6 address"),
            "{e}"
        );
        let e = load(&dir.join("missing.txt"), 10).unwrap_err();
        assert!(e.contains("missing.txt"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
