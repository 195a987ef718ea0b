//! Just enough SIP syntax for the guessing defences: header lines of a
//! message Kamailio is about to send, and the parts of header values they
//! need (URI user and host, tags, CSeq, the digest user name). Nothing here
//! allocates; everything borrows from the message.

use std::ops::Range;

/// The headers the reply rewrite and the transaction key care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hdr {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Server,
    /// WWW-Authenticate or Proxy-Authenticate.
    Challenge,
    Other,
}

impl Hdr {
    pub fn of(name: &[u8]) -> Hdr {
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        if is("via") || is("v") {
            Hdr::Via
        } else if is("from") || is("f") {
            Hdr::From
        } else if is("to") || is("t") {
            Hdr::To
        } else if is("call-id") || is("i") {
            Hdr::CallId
        } else if is("cseq") {
            Hdr::CSeq
        } else if is("server") {
            Hdr::Server
        } else if is("www-authenticate") || is("proxy-authenticate") {
            Hdr::Challenge
        } else {
            Hdr::Other
        }
    }
}

/// One header: its kind, trimmed value, and the byte range of the whole
/// line(s) including the line end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub hdr: Hdr,
    pub value: &'a [u8],
    pub line: Range<usize>,
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// End of the line starting at `at` (index past its LF, or the buffer end).
fn line_end(buf: &[u8], at: usize) -> usize {
    buf[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(buf.len(), |p| at + p + 1)
}

/// Iterates the header fields of a message (after its first line), joining
/// folded lines, stopping at the empty line. `end()` is where the body
/// separator starts.
pub struct Headers<'a> {
    buf: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Headers<'a> {
    pub fn new(buf: &'a [u8]) -> Headers<'a> {
        let at = line_end(buf, 0);
        Headers { buf, at, done: false }
    }
    /// Start of the empty line ending the header (after iteration).
    pub fn end(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.done || self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        let mut end = line_end(self.buf, start);
        if trim(&self.buf[start..end]).is_empty() {
            self.done = true;
            return None;
        }
        while end < self.buf.len() && matches!(self.buf[end], b' ' | b'\t') {
            end = line_end(self.buf, end);
        }
        self.at = end;
        let line = &self.buf[start..end];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Not a header: stop rather than guess.
            self.done = true;
            return None;
        };
        Some(Header {
            hdr: Hdr::of(trim(&line[..colon])),
            value: trim(&line[colon + 1..]),
            line: start..end,
        })
    }
}

/// "SIP/2.0 404 Not Found" → 404.
pub fn status_code(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    Some(digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
}

/// The URI inside a From/To value (between < > when present).
fn uri_of(value: &[u8]) -> &[u8] {
    if let Some(lt) = value.iter().position(|&b| b == b'<') {
        let rest = &value[lt + 1..];
        let gt = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
        &rest[..gt]
    } else {
        // addr-spec: header parameters follow the first ';'.
        let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
        trim(&value[..end])
    }
}

/// (user, host) of a SIP/SIPS/TEL URI; user empty when absent.
pub fn uri_user_host(uri: &[u8]) -> (&[u8], &[u8]) {
    let colon = uri.iter().position(|&b| b == b':');
    let rest = colon.map_or(uri, |c| &uri[c + 1..]);
    let stop = |b: &u8| matches!(b, b';' | b'?' | b'>');
    let hier = &rest[..rest.iter().position(stop).unwrap_or(rest.len())];
    let (user, host) = match hier.iter().rposition(|&b| b == b'@') {
        Some(at) => (&hier[..at], &hier[at + 1..]),
        None => (&[][..], hier),
    };
    let user = &user[..user.iter().position(|&b| b == b':').unwrap_or(user.len())];
    let host = if host.first() == Some(&b'[') {
        &host[..host.iter().position(|&b| b == b']').map_or(host.len(), |p| p + 1)]
    } else {
        &host[..host.iter().position(|&b| b == b':').unwrap_or(host.len())]
    };
    (user, host)
}

/// (user, host) of the URI of a From/To value.
pub fn name_addr_user_host(value: &[u8]) -> (&[u8], &[u8]) {
    uri_user_host(uri_of(value))
}

/// A header parameter (e.g. `tag`) of a From/To value: after the URI.
pub fn header_param<'a>(value: &'a [u8], name: &str) -> &'a [u8] {
    let after = match value.iter().position(|&b| b == b'<') {
        Some(lt) => {
            let gt = value[lt..]
                .iter()
                .position(|&b| b == b'>')
                .map_or(value.len(), |p| lt + p + 1);
            &value[gt..]
        }
        None => &value[value.iter().position(|&b| b == b';').unwrap_or(value.len())..],
    };
    for p in after.split(|&b| b == b';') {
        let (k, v) = match p.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&p[..eq]), trim(&p[eq + 1..])),
            None => (trim(p), &[][..]),
        };
        if k.eq_ignore_ascii_case(name.as_bytes()) {
            return v;
        }
    }
    &[]
}

