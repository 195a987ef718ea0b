//! Finding the SDP in a message body: the Content-Type decides between a
//! plain `application/sdp` body and a `multipart/*` body (RFC 2046), whose
//! parts are walked without allocation or recursion.
//!
//! Multipart handling: the `boundary` parameter (quoted or not, 1-70
//! characters), delimiter lines `--boundary` (optionally followed by
//! whitespace) and the closing `--boundary--`, CRLF or LF line ends, the
//! preamble and epilogue ignored. A part's headers end at its first empty
//! line; only `Content-Type` (case-insensitive name, one continuation line
//! allowed) and `Content-Transfer-Encoding` are read. A body truncated
//! before its closing delimiter ends its last part at the end of the body.

/// What the message Content-Type says the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind<'a> {
    Sdp,
    Multipart(&'a [u8]),
    /// multipart/* without a usable boundary parameter.
    MultipartNoBoundary,
    Other,
}

pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

/// The media type of a Content-Type value (before any `;`), trimmed.
fn media_type(ct: &[u8]) -> &[u8] {
    trim(ct.split(|&c| c == b';').next().unwrap_or_default())
}

pub(crate) fn is_sdp_type(ct: &[u8]) -> bool {
    media_type(ct).eq_ignore_ascii_case(b"application/sdp")
}

fn is_multipart_type(ct: &[u8]) -> bool {
    media_type(ct)
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"multipart/"))
}

/// Parameters after the media type: `;name=value` or `;name="value"`,
/// with `;` inside quotes not splitting.
fn params(ct: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = ct
        .iter()
        .position(|&c| c == b';')
        .and_then(|i| ct.get(i + 1..))
        .unwrap_or_default();
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut cut = rest.len();
        for (i, &c) in rest.iter().enumerate() {
            match c {
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        let item = rest.get(..cut).unwrap_or_default();
        rest = rest.get(cut + 1..).unwrap_or_default();
        let (name, value) = match item.iter().position(|&c| c == b'=') {
            Some(i) => (
                item.get(..i).unwrap_or_default(),
                item.get(i + 1..).unwrap_or_default(),
            ),
            None => (item, &b""[..]),
        };
        let value = trim(value);
        let value = match value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")) {
            Some(unquoted) => unquoted,
            None => value,
        };
        Some((trim(name), value))
    })
}

/// An empty Content-Type counts as SDP: the SDP check then requires a
/// `v=` first line, so a body that does not look like SDP is `NoSdp`.
pub(crate) fn classify(ct: &[u8]) -> BodyKind<'_> {
    if is_sdp_type(ct) || trim(ct).is_empty() {
        return BodyKind::Sdp;
    }
    if !is_multipart_type(ct) {
        return BodyKind::Other;
    }
    // Exactly one boundary parameter: with two, parsers that take the last
    // one would see other parts than this check does.
    let mut boundaries = params(ct).filter(|(name, _)| name.eq_ignore_ascii_case(b"boundary"));
    match (boundaries.next(), boundaries.next()) {
        (Some((_, value)), None) if valid_boundary(value) => BodyKind::Multipart(value),
        _ => BodyKind::MultipartNoBoundary,
    }
}

/// RFC 2046 section 5.1.1: 1 to 70 of DIGIT ALPHA '()+_,-./:=? and space,
/// not ending in space. No backslash or quote, so quoted-pair decoding
/// cannot make two parsers disagree about the delimiter.
fn valid_boundary(b: &[u8]) -> bool {
    (1..=70).contains(&b.len())
        && !b.ends_with(b" ")
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

/// What one part holds, by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartKind {
    Sdp,
    /// SDP under a base64 or quoted-printable transfer encoding.
    EncodedSdp,
    /// A nested multipart: not descended into.
    Nested,
    /// More than one Content-Type header.
    Ambiguous,
    Other,
}

