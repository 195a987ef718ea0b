//! Validation of the keying attributes: RFC 4568 `a=crypto` (SDES) and
//! RFC 8122 `a=fingerprint` (DTLS-SRTP). Both work on the attribute value
//! (the bytes after `a=crypto:` / `a=fingerprint:`), allocate nothing and
//! never panic.
//!
//! `a=crypto:<tag> <suite> <key-params> [<session-params>]` where
//! key-params = key-param *(";" key-param), key-param = "inline:" key-info,
//! key-info = key||salt ["|" lifetime] ["|" MKI ":" length].
//! Checked: tag is 1-9 digits; the suite is known; every key is valid
//! base64 decoding to exactly the suite's key+salt length and is not a
//! constant byte string (all zero etc.); lifetime is `2^N` (N <= 48) or a
//! decimal 1..=2^48; MKI is `value:length` with length 1..=128 and a value
//! that fits; with several keys each has an MKI of one common length;
//! session parameters are printable, and those that switch protection off
//! (UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP) make the
//! line weak. Unknown mandatory session parameters (no leading `-`) make
//! the line unusable, as RFC 4568 section 6.3.7 has the answerer refuse it.

use super::base64::{self, B64Error};
use super::policy::Suite;
use core::fmt;

/// Why an `a=crypto` line does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    Syntax(&'static str),
    BadTag,
    UnknownSuite,
    KeyMethod,
    Base64(B64Error),
    /// `got` is the decoded length (an estimate when the key overflowed).
    KeyLength {
        got: usize,
        want: usize,
    },
    ConstantKey,
    Lifetime,
    Mki,
    MultiKeyMki,
    WeakParam(&'static str),
    /// Well-formed, but the policy does not allow the suite.
    NotAllowed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Syntax(what) => write!(f, "malformed: {what}"),
            CryptoError::BadTag => f.write_str("tag is not 1-9 digits"),
            CryptoError::UnknownSuite => f.write_str("unknown crypto suite"),
            CryptoError::KeyMethod => f.write_str("key method is not inline:"),
            CryptoError::Base64(e) => write!(f, "key: {e}"),
            CryptoError::KeyLength { got, want } => {
                write!(f, "key||salt is {got} bytes, suite needs {want}")
            }
            CryptoError::ConstantKey => f.write_str("key||salt is a constant byte string"),
            CryptoError::Lifetime => f.write_str("bad key lifetime"),
            CryptoError::Mki => f.write_str("bad MKI (value:length, length 1..128)"),
            CryptoError::MultiKeyMki => f.write_str("several keys need an MKI of one length each"),
            CryptoError::WeakParam(p) => write!(f, "session parameter {p} disables protection"),
            CryptoError::NotAllowed => f.write_str("suite not allowed by policy"),
        }
    }
}

/// The identifying fields of an `a=crypto` line, for reason texts.
#[derive(Debug, Clone, Copy, Default)]
pub struct CryptoId<'a> {
    pub tag: &'a [u8],
    pub suite: &'a [u8],
}

pub(crate) fn is_wsp(c: &u8) -> bool {
    *c == b' ' || *c == b'\t'
}

pub(crate) fn fields(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(is_wsp).filter(|f| !f.is_empty())
}

