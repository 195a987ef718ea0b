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
//! Replies to requests the script marked authenticated, and replies going
//! to allowlisted addresses (trusted peers), are left alone.

use crate::addr::address_bits;
use crate::clock::wall_ms;
use crate::guess_config::GuessConfig;
use crate::lock::my_pid;
use crate::region::Region;
use crate::shm::random_seed;
use crate::sipmsg::{challenge_is_stale, cseq_parts, name_addr_user_host, status_code, Hdr, Headers};
use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// The auth module's binary nonce without nonce-count/one-time-nonce ids.
pub const DEFAULT_NONCE_BYTES: usize = 24;
const MAX_NONCE_BYTES: usize = 45;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    /// The rewritten reply is the first `n` bytes of the output buffer.
    Rewritten(usize),
    /// The output buffer was too small; the reply went out unchanged.
    TooSmall,
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
fn nonce_into(cfg: &GuessConfig, register: bool, out: &mut [u8; 64]) -> usize {
    let bytes = match (register, cfg.challenge_nonce_bytes_register) {
        (true, n) if n != 0 => n,
        _ => cfg.challenge_nonce_bytes,
    };
    let len = match bytes {
        0 => DEFAULT_NONCE_BYTES,
        n => (n as usize).min(MAX_NONCE_BYTES),
    };
    let mut bin = [0u8; MAX_NONCE_BYTES];
    let since = (wall_ms() / 1000) as u32;
    bin[..4].copy_from_slice(&since.wrapping_add(cfg.challenge_nonce_expire_s).to_be_bytes());
    bin[4..8].copy_from_slice(&since.to_be_bytes());
    for chunk in bin[8..len].chunks_mut(8) {
        let r = random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    // A nonce id (nonce_count / one_time_nonce) ends in its flags byte.
    if matches!(len, 29 | 45) {
        bin[len - 1] = cfg.challenge_nonce_flags;
    }
    base64_into(&bin[..len], out)
}

/// Bounded writer into the caller's buffer.
struct Out<'a> {
    buf: &'a mut [u8],
    n: usize,
    overflow: bool,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.n..self.n + b.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(b);
                self.n += b.len();
            }
            _ => self.overflow = true,
        }
    }
}