/// Whether a digest challenge says `stale=true`: the credentials were right
/// and only the nonce was old, so it is no failed guess.
pub fn challenge_is_stale(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|p| {
        let p = trim(p);
        let p = p
            .get(..6)
            .filter(|h| h.eq_ignore_ascii_case(b"digest"))
            .map_or(p, |_| trim(&p[6..]));
        match p.iter().position(|&b| b == b'=') {
            Some(eq) => {
                trim(&p[..eq]).eq_ignore_ascii_case(b"stale")
                    && unquote(trim(&p[eq + 1..])).eq_ignore_ascii_case(b"true")
            }
            None => false,
        }
    })
}

fn unquote(v: &[u8]) -> &[u8] {
    v.strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v)
}

/// "1 REGISTER" → ("1", "REGISTER").
pub fn cseq_parts(value: &[u8]) -> (&[u8], &[u8]) {
    let v = trim(value);
    let sp = v.iter().position(u8::is_ascii_whitespace).unwrap_or(v.len());
    (&v[..sp], trim(&v[sp..]))
}

/// The user name Digest credentials are checked for (unquoted), empty when
/// absent.
pub fn digest_username(credentials: &[u8]) -> &[u8] {
    let v = trim(credentials);
    let Some(params) = v
        .get(6..)
        .filter(|_| v[..6.min(v.len())].eq_ignore_ascii_case(b"digest"))
    else {
        return &[];
    };
    // The last `username` wins, as in Kamailio's parser.
    let mut username: &[u8] = &[];
    let mut rest = params;
    while !rest.is_empty() {
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            break;
        };
        let key = trim(&rest[..eq]);
        let key = key.strip_prefix(b",").map(trim).unwrap_or(key);
        let after = trim(&rest[eq + 1..]);
        let (value, next) = if let Some(q) = after.strip_prefix(b"\"") {
            let close = q.iter().position(|&b| b == b'"').unwrap_or(q.len());
            (&q[..close], &q[(close + 1).min(q.len())..])
        } else {
            let comma = after.iter().position(|&b| b == b',').unwrap_or(after.len());
            (trim(&after[..comma]), &after[comma..])
        };
        if key.eq_ignore_ascii_case(b"username") {
            username = value;
        }
        rest = next.strip_prefix(b",").unwrap_or(next);
    }
    digest_user_part(username)
}

/// The user part of a digest user name, as Kamailio's digest parser (and so
/// `$au` and the auth module) takes it: cut at the first `@`, then after the
/// first `:` (`sip:1001@example.org` → `1001`); names of 2 bytes or less as is.
fn digest_user_part(whole: &[u8]) -> &[u8] {
    if whole.len() <= 2 {
        return whole;
    }
    let user = &whole[..whole.iter().position(|&b| b == b'@').unwrap_or(whole.len())];
    match user.iter().position(|&b| b == b':') {
        Some(c) => &user[c + 1..],
        None => user,
    }
}