fn all_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Decimal value of at most 19 digits; None if not digits or longer.
fn small_number(s: &[u8]) -> Option<u64> {
    if !all_digits(s) || s.len() > 19 {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0')))
}

const MAX_LIFETIME_LOG2: u64 = 48;

fn lifetime_ok(s: &[u8]) -> bool {
    if let Some(exp) = s.strip_prefix(b"2^") {
        return exp.len() <= 2 && small_number(exp).is_some_and(|e| e <= MAX_LIFETIME_LOG2);
    }
    s.len() <= 15 && small_number(s).is_some_and(|v| (1..=1 << MAX_LIFETIME_LOG2).contains(&v))
}

/// `value:length`; returns the length.
fn mki_length(s: &[u8]) -> Option<u64> {
    let colon = s.iter().position(|&c| c == b':')?;
    let (value, length) = (s.get(..colon)?, s.get(colon + 1..)?);
    let length = small_number(length).filter(|l| (1..=128).contains(l) && length.len() <= 3)?;
    // 128 bytes hold at most 309 decimal digits.
    if !all_digits(value) || value.len() > 309 {
        return None;
    }
    if length < 8 {
        let v = small_number(value)?;
        if v >> (8 * length) != 0 {
            return None;
        }
    }
    Some(length)
}

/// Validates one `inline:` key parameter; returns its MKI length (0: none).
fn key_param(param: &[u8], suite: Suite) -> Result<u64, CryptoError> {
    let colon = param
        .iter()
        .position(|&c| c == b':')
        .ok_or(CryptoError::Syntax("key-param without ':'"))?;
    let (method, info) = (
        param.get(..colon).unwrap_or_default(),
        param.get(colon + 1..).unwrap_or_default(),
    );
    if !method.eq_ignore_ascii_case(b"inline") {
        return Err(CryptoError::KeyMethod);
    }
    let mut parts = info.split(|&c| c == b'|');
    let key = parts.next().unwrap_or_default();
    let mut buf = [0u8; 48];
    let want = suite.key_salt_len();
    let got = match base64::decode(key, &mut buf) {
        Ok(n) => n,
        Err(B64Error::TooLong) => {
            let data = key.iter().filter(|&&c| c != b'=').count();
            return Err(CryptoError::KeyLength {
                got: data * 3 / 4,
                want,
            });
        }
        Err(e) => return Err(CryptoError::Base64(e)),
    };
    if got != want {
        return Err(CryptoError::KeyLength { got, want });
    }
    let decoded = buf.get(..got).unwrap_or_default();
    if decoded.windows(2).all(|w| w.first() == w.get(1)) {
        return Err(CryptoError::ConstantKey);
    }
    let (mut lifetime_seen, mut mki) = (false, 0u64);
    for part in parts {
        if mki != 0 {
            return Err(CryptoError::Syntax("field after the MKI"));
        }
        if part.contains(&b':') {
            mki = mki_length(part).ok_or(CryptoError::Mki)?;
        } else if lifetime_seen {
            return Err(CryptoError::Syntax("two lifetimes"));
        } else {
            if !lifetime_ok(part) {
                return Err(CryptoError::Lifetime);
            }
            lifetime_seen = true;
        }
    }
    Ok(mki)
}

fn session_param(p: &[u8]) -> Result<(), CryptoError> {
    if !p.iter().all(u8::is_ascii_graphic) {
        return Err(CryptoError::Syntax("non-printable session parameter"));
    }
    let (name, value) = match p.iter().position(|&c| c == b'=') {
        Some(i) => (p.get(..i).unwrap_or_default(), p.get(i + 1..)),
        None => (p, None),
    };
    for weak in ["UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP"] {
        if name.eq_ignore_ascii_case(weak.as_bytes()) {
            return Err(CryptoError::WeakParam(weak));
        }
    }
    let ok = if name.eq_ignore_ascii_case(b"KDR") {
        value.and_then(small_number).is_some_and(|v| v <= 24)
    } else if name.eq_ignore_ascii_case(b"WSH") {
        value.and_then(small_number).is_some_and(|v| v >= 64)
    } else if name.eq_ignore_ascii_case(b"FEC_ORDER") {
        value.is_some_and(|v| v.eq_ignore_ascii_case(b"FEC_SRTP") || v.eq_ignore_ascii_case(b"SRTP_FEC"))
    } else if name.eq_ignore_ascii_case(b"FEC_KEY") {
        value.is_some_and(|v| !v.is_empty())
    } else {
        return if name.starts_with(b"-") {
            Ok(())
        } else {
            Err(CryptoError::Syntax("unknown mandatory session parameter"))
        };
    };
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Syntax("bad session parameter value"))
    }
}

/// Validates the value of an `a=crypto` attribute. The policy is not
/// consulted here: the caller checks the returned suite against it.
pub fn validate(value: &[u8]) -> (CryptoId<'_>, Result<Suite, CryptoError>) {
    let mut it = fields(value);
    let tag = it.next().unwrap_or_default();
    let suite_name = it.next().unwrap_or_default();
    let id = CryptoId {
        tag,
        suite: suite_name,
    };
    (id, validate_fields(tag, suite_name, it))
}