impl Region {
    /// Look at a reply about to be sent to `dst` (4 or 16 address bytes):
    /// count it as an authentication failure if it is one, and rewrite it
    /// into `out` if it would leak whether a user exists.
    pub fn reply_out(&self, reply: &[u8], dst: &[u8], now: u64, out: &mut [u8]) -> Outcome {
        let cfg = &self.cfg.guess;
        let Some(code) = status_code(reply) else {
            return Outcome::Unchanged;
        };
        let leaky = cfg.normalize && cfg.normalizes_code(code);
        if !leaky && !matches!(code, 401 | 403 | 407) {
            return Outcome::Unchanged;
        }
        let (mut from, mut to, mut call_id, mut cseq) = (&[][..], &[][..], &[][..], &[][..]);
        let mut stale = false;
        for h in Headers::new(reply) {
            match h.hdr {
                Hdr::From => from = h.value,
                Hdr::To => to = h.value,
                Hdr::CallId => call_id = h.value,
                Hdr::CSeq => cseq = h.value,
                Hdr::Challenge => stale |= challenge_is_stale(h.value),
                _ => {}
            }
        }
        let method = cseq_parts(cseq).1;
        let trusted_peer = address_bits(dst).is_some_and(|b| self.allowlisted(b));
        let rewrite = leaky && !trusted_peer && cfg.normalizes_method(method);
        // What the client sees decides: a rewritten 404 is a 401 too, or
        // the ban itself would tell existing users from missing ones. A
        // stale-nonce challenge is no failure: the password was not looked at.
        let failure = (matches!(code, 401 | 403 | 407) && !stale) || rewrite;
        let authenticated = self.guess_reply(self.guess.txn_key(call_id, cseq, from), failure, now);
        if !rewrite || authenticated {
            return Outcome::Unchanged;
        }
        let register = method.eq_ignore_ascii_case(b"REGISTER");
        let realm = if !cfg.challenge_realm.is_empty() {
            &cfg.challenge_realm[..]
        } else if register {
            name_addr_user_host(to).1
        } else {
            name_addr_user_host(from).1
        };
        let mut w = Out {
            buf: out,
            n: 0,
            overflow: false,
        };
        w.put(if register {
            b"SIP/2.0 401 Unauthorized\r\n"
        } else {
            b"SIP/2.0 407 Proxy Authentication Required\r\n"
        });
        let mut server = None;
        for h in Headers::new(reply) {
            match h.hdr {
                Hdr::Via | Hdr::From | Hdr::To | Hdr::CallId | Hdr::CSeq => w.put(&reply[h.line]),
                Hdr::Server => server = Some(h.line),
                Hdr::Challenge | Hdr::Other => {}
            }
        }
        w.put(if register {
            b"WWW-Authenticate: Digest realm=\""
        } else {
            b"Proxy-Authenticate: Digest realm=\""
        });
        w.put(realm);
        w.put(b"\", nonce=\"");
        let mut nonce = [0u8; 64];
        let n = nonce_into(cfg, register, &mut nonce);
        w.put(&nonce[..n]);
        w.put(b"\"");
        if !cfg.challenge_qop.is_empty() {
            w.put(b", qop=\"");
            w.put(&cfg.challenge_qop);
            w.put(b"\"");
        }
        if !cfg.challenge_algorithm.is_empty() {
            w.put(b", algorithm=");
            w.put(&cfg.challenge_algorithm);
        }
        w.put(b"\r\n");
        if let Some(line) = server {
            w.put(&reply[line]);
        }
        w.put(b"Content-Length: 0\r\n\r\n");
        if w.overflow {
            return Outcome::TooSmall;
        }
        self.counters().bump(crate::counters::Counter::Normalized);
        Outcome::Rewritten(w.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::small_region;

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
        assert_eq!(nonce_into(&cfg, true, &mut out), 32);
        cfg.challenge_nonce_bytes = 29;
        assert_eq!(nonce_into(&cfg, true, &mut out), 40);
        cfg.challenge_nonce_bytes_register = 45;
        assert_eq!(nonce_into(&cfg, false, &mut out), 40);
        assert_eq!(nonce_into(&cfg, true, &mut out), 60);
        let mut other = [0u8; 64];
        nonce_into(&cfg, true, &mut other);
        assert_ne!(out[12..60], other[12..60], "random part differs");
    }

    fn reply(code: &str, method: &str, user: &str, extra: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {code}\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1;rport=5070\r\n\
             From: <sip:{user}@example.org>;tag=abc\r\nTo: <sip:{user}@example.org>;tag=1f2e3d4c5b6a79881726354453627180.a1b2\r\n\
             Call-ID: c{user}@h\r\nCSeq: 2 {method}\r\n{extra}Server: edge\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_404_to_register_becomes_a_401_of_the_same_shape() {
        let r = small_region(|_| {});
        let mut out = [0u8; 2048];
        let Outcome::Rewritten(n) = r.reply_out(
            &reply("404 Not Found", "REGISTER", "1001", ""),
            &[127, 0, 0, 9],
            1,
            &mut out,
        ) else {
            panic!("not rewritten")
        };
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert!(text.starts_with("SIP/2.0 401 Unauthorized\r\nVia: "), "{text}");
        assert!(
            text.contains("\r\nWWW-Authenticate: Digest realm=\"example.org\", nonce=\""),
            "{text}"
        );
        assert!(
            text.ends_with("\", qop=\"auth\"\r\nServer: edge\r\nContent-Length: 0\r\n\r\n"),
            "{text}"
        );
        // Another user's 480 to REGISTER: same length, same lines.
        let mut out2 = [0u8; 2048];
        let Outcome::Rewritten(n2) = r.reply_out(
            &reply(
                "480 Temporarily Unavailable",
                "REGISTER",
                "1002",
                "Warning: 399 x\r\n",
            ),
            &[127, 0, 0, 9],
            1,
            &mut out2,
        ) else {
            panic!("not rewritten")
        };
        assert_eq!(n, n2);
        let names = |b: &[u8]| Headers::new(b).map(|h| h.hdr).collect::<Vec<_>>();
        assert_eq!(names(&out[..n]), names(&out2[..n2]));
    }

    #[test]
    fn invite_gets_407_and_other_codes_pass() {
        let r = small_region(|_| {});
        let mut out = [0u8; 2048];
        let Outcome::Rewritten(n) = r.reply_out(
            &reply("403 Not relaying", "INVITE", "9", ""),
            &[127, 0, 0, 9],
            1,
            &mut out,
        ) else {
            panic!("not rewritten")
        };
        assert!(out[..n].starts_with(b"SIP/2.0 407 Proxy Authentication Required\r\n"));
        for (code, method) in [
            ("200 OK", "REGISTER"),
            ("486 Busy Here", "INVITE"),
            ("404 Not Found", "BYE"),
        ] {
            assert_eq!(
                r.reply_out(&reply(code, method, "9", ""), &[127, 0, 0, 9], 1, &mut out),
                Outcome::Unchanged
            );
        }
        assert_eq!(
            r.reply_out(b"OPTIONS sip:x SIP/2.0\r\n\r\n", &[127, 0, 0, 9], 1, &mut out),
            Outcome::Unchanged
        );
        let mut tiny = [0u8; 40];
        assert_eq!(
            r.reply_out(
                &reply("404 Not Found", "INVITE", "9", ""),
                &[127, 0, 0, 9],
                1,
                &mut tiny
            ),
            Outcome::TooSmall
        );
    }

    #[test]
    fn allowlisted_destinations_and_disabled_normalization_pass() {
        let r = small_region(|c| c.set("allow", "127.0.0.9/32").unwrap());
        let mut out = [0u8; 2048];
        let rep = reply("404 Not Found", "INVITE", "9", "");
        assert_eq!(
            r.reply_out(&rep, &[127, 0, 0, 9], 1, &mut out),
            Outcome::Unchanged
        );
        assert!(matches!(
            r.reply_out(&rep, &[127, 0, 0, 8], 1, &mut out),
            Outcome::Rewritten(_)
        ));
        let r = small_region(|c| c.set("normalize_replies", "0").unwrap());
        assert_eq!(
            r.reply_out(&rep, &[127, 0, 0, 8], 1, &mut out),
            Outcome::Unchanged
        );
    }
}
