//! Scanner fingerprints: substrings looked for in header values (User-Agent,
//! From, To) that Kamailio's parser has already cut out of the message.
//!
//! Matching is made hard to dodge: ASCII case is ignored, white space is
//! ignored on both sides (a folded `friendly-\r\n scanner` or a tab inside
//! still matches), and the Cyrillic and Greek letters that look like Latin
//! ones are read as those (`friendly-scаnner` with a Cyrillic `а`).

/// Substrings to find in header values, folded, searched all at once by
/// an automaton (Aho-Corasick, made a table of transitions): one table read
/// per byte of a value, however many patterns there are.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// Folded, non-empty, sorted.
    list: Vec<Vec<u8>>,
    /// Column of each folded byte in `next` (0: a byte in no pattern).
    class: [u8; 256],
    /// The same for each byte as it comes: an ASCII byte's folded column,
    /// or [`RAW_WHITE`], or [`RAW_OTHER`] (>= 0x80: `folded_at` decides).
    raw: [u8; 256],
    /// Bytes (as they come) that leave the start state where it is: white
    /// space and ASCII bytes no pattern starts with. Most bytes of a
    /// value are such, and are skipped by a tight loop.
    stays_at_start: [bool; 256],
    /// `next[row + class]`, where a state's row is its number times the
    /// number of columns: the next state's row, or [`FOUND`] once a pattern
    /// ends there.
    next: Vec<u32>,
}

/// The automaton's state after the last byte of a pattern.
const FOUND: u32 = u32::MAX;
/// [`Patterns::raw`] of white space: skipped.
const RAW_WHITE: u8 = 0xfe;
/// [`Patterns::raw`] of a byte >= 0x80.
const RAW_OTHER: u8 = 0xff;
/// Most bytes of all patterns of one list together: the automaton has a
/// state per byte and a row of columns per state (at most 4097 × 227 × 4
/// bytes, made once before the fork).
pub const MAX_PATTERN_BYTES: usize = 4096;

/// One folded byte of `hay` at `i`: (byte, bytes consumed), or None for white
/// space. Look-alike letters (two UTF-8 bytes) fold to their Latin twin.
fn folded_at(hay: &[u8], i: usize) -> (Option<u8>, usize) {
    let b = hay[i];
    if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
        return (None, 1);
    }
    if let Some(&next) = hay.get(i + 1) {
        if let Some(latin) = look_alike(b, next) {
            return (Some(latin), 2);
        }
    }
    (Some(b.to_ascii_lowercase()), 1)
}

/// The Latin letter a two-byte UTF-8 sequence imitates, if any.
fn look_alike(lead: u8, next: u8) -> Option<u8> {
    let c = (u32::from(lead & 0x1f) << 6) | u32::from(next & 0x3f);
    if lead & 0xe0 != 0xc0 || next & 0xc0 != 0x80 {
        return None;
    }
    Some(match c {
        // Cyrillic
        0x0430 | 0x0410 => b'a',
        0x0435 | 0x0415 | 0x0450 | 0x0451 => b'e',
        0x043e | 0x041e => b'o',
        0x0440 | 0x0420 => b'p',
        0x0441 | 0x0421 => b'c',
        0x0443 | 0x0423 => b'y',
        0x0445 | 0x0425 => b'x',
        0x0456 | 0x0406 => b'i',
        0x0458 | 0x0408 => b'j',
        0x0455 | 0x0405 => b's',
        0x043a | 0x041a => b'k',
        0x043c | 0x041c => b'm',
        0x043d | 0x041d => b'h',
        0x0442 | 0x0422 => b't',
        0x0432 | 0x0412 => b'b',
        0x0501 => b'd',
        0x051b => b'q',
        0x051d => b'w',
        // Greek
        0x03b1 | 0x0391 => b'a',
        0x03b5 | 0x0395 => b'e',
        0x03bf | 0x039f => b'o',
        0x03c1 | 0x03a1 => b'p',
        0x03b9 | 0x0399 => b'i',
        0x03ba | 0x039a => b'k',
        0x03bd | 0x039d => b'n',
        0x03c4 | 0x03a4 => b't',
        0x03c5 | 0x03a5 => b'y',
        0x03c7 | 0x03a7 => b'x',
        0x0392 => b'b',
        0x0396 => b'z',
        0x039c => b'm',
        0x0397 => b'h',
        _ => return None,
    })
}

/// `s` folded as values are: no white space, look-alikes read as Latin.
fn fold(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let (b, n) = folded_at(s, i);
        out.extend(b);
        i += n;
    }
    out
}