fn validate_fields<'a>(
    tag: &[u8],
    suite_name: &[u8],
    mut rest: impl Iterator<Item = &'a [u8]>,
) -> Result<Suite, CryptoError> {
    if !all_digits(tag) || tag.len() > 9 {
        return Err(CryptoError::BadTag);
    }
    if suite_name.is_empty() {
        return Err(CryptoError::Syntax("no crypto suite"));
    }
    let suite = Suite::from_name(suite_name).ok_or(CryptoError::UnknownSuite)?;
    let key_params = rest.next().ok_or(CryptoError::Syntax("no key parameter"))?;
    let (mut keys, mut mki_len, mut missing_mki) = (0usize, None, false);
    for param in key_params.split(|&c| c == b';') {
        let mki = key_param(param, suite)?;
        keys += 1;
        if mki == 0 {
            missing_mki = true;
        } else if *mki_len.get_or_insert(mki) != mki {
            return Err(CryptoError::MultiKeyMki);
        }
    }
    if keys > 1 && missing_mki {
        return Err(CryptoError::MultiKeyMki);
    }
    for p in rest {
        session_param(p)?;
    }
    Ok(suite)
}

/// Why an `a=fingerprint` line does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FpError {
    Syntax,
    UnknownHash,
    WeakHash,
    Length { got: usize, want: usize },
}

impl fmt::Display for FpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FpError::Syntax => f.write_str("malformed a=fingerprint"),
            FpError::UnknownHash => f.write_str("a=fingerprint with an unknown hash"),
            FpError::WeakHash => f.write_str("a=fingerprint with a broken hash (md2/md5)"),
            FpError::Length { got, want } => {
                write!(f, "a=fingerprint is {got} bytes, its hash gives {want}")
            }
        }
    }
}