/// A part split into its kind and content.
pub(crate) fn split_part(part: &[u8]) -> (PartKind, &[u8]) {
    let mut offset = 0usize;
    let mut content_start = part.len();
    let (mut ct, mut cte): (Option<&[u8]>, &[u8]) = (None, b"");
    let mut ct_pending = false;
    for raw in part.split_inclusive(|&c| c == b'\n') {
        offset += raw.len();
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            content_start = offset;
            break;
        }
        if line.first().is_some_and(|&c| c == b' ' || c == b'\t') {
            if ct_pending {
                ct = Some(trim(line));
                ct_pending = false;
            }
            continue;
        }
        ct_pending = false;
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = trim(line.get(..colon).unwrap_or_default());
        let value = trim(line.get(colon + 1..).unwrap_or_default());
        if name.eq_ignore_ascii_case(b"content-type") || name.eq_ignore_ascii_case(b"c") {
            if ct.is_some() {
                // Parsers differ on which one counts: refuse to guess.
                return (PartKind::Ambiguous, b"");
            }
            ct = Some(value);
            ct_pending = value.is_empty();
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            cte = value;
        }
    }
    let content = part.get(content_start..).unwrap_or_default();
    let kind = match ct {
        Some(ct) if is_sdp_type(ct) => {
            let identity = cte.is_empty()
                || [&b"7bit"[..], b"8bit", b"binary"]
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(cte));
            if identity {
                PartKind::Sdp
            } else {
                PartKind::EncodedSdp
            }
        }
        Some(ct) if is_multipart_type(ct) => PartKind::Nested,
        _ => PartKind::Other,
    };
    (kind, content)
}

/// What one line (CR already stripped) is to the multipart walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Content,
    Delimiter {
        close: bool,
    },
    /// Starts with `--boundary` but is no delimiter: RFC 2046 forbids it in
    /// content, and parsers that search for `--boundary` alone (sofia-sip)
    /// would start a part here that this check would not see.
    Ambiguous,
}

fn delimiter(line: &[u8], boundary: &[u8]) -> Line {
    let Some(rest) = line.strip_prefix(b"--").and_then(|r| r.strip_prefix(boundary)) else {
        return Line::Content;
    };
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.iter().all(|&c| c == b' ' || c == b'\t') {
        Line::Delimiter { close }
    } else {
        Line::Ambiguous
    }
}

/// The parts of a multipart body, in order.
pub(crate) struct Parts<'a> {
    body: &'a [u8],
    boundary: &'a [u8],
    /// Start of the current part's content (after its delimiter line).
    pos: usize,
    started: bool,
    done: bool,
    /// An ambiguous delimiter-like line was met: the walk stopped there.
    pub(crate) malformed: bool,
}

impl<'a> Parts<'a> {
    pub(crate) fn new(body: &'a [u8], boundary: &'a [u8]) -> Self {
        Parts {
            body,
            boundary,
            pos: 0,
            started: false,
            done: false,
            malformed: false,
        }
    }

