//! Reply normalization: on the way out, a reply that would tell an
//! existing user from a missing one (by default 403, 404, 480, 484, 604 to
//! REGISTER, INVITE, OPTIONS, SUBSCRIBE, MESSAGE) becomes the digest
//! challenge the auth module would have sent: 401 for REGISTER, 407
//! otherwise.
//!
//! The rewrite keeps what Kamailio copies into any local reply, in the
//! order it copies it (Via, From, To with its tag, Call-ID, CSeq), then adds
//! the challenge, the Server header if the reply had one, and
//! `Content-Length: 0` — the layout of the auth module's own challenge, so
//! status, header names, order and length match whether the user exists or
//! not. The nonce has the auth module's length and alphabet (base64 of its
//! binary layout: expiry and creation time, then digest-sized bytes).
//!
//! Replies to requests the script marked authenticated, replies to requests
//! the script refused by policy (but a digest challenge), and replies going
//! to allowlisted addresses (trusted peers), are left alone.

use crate::guess::config::GuessConfig;
use crate::guess::Defences;
use crate::shm::hash::random_seed;
use crate::shm::lock::my_pid;
use crate::sip::addr::address_bits;
use crate::util::clock::wall_ms;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// The auth module's binary nonce without nonce-count/one-time-nonce ids.
pub const DEFAULT_NONCE_BYTES: usize = 24;
const MAX_NONCE_BYTES: usize = 45;
/// The OpenSIPS auth module's nonce: 33 bytes (44 base64 characters).
pub const OPENSIPS_NONCE_BYTES: usize = 33;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    /// The rewritten reply is the first `n` bytes of the output buffer.
    Rewritten(usize),
    /// The output buffer was too small: the rewrite needs this many bytes.
    TooSmall(usize),
}

/// A byte range of the reply: one whole header, line end included
/// (`sipguard_span`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub off: u32,
    pub len: u32,
}

impl Span {
    /// Its bytes of `buf` (empty if it lies outside).
    fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let off = self.off as usize;
        buf.get(off..off + self.len as usize).unwrap_or_default()
    }

    /// Whether it lies inside a buffer of `len` bytes.
    pub fn inside(&self, len: usize) -> bool {
        (self.off as usize)
            .checked_add(self.len as usize)
            .is_some_and(|end| end <= len)
    }
}

/// A reply about to leave, as the host's parser read it. The core reads no
/// header of it again: it copies the spans it is given and judges the
/// parsed values, so the reply is judged by the very fields its request
/// was (Call-ID and CSeq).
#[derive(Debug, Default, Clone, Copy)]
pub struct Reply<'a> {
    pub buf: &'a [u8],
    pub status: u16,
    /// It carries a challenge with `stale=true`.
    pub stale: bool,
    pub call_id: &'a [u8],
    pub cseq_num: &'a [u8],
    pub cseq_method: &'a [u8],
    /// Hosts of the To and From URIs (`$td`, `$fd`): the realm.
    pub to_host: &'a [u8],
    pub from_host: &'a [u8],
    /// The line end the reply uses ("\r\n", or "\n" from a sloppy peer).
    pub eol: &'a [u8],
    /// The Via, From, To, Call-ID and CSeq headers, in message order.
    pub keep: &'a [Span],
    /// The Server header, if any.
    pub server: Option<Span>,
    /// The next id of the auth module's nonce counter and its pool/flags
    /// byte, when it numbers its nonces.
    pub nonce_id: Option<(u32, u8)>,
}