/// Validates `<hash-func> <XX:XX:...>` (RFC 8122 section 5).
pub fn validate_fingerprint(value: &[u8]) -> Result<(), FpError> {
    let mut it = fields(value);
    let (hash, fp) = (
        it.next().ok_or(FpError::Syntax)?,
        it.next().ok_or(FpError::Syntax)?,
    );
    if it.next().is_some() {
        return Err(FpError::Syntax);
    }
    const HASHES: [(&str, usize); 7] = [
        ("sha-1", 20),
        ("sha-224", 28),
        ("sha-256", 32),
        ("sha-384", 48),
        ("sha-512", 64),
        ("md5", 0),
        ("md2", 0),
    ];
    let want = HASHES
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(hash))
        .map(|&(_, w)| w)
        .ok_or(FpError::UnknownHash)?;
    if want == 0 {
        return Err(FpError::WeakHash);
    }
    let mut got = 0;
    for pair in fp.split(|&c| c == b':') {
        if pair.len() != 2 || !pair.iter().all(u8::is_ascii_hexdigit) {
            return Err(FpError::Syntax);
        }
        got += 1;
    }
    if got != want {
        return Err(FpError::Length { got, want });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(line: &str) -> Result<Suite, CryptoError> {
        validate(line.as_bytes()).1
    }

    const K30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn rfc4568_examples() {
        // Section 9.1 offer (folded lines joined) and answer.
        assert_eq!(
            v("1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP"),
            Ok(Suite::AesCm128HmacSha1_80)
        );
        assert_eq!(
            v(
                "2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
               inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP"
            ),
            Ok(Suite::F8_128HmacSha1_80)
        );
        assert_eq!(
            v("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"),
            Ok(Suite::AesCm128HmacSha1_80)
        );
        // Section 9.2-style SRTP_32 with a 32-byte MKI.
        assert_eq!(
            v("1 AES_CM_128_HMAC_SHA1_32 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32"),
            Ok(Suite::AesCm128HmacSha1_32)
        );
    }

    #[test]
    fn key_lengths_per_suite() {
        let k = |n: usize| {
            // n distinct-ish bytes, standard padded base64 (test-only helper).
            let bytes: Vec<u8> = (0..n as u8)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            encode(&bytes)
        };
        for (suite, n) in [
            ("AES_CM_128_HMAC_SHA1_80", 30),
            ("AES_CM_128_HMAC_SHA1_32", 30),
            ("AES_192_CM_HMAC_SHA1_80", 38),
            ("AES_256_CM_HMAC_SHA1_80", 46),
            ("AES_256_CM_HMAC_SHA1_32", 46),
            ("AEAD_AES_128_GCM", 28),
            ("AEAD_AES_256_GCM", 44),
        ] {
            assert!(v(&format!("1 {suite} inline:{}", k(n))).is_ok(), "{suite}");
            let unpadded = k(n).trim_end_matches('=').to_string();
            assert!(
                v(&format!("1 {suite} inline:{unpadded}")).is_ok(),
                "{suite} unpadded"
            );
            assert_eq!(
                v(&format!("1 {suite} inline:{}", k(n - 1))),
                Err(CryptoError::KeyLength { got: n - 1, want: n }),
                "{suite}"
            );
            assert!(matches!(
                v(&format!("1 {suite} inline:{}", k(n + 3))),
                Err(CryptoError::KeyLength { .. })
            ));
        }
        // A 46-byte (AES_256) key under an AES_128 suite.
        assert!(matches!(
            v(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", k(46))),
            Err(CryptoError::KeyLength { got: 46, want: 30 })
        ));
        assert_eq!(k(30).len(), 40);
        assert_eq!(k(46).len(), 64);
        assert_eq!(k(28).len(), 40);
        assert_eq!(k(44).len(), 60);
    }

    fn encode(b: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[test]
    fn malformed_keys() {
        let bad = |key: &str| v(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}"));
        assert_eq!(
            bad("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV!"),
            Err(CryptoError::Base64(B64Error::InvalidChar(b'!')))
        );
        assert_eq!(
            bad("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz="),
            Err(CryptoError::Base64(B64Error::BadPadding))
        );
        assert_eq!(bad(""), Err(CryptoError::Base64(B64Error::Empty)));
        assert_eq!(
            bad("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzA"),
            Err(CryptoError::Base64(B64Error::BadLength))
        );
        assert_eq!(
            bad("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Err(CryptoError::ConstantKey)
        );
        assert_eq!(
            bad("////////////////////////////////////////"),
            Err(CryptoError::ConstantKey)
        );
        assert_eq!(
            v(&format!("1 AES_CM_128_HMAC_SHA1_80 {K30}")),
            Err(CryptoError::Syntax("key-param without ':'"))
        );
        assert_eq!(
            v(&format!("1 AES_CM_128_HMAC_SHA1_80 uri:{K30}")),
            Err(CryptoError::KeyMethod)
        );
        assert_eq!(
            v(&format!("1 AES_CM_128_HMAC_SHA1_80 INLINE:{K30}")),
            Ok(Suite::AesCm128HmacSha1_80)
        );
    }

    #[test]
    fn tag_and_suite() {
        assert_eq!(
            v(&format!("123456789 AES_CM_128_HMAC_SHA1_80 inline:{K30}")),
            Ok(Suite::AesCm128HmacSha1_80)
        );
        assert_eq!(
            v(&format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{K30}")),
            Err(CryptoError::BadTag)
        );
        assert_eq!(
            v(&format!("x AES_CM_128_HMAC_SHA1_80 inline:{K30}")),
            Err(CryptoError::BadTag)
        );
        assert_eq!(v(""), Err(CryptoError::BadTag));
        assert_eq!(v("1"), Err(CryptoError::Syntax("no crypto suite")));
        assert_eq!(
            v("1 AES_CM_128_HMAC_SHA1_80"),
            Err(CryptoError::Syntax("no key parameter"))
        );
        assert_eq!(
            v(&format!("1 NULL_HMAC_SHA1_80 inline:{K30}")),
            Err(CryptoError::UnknownSuite)
        );
        assert_eq!(
            v(&format!("1 SEED_CTR_128_HMAC_SHA1_80 inline:{K30}")),
            Err(CryptoError::UnknownSuite)
        );
        assert_eq!(
            v(&format!("1\tAES_CM_128_HMAC_SHA1_80  inline:{K30}  ")),
            Ok(Suite::AesCm128HmacSha1_80)
        );
    }

    #[test]
    fn lifetime_forms() {
        let lt = |l: &str| v(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|{l}"));
        for ok in ["2^20", "2^31", "2^48", "2^0", "1048576", "1", "281474976710656"] {
            assert!(lt(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2^49",
            "2^",
            "2^100",
            "0",
            "281474976710657",
            "3^20",
            "-5",
            "",
            "20x",
            "1e6",
        ] {
            assert_eq!(lt(bad), Err(CryptoError::Lifetime), "{bad}");
        }
        assert_eq!(lt("2^20|2^20"), Err(CryptoError::Syntax("two lifetimes")));
    }

    #[test]
    fn mki_forms() {
        let mk = |m: &str| v(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|{m}"));
        for ok in [
            "1:4",
            "2^20|1:4",
            "255:1",
            "0:1",
            "1:128",
            "65535:2",
            "99999999999999999999999:16",
        ] {
            assert!(mk(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1:0", "1:129", "256:1", "1:", ":4", "a:4", "1:4:4", "1:0004", "65536:2",
        ] {
            assert_eq!(mk(bad), Err(CryptoError::Mki), "{bad}");
        }
        assert_eq!(mk("1:4|2^20"), Err(CryptoError::Syntax("field after the MKI")));
        assert_eq!(mk("2^20|1:4|5"), Err(CryptoError::Syntax("field after the MKI")));
    }

    #[test]
    fn multiple_keys() {
        let k2 = "QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5";
        let two = |a: &str, b: &str| {
            v(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{K30}{a};inline:{k2}{b}"
            ))
        };
        assert!(two("|1:4", "|2:4").is_ok());
        assert!(two("|2^20|1:4", "|2^20|2:4").is_ok());
        assert_eq!(two("", ""), Err(CryptoError::MultiKeyMki));
        assert_eq!(two("|1:4", ""), Err(CryptoError::MultiKeyMki));
        assert_eq!(two("|1:4", "|2:2"), Err(CryptoError::MultiKeyMki));
        assert_eq!(
            two("|1:4", "|2:4;"),
            Err(CryptoError::Syntax("key-param without ':'"))
        );
        // The second key is bad: the whole line is.
        assert_eq!(
            v(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|1:4;inline:shor|2:4"
            )),
            Err(CryptoError::KeyLength { got: 3, want: 30 })
        );
    }

    #[test]
    fn session_params() {
        let sp = |p: &str| v(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} {p}"));
        for ok in [
            "KDR=0",
            "KDR=24",
            "WSH=64",
            "FEC_ORDER=SRTP_FEC",
            "-X-VENDOR=1",
            "KDR=1 WSH=128",
        ] {
            assert!(sp(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            sp("UNENCRYPTED_SRTP"),
            Err(CryptoError::WeakParam("UNENCRYPTED_SRTP"))
        );
        assert_eq!(
            sp("KDR=1 UNENCRYPTED_SRTCP"),
            Err(CryptoError::WeakParam("UNENCRYPTED_SRTCP"))
        );
        assert_eq!(
            sp("unauthenticated_srtp"),
            Err(CryptoError::WeakParam("UNAUTHENTICATED_SRTP"))
        );
        for bad in ["KDR=25", "KDR=", "WSH=10", "FEC_ORDER=X", "FANCY=1", "KDR=1\x01"] {
            assert!(matches!(sp(bad), Err(CryptoError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn fingerprints() {
        let fp32 =
            "4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF";
        assert_eq!(validate_fingerprint(format!("sha-256 {fp32}").as_bytes()), Ok(()));
        assert_eq!(
            validate_fingerprint(format!("SHA-256 {}", fp32.to_lowercase()).as_bytes()),
            Ok(())
        );
        assert_eq!(
            validate_fingerprint(format!("sha-1 {fp32}").as_bytes()),
            Err(FpError::Length { got: 32, want: 20 })
        );
        assert_eq!(
            validate_fingerprint(b"md5 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B"),
            Err(FpError::WeakHash)
        );
        assert_eq!(validate_fingerprint(b"sha-999 4A:AD"), Err(FpError::UnknownHash));
        assert_eq!(validate_fingerprint(b"sha-256"), Err(FpError::Syntax));
        assert_eq!(validate_fingerprint(b"sha-256 4A:AD:B"), Err(FpError::Syntax));
        assert_eq!(validate_fingerprint(b"sha-256 4A::AD"), Err(FpError::Syntax));
        assert_eq!(validate_fingerprint(b"sha-256 ZZ:AD"), Err(FpError::Syntax));
        assert_eq!(
            validate_fingerprint(format!("sha-256 {fp32} x").as_bytes()),
            Err(FpError::Syntax)
        );
    }
}