/// Case-insensitive substring test; `needle` is lower case.
pub fn contains_lower(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    if hay.len() < needle.len() {
        return false;
    }
    // Only positions whose first byte matches are compared further.
    (0..=hay.len() - needle.len()).any(|i| {
        hay[i].to_ascii_lowercase() == first
            && hay[i + 1..i + needle.len()]
                .iter()
                .zip(rest)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// Substrings to find in header values, ignoring ASCII case. One pass
/// over the value: patterns are sorted and indexed by their first byte, so
/// a position is compared only with the patterns that start with its byte.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// Range of `list` starting with each byte (start == end: none).
    by_first: [(u16, u16); 256],
    /// Lower case, non-empty, sorted.
    list: Vec<Vec<u8>>,
}

impl Patterns {
    /// From a comma-separated list; empty items are skipped.
    pub fn parse(v: &str) -> Patterns {
        let mut list: Vec<Vec<u8>> = v
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.to_ascii_lowercase().into_bytes())
            .take(u16::MAX as usize)
            .collect();
        list.sort();
        let mut by_first = [(0u16, 0u16); 256];
        for (i, p) in list.iter().enumerate() {
            let r = &mut by_first[usize::from(p[0])];
            if r.0 == r.1 {
                r.0 = i as u16;
            }
            r.1 = i as u16 + 1;
        }
        Patterns { by_first, list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn contains(&self, pattern: &[u8]) -> bool {
        self.list.iter().any(|p| p == pattern)
    }

    pub fn found_in(&self, hay: &[u8]) -> bool {
        (0..hay.len()).any(|i| {
            let (from, to) = self.by_first[usize::from(hay[i].to_ascii_lowercase())];
            self.list[usize::from(from)..usize::from(to)]
                .iter()
                .any(|p| hay.get(i..i + p.len()).is_some_and(|w| w.eq_ignore_ascii_case(p)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &[u8] = b"SIP/2.0 404 Not Found\r\n\
        Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1;rport=5070\r\n\
        From: \"1001\" <sip:1001@example.org>;tag=abc\r\n\
        To: <sip:1001@example.org>;tag=xyz.12\r\n\
        Call-ID: c1@h\r\n\
        CSeq: 7 REGISTER\r\n\
        Server: kamailio\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn reads_a_reply() {
        assert_eq!(status_code(REPLY), Some(404));
        assert_eq!(status_code(b"SIP/2.0 40x Bad\r\n"), None);
        assert_eq!(status_code(b"INVITE sip:a SIP/2.0\r\n"), None);
        let mut h = Headers::new(REPLY);
        let kinds: Vec<Hdr> = h.by_ref().map(|x| x.hdr).collect();
        assert_eq!(
            kinds,
            [
                Hdr::Via,
                Hdr::From,
                Hdr::To,
                Hdr::CallId,
                Hdr::CSeq,
                Hdr::Server,
                Hdr::Other
            ]
        );
        assert_eq!(&REPLY[h.end()..], b"\r\n");
    }

    #[test]
    fn folded_lines_join_and_compact_names_map() {
        let m = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a\r\n ;branch=x\r\ni: id\r\n\r\n";
        let all: Vec<Header> = Headers::new(m).collect();
        assert_eq!(all[0].hdr, Hdr::Via);
        assert_eq!(all[0].value, b"SIP/2.0/UDP a\r\n ;branch=x");
        assert_eq!(all[1].hdr, Hdr::CallId);
    }

    #[test]
    fn uri_parts() {
        assert_eq!(
            name_addr_user_host(b"\"A\" <sip:1001@example.org;transport=udp>;tag=1"),
            (&b"1001"[..], &b"example.org"[..])
        );
        assert_eq!(
            name_addr_user_host(b"sip:200@[::1]:5060;tag=9"),
            (&b"200"[..], &b"[::1]"[..])
        );
        assert_eq!(
            uri_user_host(b"sip:example.org:5060"),
            (&b""[..], &b"example.org"[..])
        );
        assert_eq!(uri_user_host(b"sip:bob:secret@h"), (&b"bob"[..], &b"h"[..]));
        assert_eq!(header_param(b"<sip:a@b;tag=no>;tag=yes", "tag"), b"yes");
        assert_eq!(header_param(b"sip:a@b;TAG=t1", "tag"), b"t1");
        assert_eq!(header_param(b"<sip:a@b>", "tag"), b"");
        assert_eq!(cseq_parts(b" 12  INVITE "), (&b"12"[..], &b"INVITE"[..]));
    }

    #[test]
    fn stale_challenges() {
        assert!(challenge_is_stale(
            b"Digest realm=\"r\", nonce=\"a,b\", qop=\"auth\", stale=true"
        ));
        assert!(challenge_is_stale(b"Digest stale=TRUE, realm=\"r\""));
        assert!(challenge_is_stale(b"Digest realm=\"r\", stale=\"true\""));
        assert!(!challenge_is_stale(b"Digest realm=\"r\", nonce=\"stale=true\""));
        assert!(!challenge_is_stale(b"Digest realm=\"r\", stale=false"));
    }

    #[test]
    fn digest_user_name() {
        let c = b"Digest realm=\"r\", username=\"1001\", nonce=\"n,x\", uri=\"sip:r\"";
        assert_eq!(digest_username(c), b"1001");
        assert_eq!(
            digest_username(b"Digest nonce=\"a,username=evil\", username=bob"),
            b"bob"
        );
        assert_eq!(digest_username(b"Basic xyz"), b"");
        assert_eq!(digest_username(b""), b"");
    }

    #[test]
    fn substring_ignores_case() {
        assert!(contains_lower(
            b"User-Agent FRIENDLY-Scanner 1.0",
            b"friendly-scanner"
        ));
        assert!(!contains_lower(b"friendly", b"friendly-scanner"));
        assert!(!contains_lower(b"x", b""));
        let pats = Patterns::parse("sipcli, Friendly-Scanner,,");
        assert!(pats.found_in(b"UA: SIPCLI/v1.8"));
        assert!(!pats.found_in(b"Yealink sipcl"));
        let long = [vec![b'x'; 600], b"friendly-scanner".to_vec()].concat();
        assert!(pats.found_in(&long));
        assert!(!Patterns::parse("").found_in(b"anything"));
    }
}