    /// Finds the next delimiter line at or after `self.pos`: returns
    /// (start of that line, start of the line after it, is closing).
    fn next_delimiter(&mut self) -> Option<(usize, usize, bool)> {
        let mut start = self.pos;
        let rest = self.body.get(self.pos..).unwrap_or_default();
        for raw in rest.split_inclusive(|&c| c == b'\n') {
            let next = start + raw.len();
            let line = raw.strip_suffix(b"\n").unwrap_or(raw);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match delimiter(line, self.boundary) {
                Line::Delimiter { close } => return Some((start, next, close)),
                Line::Ambiguous => {
                    self.malformed = true;
                    return None;
                }
                Line::Content => {}
            }
            start = next;
        }
        None
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            match self.next_delimiter() {
                Some((_, after, close)) => {
                    self.pos = after;
                    if close {
                        self.done = true;
                        return None;
                    }
                }
                None => {
                    self.done = true;
                    return None;
                }
            }
        }
        let found = self.next_delimiter();
        if self.malformed {
            self.done = true;
            return None;
        }
        match found {
            Some((line_start, after, close)) => {
                // The line break before the delimiter belongs to it.
                let mut end = line_start;
                if end > self.pos && self.body.get(end - 1) == Some(&b'\n') {
                    end -= 1;
                    if end > self.pos && self.body.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                }
                let part = self.body.get(self.pos..end).unwrap_or_default();
                self.pos = after;
                self.done = close;
                Some(part)
            }
            None => {
                self.done = true;
                Some(self.body.get(self.pos..).unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(classify(b"application/sdp"), BodyKind::Sdp);
        assert_eq!(classify(b"  Application/SDP ; charset=utf-8"), BodyKind::Sdp);
        assert_eq!(classify(b"application/sdpx"), BodyKind::Other);
        assert_eq!(classify(b""), BodyKind::Sdp);
        assert_eq!(classify(b" \t"), BodyKind::Sdp);
        assert_eq!(classify(b";x=1"), BodyKind::Other);
        assert_eq!(classify(b"text/plain"), BodyKind::Other);
        assert_eq!(
            classify(b"multipart/mixed;boundary=unique-boundary-1"),
            BodyKind::Multipart(b"unique-boundary-1")
        );
        assert_eq!(
            classify(b"Multipart/Mixed; Boundary=\"a'b c\""),
            BodyKind::Multipart(b"a'b c")
        );
        // Not RFC 2046 bchars, or two boundary parameters: refused.
        for bad in [
            &b"multipart/mixed; boundary=\"a;b\""[..],
            b"multipart/mixed; boundary=\"a\\\"b\"",
            b"multipart/mixed;boundary=AAA;boundary=BBB",
        ] {
            assert_eq!(
                classify(bad),
                BodyKind::MultipartNoBoundary,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            classify(b"multipart/mixed; charset=x; boundary = xyz ;x=1"),
            BodyKind::Multipart(b"xyz")
        );
        assert_eq!(classify(b"multipart/mixed"), BodyKind::MultipartNoBoundary);
        assert_eq!(
            classify(b"multipart/mixed;boundary="),
            BodyKind::MultipartNoBoundary
        );
        assert_eq!(
            classify(b"multipart/mixed;boundary=\"\""),
            BodyKind::MultipartNoBoundary
        );
        let long = format!("multipart/mixed;boundary={}", "x".repeat(71));
        assert_eq!(classify(long.as_bytes()), BodyKind::MultipartNoBoundary);
        assert_eq!(classify(b"multipart"), BodyKind::Other);
    }

    fn parts(body: &str, b: &str) -> Vec<String> {
        Parts::new(body.as_bytes(), b.as_bytes())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    #[test]
    fn multipart_split() {
        let body = "preamble\r\n--b1\r\nA: 1\r\n\r\none\r\n--b1\r\n\r\ntwo\r\n--b1--\r\nepilogue\r\n";
        assert_eq!(parts(body, "b1"), ["A: 1\r\n\r\none", "\r\ntwo"]);
        let lf = body.replace("\r\n", "\n");
        assert_eq!(parts(&lf, "b1"), ["A: 1\n\none", "\ntwo"]);
        // Delimiter at the very start, whitespace after it, truncated end.
        assert_eq!(parts("--b1 \t\nx\n--b1\ny", "b1"), ["x", "y"]);
        // A longer boundary sharing the prefix is no delimiter, but parsers
        // that search for "--b1" alone would split there: the walk stops.
        let mut walk = Parts::new(b"--b1\nx\n--b12\ny\n--b1--", b"b1");
        assert_eq!(walk.next(), None);
        assert!(walk.malformed);
        // Not at line start: not a delimiter.
        assert_eq!(parts("--b1\nx --b1\n--b1--", "b1"), ["x --b1"]);
        assert!(parts("no delimiter at all", "b1").is_empty());
        assert!(parts("--b1--\n--b1\nx", "b1").is_empty());
        assert_eq!(parts("--b1\n--b1\n--b1--", "b1"), ["", ""]);
    }

    #[test]
    fn part_with_two_content_types_is_ambiguous() {
        let part = b"Content-Type: application/sdp\r\nContent-Type: text/plain\r\n\r\nv=0\r\n";
        assert_eq!(split_part(part).0, PartKind::Ambiguous);
        let compact = b"c: application/sdp\r\n\r\nv=0\r\n";
        assert_eq!(split_part(compact).0, PartKind::Sdp);
    }

    #[test]
    fn part_headers() {
        let (k, c) = split_part(b"Content-Type: application/sdp\r\n\r\nv=0\r\n");
        assert_eq!((k, c), (PartKind::Sdp, &b"v=0\r\n"[..]));
        let (k, c) = split_part(b"content-TYPE:APPLICATION/SDP\nContent-Length: 3\n\nv=0");
        assert_eq!((k, c), (PartKind::Sdp, &b"v=0"[..]));
        let (k, _) = split_part(b"Content-Type:\r\n application/sdp\r\n\r\nv=0");
        assert_eq!(k, PartKind::Sdp);
        let (k, _) = split_part(b"Content-Type: application/sdp\nContent-Transfer-Encoding: base64\n\ndj0w");
        assert_eq!(k, PartKind::EncodedSdp);
        let (k, _) = split_part(b"Content-Type: application/sdp\nContent-Transfer-Encoding: 8bit\n\nv=0");
        assert_eq!(k, PartKind::Sdp);
        let (k, _) = split_part(b"Content-Type: multipart/mixed;boundary=x\n\n--x\n");
        assert_eq!(k, PartKind::Nested);
        let (k, _) = split_part(b"\r\nv=0\r\n");
        assert_eq!(k, PartKind::Other);
        let (k, c) = split_part(b"Content-Type: application/sdp");
        assert_eq!((k, c), (PartKind::Sdp, &b""[..]));
        let (k, _) = split_part(b"X-Note: Content-Type: application/sdp\n\nv=0");
        assert_eq!(k, PartKind::Other);
    }
}