/// Process-local random bytes for nonces: SipHash of a counter, keyed with
/// entropy read once per process (children reseed after fork).
fn random_u64() -> u64 {
    static SEED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    static SEEDED_FOR: AtomicU32 = AtomicU32::new(0);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let pid = my_pid();
    if SEEDED_FOR.load(Relaxed) != pid {
        // Once per process.
        let s = random_seed();
        SEED[0].store(s[0], Relaxed);
        SEED[1].store(s[1], Relaxed);
        SEEDED_FOR.store(pid, Relaxed);
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_u64(SEED[0].load(Relaxed));
    h.write_u64(SEED[1].load(Relaxed));
    h.write_u64(COUNTER.fetch_add(1, Relaxed));
    h.finish()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the auth module's encoding); returns the length.
fn base64_into(src: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for chunk in src.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            out[n + i] = if i <= chunk.len() {
                B64[(v >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
        }
        n += 4;
    }
    n
}

/// A fresh nonce of the auth module's form into `out`; returns its length.
/// `id`: the nonce id and pool/flags byte the host took from the auth
/// module's own counter, so rewritten nonces continue its sequence.
fn nonce_into(cfg: &GuessConfig, register: bool, id: Option<(u32, u8)>, out: &mut [u8; 64]) -> usize {
    let bytes = match (register, cfg.challenge_nonce_bytes_register) {
        (true, n) if n != 0 => n,
        _ => cfg.challenge_nonce_bytes,
    };
    let len = match bytes {
        0 => DEFAULT_NONCE_BYTES,
        n => (n as usize).min(MAX_NONCE_BYTES),
    };
    let mut bin = [0u8; MAX_NONCE_BYTES];
    // OpenSIPS' nonce is 32 encrypted bytes (random to an observer) and a
    // zero byte; Kamailio's starts with its expiry and creation times in
    // clear.
    let (random_from, random_to) = if len == OPENSIPS_NONCE_BYTES {
        (0, len - 1)
    } else {
        let since = (wall_ms() / 1000) as u32;
        bin[..4].copy_from_slice(&since.wrapping_add(cfg.challenge_nonce_expire_s).to_be_bytes());
        bin[4..8].copy_from_slice(&since.to_be_bytes());
        (8, len)
    };
    for chunk in bin[random_from..random_to].chunks_mut(8) {
        let r = random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    // A nonce id (nonce_count / one_time_nonce) ends in its flags byte.
    if matches!(len, 29 | 45) {
        bin[len - 1] = cfg.challenge_nonce_flags;
        if let Some((n, pf)) = id {
            bin[len - 5..len - 1].copy_from_slice(&n.to_be_bytes());
            bin[len - 1] = pf;
        }
    }
    base64_into(&bin[..len], out)
}

/// Bounded writer into the caller's buffer: counts every byte, writes
/// those that fit (a count past the buffer says how large it must be).
struct Out<'a> {
    buf: &'a mut [u8],
    n: usize,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.n..self.n + b.len()) {
            dst.copy_from_slice(b);
        }
        self.n += b.len();
    }
}

/// A quoted-string's content: `"` and `\\` escaped, so a realm taken from
/// the message cannot end the quotes and add parameters; control bytes
/// (which no parsed host holds) are left out, so it cannot add lines.
/// Whether a challenge header value has a stale=true parameter outside
/// quotes (a relayed or the auth module's own challenge).
pub fn challenge_is_stale(v: &[u8]) -> bool {
    let (mut quoted, mut start) = (false, true);
    for (i, &c) in v.iter().enumerate() {
        if c == b'"' && (i == 0 || v[i - 1] != b'\\') {
            quoted = !quoted;
        }
        if quoted {
            continue;
        }
        if matches!(c, b',' | b' ' | b'\t') {
            start = true;
            continue;
        }
        if start && v.len() - i >= 10 && v[i..i + 10].eq_ignore_ascii_case(b"stale=true") {
            return true;
        }
        start = false;
    }
    false
}

/// An outgoing message from its first 12 bytes: 0 a request, the status of
/// a reply in the form hosts write ("SIP/2.0 ddd "), -1 another reply form.
/// A method is a token (no '/'), so "SIP/" starts replies only.
pub fn outgoing_status(b: &[u8]) -> i32 {
    let Some(head) = b.first_chunk::<12>() else {
        return 0;
    };
    // Every message passes here: the usual form is read as one word.
    let [_, _, _, _, _, _, _, _, h, t, u, sp] = *head;
    let word = u64::from_le_bytes(*head.first_chunk::<8>().expect("12 bytes"));
    if word == u64::from_le_bytes(*b"SIP/2.0 ") && sp == b' ' {
        if let (b'1'..=b'6', b'0'..=b'9', b'0'..=b'9') = (h, t, u) {
            return i32::from(h - b'0') * 100 + i32::from(t - b'0') * 10 + i32::from(u - b'0');
        }
    }
    if !head[..3].eq_ignore_ascii_case(b"SIP") || head[3] != b'/' {
        return 0;
    }
    -1
}

fn put_quoted(w: &mut Out, v: &[u8]) {
    for &b in v {
        match b {
            b'"' | b'\\' => w.put(&[b'\\', b]),
            0..=0x1f | 0x7f => {}
            _ => w.put(&[b]),
        }
    }
}

impl Defences<'_> {
    /// Whether replies with this status need a look: 0 no, 1 a failure to
    /// count, 2 a reply that may be rewritten (the host parses only these,
    /// and sends none of the last kind that it cannot hand over).
    pub fn reply_wanted(&self, status: u16) -> u8 {
        let cfg = &self.guess.cfg;
        if cfg.normalize && cfg.normalizes_code(status) {
            2
        } else {
            u8::from(matches!(status, 401 | 403 | 407))
        }
    }

    /// Look at a reply about to be sent to `dst` (4 or 16 address bytes):
    /// count it as an authentication failure if it is one, and rewrite it
    /// into `out` if it would leak whether a user exists.
    pub fn reply_out(&self, reply: &Reply, dst: &[u8], now: u64, out: &mut [u8]) -> Outcome {
        let cfg = &self.guess.cfg;
        if self.reply_wanted(reply.status) == 0 {
            return Outcome::Unchanged;
        }
        let leaky = cfg.normalize && cfg.normalizes_code(reply.status);
        let trusted_peer = address_bits(dst).is_some_and(|b| self.flood.allowlisted(b));
        let rewrite = leaky && !trusted_peer && cfg.normalizes_method(reply.cseq_method);
        // What the client sees decides: a rewritten 404 is a 401 too, or
        // the ban itself would tell existing users from missing ones. A
        // stale-nonce challenge is no failure: the password was not looked at.
        let key = self
            .guess
            .txn_key(reply.call_id, reply.cseq_num, reply.cseq_method);
        let txn = self.guess_reply(key, reply.status, reply.stale, rewrite, now);
        if !rewrite || !txn.rewritable() {
            return Outcome::Unchanged;
        }
        let n = self.write_challenge(reply, txn.stale, out);
        if n > out.len() {
            return Outcome::TooSmall(n);
        }
        self.flood
            .counters()
            .bump(crate::shm::counters::Counter::Normalized);
        Outcome::Rewritten(n)
    }

    /// The challenge that replaces `reply`, laid out as the auth module's
    /// own (its header order and parameter order); returns its length,
    /// which may exceed `out` (then nothing usable was written).
    fn write_challenge(&self, reply: &Reply, stale: bool, out: &mut [u8]) -> usize {
        let cfg = &self.guess.cfg;
        let register = reply.cseq_method.eq_ignore_ascii_case(b"REGISTER");
        let realm = if !cfg.challenge_realm.is_empty() {
            &cfg.challenge_realm[..]
        } else if register {
            reply.to_host
        } else {
            reply.from_host
        };
        let eol = if reply.eol == b"\n" { &b"\n"[..] } else { b"\r\n" };
        let mut w = Out { buf: out, n: 0 };
        w.put(if register {
            b"SIP/2.0 401 Unauthorized"
        } else {
            b"SIP/2.0 407 Proxy Authentication Required"
        });
        w.put(eol);
        for s in reply.keep {
            w.put(s.of(reply.buf));
        }
        w.put(if register {
            b"WWW-Authenticate: Digest realm=\""
        } else {
            b"Proxy-Authenticate: Digest realm=\""
        });
        put_quoted(&mut w, realm);
        w.put(b"\", nonce=\"");
        let mut nonce = [0u8; 64];
        let n = nonce_into(cfg, register, reply.nonce_id, &mut nonce);
        w.put(&nonce[..n]);
        w.put(b"\"");
        if !cfg.challenge_qop.is_empty() {
            w.put(b", qop=\"");
            w.put(&cfg.challenge_qop);
            w.put(b"\"");
        }
        if stale {
            w.put(b", stale=true");
        }
        if !cfg.challenge_algorithm.is_empty() {
            w.put(b", algorithm=");
            w.put(&cfg.challenge_algorithm);
        }
        w.put(eol);
        if let Some(s) = reply.server {
            w.put(s.of(reply.buf));
        }
        w.put(b"Content-Length: 0");
        w.put(eol);
        w.put(eol);
        w.n
    }
}