impl Patterns {
    /// From a comma-separated list; empty items are skipped. Built before
    /// the fork; the request path only reads it.
    pub fn parse(v: &str) -> Result<Patterns, String> {
        let mut list: Vec<Vec<u8>> = v
            .split(',')
            .map(|t| fold(t.as_bytes()))
            .filter(|t| !t.is_empty())
            .collect();
        list.sort();
        list.dedup();
        let bytes: usize = list.iter().map(Vec::len).sum();
        if bytes > MAX_PATTERN_BYTES {
            return Err(format!("{bytes} bytes of patterns, at most {MAX_PATTERN_BYTES}"));
        }
        // Folded bytes are never white space nor upper case: at most 226
        // distinct ones, so a column number fits a byte beside column 0.
        let mut class = [0u8; 256];
        let mut classes = 1;
        for b in list.iter().flatten() {
            if class[usize::from(*b)] == 0 {
                class[usize::from(*b)] = classes as u8;
                classes += 1;
            }
        }
        let (next, _) = Self::automaton(&list, &class, classes);
        let raw = std::array::from_fn(|b| match ASCII_FOLD[b] {
            WHITE => RAW_WHITE,
            NON_ASCII => RAW_OTHER,
            folded => class[usize::from(folded)],
        });
        let stays_at_start = std::array::from_fn(|b| match raw[b] {
            RAW_WHITE => true,
            RAW_OTHER => false,
            c => next[usize::from(c)] == 0,
        });
        Ok(Patterns {
            list,
            class,
            raw,
            stays_at_start,
            next,
        })
    }