/// A plain reader of the well-formed replies tests and benchmarks write
/// (one line per header, CRLF or LF). Never for the wire: the host's
/// parser reads real replies.
#[doc(hidden)]
pub mod test_reader {
    use super::{Reply, Span};

    pub struct Parsed<'a> {
        buf: &'a [u8],
        status: u16,
        stale: bool,
        fields: [&'a [u8]; 7],
        keep: Vec<Span>,
        server: Option<Span>,
    }

    fn trim(b: &[u8]) -> &[u8] {
        let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
        let e = b
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(s, |e| e + 1);
        &b[s..e.max(s)]
    }

    fn after<'a>(v: &'a [u8], what: &[u8]) -> &'a [u8] {
        v.windows(what.len())
            .position(|w| w.eq_ignore_ascii_case(what))
            .map_or(&[][..], |p| {
                let rest = &v[p + what.len()..];
                &rest[..rest
                    .iter()
                    .position(|&c| matches!(c, b';' | b'>' | b':' | b' '))
                    .unwrap_or(rest.len())]
            })
    }

    pub fn parse(buf: &[u8]) -> Parsed<'_> {
        let line_end = buf.iter().position(|&c| c == b'\n').unwrap_or(buf.len());
        let eol: &[u8] = if line_end > 0 && buf[line_end - 1] == b'\r' {
            b"\r\n"
        } else {
            b"\n"
        };
        let status = buf
            .get(8..11)
            .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok())
            .unwrap_or(0);
        let mut p = Parsed {
            buf,
            status,
            stale: false,
            fields: [&[]; 7],
            keep: Vec::new(),
            server: None,
        };
        p.fields[6] = eol;
        let mut at = line_end + 1;
        while at < buf.len() {
            let end = buf[at..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(buf.len(), |e| at + e + 1);
            let line = &buf[at..end];
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                break;
            };
            let name = trim(&line[..colon]).to_ascii_lowercase();
            let value = trim(&line[colon + 1..]);
            let span = Span {
                off: at as u32,
                len: (end - at) as u32,
            };
            match &name[..] {
                b"via" | b"v" => p.keep.push(span),
                b"from" | b"f" => {
                    p.keep.push(span);
                    p.fields[5] = after(value, b"@");
                }
                b"to" | b"t" => {
                    p.keep.push(span);
                    p.fields[4] = after(value, b"@");
                }
                b"call-id" | b"i" => {
                    p.keep.push(span);
                    p.fields[0] = value;
                }
                b"cseq" => {
                    p.keep.push(span);
                    let sp = value.iter().position(|&c| c == b' ').unwrap_or(value.len());
                    p.fields[1] = &value[..sp];
                    p.fields[2] = trim(&value[sp..]);
                }
                b"server" => p.server = Some(span),
                b"www-authenticate" | b"proxy-authenticate" => {
                    p.stale = value.windows(10).any(|w| w.eq_ignore_ascii_case(b"stale=true"))
                }
                _ => {}
            }
            at = end;
        }
        p
    }

    impl<'a> Parsed<'a> {
        pub fn reply(&self) -> Reply<'_> {
            Reply {
                buf: self.buf,
                status: self.status,
                stale: self.stale,
                call_id: self.fields[0],
                cseq_num: self.fields[1],
                cseq_method: self.fields[2],
                to_host: self.fields[4],
                from_host: self.fields[5],
                eol: self.fields[6],
                keep: &self.keep,
                server: self.server,
                nonce_id: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_encoding() {
        let mut out = [0u8; 64];
        let n = base64_into(b"any carnal pleas", &mut out);
        assert_eq!(&out[..n], b"YW55IGNhcm5hbCBwbGVhcw==");
        let n = base64_into(b"any carnal pleasu", &mut out);
        assert_eq!(&out[..n], b"YW55IGNhcm5hbCBwbGVhc3U=");
    }

    #[test]
    fn nonce_lengths_follow_the_auth_module() {
        let mut cfg = GuessConfig::default();
        let mut out = [0u8; 64];
        assert_eq!(nonce_into(&cfg, true, None, &mut out), 32);
        cfg.challenge_nonce_bytes = 29;
        assert_eq!(nonce_into(&cfg, true, None, &mut out), 40);
        cfg.challenge_nonce_bytes_register = 45;
        assert_eq!(nonce_into(&cfg, false, None, &mut out), 40);
        assert_eq!(nonce_into(&cfg, true, None, &mut out), 60);
        let mut other = [0u8; 64];
        nonce_into(&cfg, true, None, &mut other);
        assert_ne!(out[12..60], other[12..60], "random part differs");
    }

    #[test]
    fn stale_only_outside_quotes() {
        assert!(challenge_is_stale(b"Digest realm=\"a\", nonce=\"x\", stale=true"));
        assert!(challenge_is_stale(b"Digest realm=\"a\",STALE=TRUE, qop=\"auth\""));
        assert!(!challenge_is_stale(b"Digest realm=\"stale=true\", nonce=\"x\""));
        assert!(!challenge_is_stale(b"Digest realm=\"a\\\" stale=true\""));
        assert!(!challenge_is_stale(b"Digest realm=\"a\", xstale=true"));
    }

    #[test]
    fn outgoing_status_forms() {
        assert_eq!(outgoing_status(b"SIP/2.0 404 Not Found\r\n"), 404);
        assert_eq!(outgoing_status(b"sip/2.0 404 Not Found\r\n"), -1);
        assert_eq!(outgoing_status(b"SIP/2.0  404 Not Found"), -1);
        assert_eq!(outgoing_status(b"SIP/2.0 704 Bad\r\n"), -1);
        assert_eq!(outgoing_status(b"OPTIONS sip:a SIP/2.0\r\n"), 0);
        assert_eq!(outgoing_status(b"SIP/2.0 40"), 0);
    }

    #[test]
    fn an_opensips_nonce_has_no_clear_field() {
        let cfg = GuessConfig {
            challenge_nonce_bytes: OPENSIPS_NONCE_BYTES as u32,
            ..GuessConfig::default()
        };
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        assert_eq!(nonce_into(&cfg, true, None, &mut a), 44);
        assert_eq!(nonce_into(&cfg, false, None, &mut b), 44);
        assert!(!a[..44].contains(&b'='), "no padding, like OpenSIPS'");
        // its last byte is zero: the last character carries 6 zero bits
        assert_eq!((a[43], b[43]), (b'A', b'A'));
        // the time fields of a Kamailio nonce would make the first 6
        // characters of two nonces made in the same second equal
        assert_ne!(a[..6], b[..6]);
    }
}