    /// The transition table of the patterns' Aho-Corasick automaton, and
    /// its number of states.
    fn automaton(list: &[Vec<u8>], class: &[u8; 256], classes: usize) -> (Vec<u32>, usize) {
        const NONE: usize = usize::MAX;
        // The trie: state 0 is the root.
        let mut go: Vec<Vec<usize>> = vec![vec![NONE; classes]];
        let mut ends = vec![false];
        for p in list {
            let mut s = 0;
            for b in p {
                let c = usize::from(class[usize::from(*b)]);
                if go[s][c] == NONE {
                    go.push(vec![NONE; classes]);
                    ends.push(false);
                    go[s][c] = go.len() - 1;
                }
                s = go[s][c];
            }
            ends[s] = true;
        }
        // Breadth first: each state's missing moves are its fallback's, and
        // a state ends a pattern if its fallback does.
        let mut fail = vec![0usize; go.len()];
        let mut queue = std::collections::VecDeque::new();
        for t in go[0].iter_mut() {
            match *t {
                NONE => *t = 0,
                child => queue.push_back(child),
            }
        }
        while let Some(r) = queue.pop_front() {
            ends[r] |= ends[fail[r]];
            // The fallback is shallower, so its row is complete already.
            let fallback = go[fail[r]].clone();
            for (t, f) in go[r].iter_mut().zip(fallback) {
                match *t {
                    NONE => *t = f,
                    u => {
                        fail[u] = f;
                        queue.push_back(u);
                    }
                }
            }
        }
        let next = go
            .iter()
            .flatten()
            .map(|&t| if ends[t] { FOUND } else { (t * classes) as u32 })
            .collect();
        (next, go.len())
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn contains(&self, pattern: &[u8]) -> bool {
        let p = fold(pattern);
        self.list.contains(&p)
    }

    /// Whether a pattern occurs in `hay`, folded. Runs on every request's
    /// From, To and User-Agent values: an ASCII byte costs two table reads.
    pub fn found_in(&self, hay: &[u8]) -> bool {
        if self.list.is_empty() {
            return false;
        }
        let mut row = 0usize;
        let mut i = 0;
        while i < hay.len() {
            if row == 0 {
                match hay[i..]
                    .iter()
                    .position(|&b| !self.stays_at_start[usize::from(b)])
                {
                    Some(n) => i += n,
                    None => return false,
                }
            }
            let c = self.raw[usize::from(hay[i])];
            let c = if c < RAW_WHITE {
                i += 1;
                c
            } else if c == RAW_WHITE {
                i += 1;
                continue;
            } else {
                let (b, n) = folded_at(hay, i);
                i += n;
                match b {
                    Some(b) => self.class[usize::from(b)],
                    None => continue,
                }
            };
            debug_assert!(row + usize::from(c) < self.next.len());
            // SAFETY: a row is a state's number times the columns, and a
            // column (raw, class) is below the number of columns: the
            // table holds every state's every column (Patterns::parse).
            let t = unsafe { *self.next.get_unchecked(row + usize::from(c)) };
            if t == FOUND {
                return true;
            }
            row = t as usize;
        }
        false
    }
}

/// [`ASCII_FOLD`] of white space: skipped.
const WHITE: u8 = 0x80;
/// [`ASCII_FOLD`] of a byte >= 0x80: [`folded_at`] decides.
const NON_ASCII: u8 = 0x81;

/// Each byte folded as [`folded_at`] folds it when it stands alone: ASCII
/// letters lowered, white space [`WHITE`], bytes >= 0x80 [`NON_ASCII`].
const ASCII_FOLD: [u8; 256] = {
    let mut t = [NON_ASCII; 256];
    let mut b = 0;
    while b < 0x80 {
        t[b] = (b as u8).to_ascii_lowercase();
        b += 1;
    }
    t[b' ' as usize] = WHITE;
    t[b'\t' as usize] = WHITE;
    t[b'\r' as usize] = WHITE;
    t[b'\n' as usize] = WHITE;
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_position_do_not_matter() {
        let pats = Patterns::parse("sipcli, Friendly-Scanner,,").unwrap();
        assert!(pats.found_in(b"UA: SIPCLI/v1.8"));
        assert!(!pats.found_in(b"Yealink sipcl"));
        let long = [vec![b'x'; 600], b"friendly-scanner".to_vec()].concat();
        assert!(pats.found_in(&long));
        assert!(!Patterns::parse("").unwrap().found_in(b"anything"));
        assert!(pats.contains(b"FRIENDLY-SCANNER"));
        // The automaton is bounded: a longer list is refused.
        let many: Vec<String> = (0..MAX_PATTERN_BYTES / 8).map(|i| format!("{i:08}")).collect();
        let many = many.join(",");
        assert!(Patterns::parse(&many).is_ok());
        let err = Patterns::parse(&(many + ",x")).unwrap_err();
        assert!(err.contains("4097 bytes"), "{err}");
    }

    /// Whether `pattern` (folded) starts at byte `i` of `hay`.
    fn matches_at(hay: &[u8], mut i: usize, pattern: &[u8]) -> bool {
        let mut want = pattern.iter();
        let mut next = want.next();
        while let Some(&w) = next {
            if i >= hay.len() {
                return false;
            }
            let (b, n) = folded_at(hay, i);
            i += n;
            match b {
                None => continue,
                Some(b) if b == w => next = want.next(),
                Some(_) => return false,
            }
        }
        true
    }

    /// The plain definition: at each position of `hay` folded with
    /// `folded_at`, each pattern compared in turn.
    fn found_in_by_definition(pats: &Patterns, hay: &[u8]) -> bool {
        let mut i = 0;
        while i < hay.len() {
            let (b, n) = folded_at(hay, i);
            if b.is_some() && pats.list.iter().any(|p| matches_at(hay, i, p)) {
                return true;
            }
            i += n;
        }
        false
    }

    #[test]
    fn the_automaton_agrees_with_the_definition() {
        let pats =
            Patterns::parse("friendly-scanner,sipcli,\"sipvicious\",x\u{00e9}y, a b,abab,bac,aabb,ba c")
                .unwrap();
        // Pieces that make matches, near misses, white space, look-alikes,
        // other UTF-8 and bytes that are not UTF-8.
        let pieces: [&[u8]; 16] = [
            b"friendly-",
            b"scanner",
            b"sip",
            b"cli",
            b"\"",
            b"vicious",
            b" ",
            b"\t\r\n",
            "\u{0430}".as_bytes(),
            "\u{03b1}".as_bytes(),
            "x\u{00e9}".as_bytes(),
            b"y",
            b"\xd0",
            b"A",
            b"B",
            "\u{0455}canner".as_bytes(),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let (mut found, mut missed) = (0, 0);
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut r = seed;
            let mut hay = Vec::new();
            for _ in 0..(r % 9) {
                r = r.rotate_left(5);
                hay.extend_from_slice(pieces[(r % pieces.len() as u64) as usize]);
            }
            let want = found_in_by_definition(&pats, &hay);
            assert_eq!(pats.found_in(&hay), want, "{hay:?}");
            if want {
                found += 1;
            } else {
                missed += 1;
            }
        }
        assert!(found > 100 && missed > 100, "{found} found, {missed} not");
    }

    #[test]
    fn white_space_and_look_alikes_do_not_hide_a_scanner() {
        let pats = Patterns::parse("friendly-scanner").unwrap();
        for ua in [
            &b"friendly-\r\n scanner"[..],
            b"friendly-\tscanner",
            b"friendly - scanner",
            "friendly-sc\u{0430}nner".as_bytes(),
            "fri\u{0435}ndly-sc\u{03b1}nn\u{0435}r".as_bytes(),
            "FRIENDLY-SC\u{0410}NNER".as_bytes(),
        ] {
            assert!(pats.found_in(ua), "{}", String::from_utf8_lossy(ua));
        }
        for ua in [
            &b"friendly-scan"[..],
            b"Yealink SIP-T46S",
            "sc\u{0430}nner".as_bytes(),
        ] {
            assert!(!pats.found_in(ua), "{}", String::from_utf8_lossy(ua));
        }
        // A truncated UTF-8 sequence at the end is no match and no panic.
        assert!(!pats.found_in(b"friendly-sc\xd0"));
    }
}
