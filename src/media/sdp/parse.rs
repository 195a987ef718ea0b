//! One SDP walked line by line (LF or CRLF), streaming: the session-level
//! attributes come first, and each media section is judged as soon as the
//! next `m=` line (or the end) closes it. Only slices of the input and a
//! few counters are kept: no allocation, linear time, no recursion.
//!
//! Attributes are recognised only at the start of a line (`a=crypto:`), so
//! the text `a=crypto:` inside another attribute's value is not counted,
//! and `a=crypto` before the first `m=` (session level, which RFC 4568 does
//! not allow) does not key any stream.

use super::crypto::{self, CryptoError, CryptoId, FpError};
use super::policy::SdpPolicy;
use super::{SdpVerdict, Shown, MAX_STREAMS};
use core::fmt::{self, Write};

/// Lines split at LF with one trailing CR removed.
pub(crate) fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Transport profiles as far as encryption goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// RTP/SAVP, RTP/SAVPF: SDES keys in a=crypto.
    Savp,
    /// DTLS-SRTP and the DTLS data channel: keyed by the handshake,
    /// authenticated by a=fingerprint.
    Dtls,
    /// RTP/AVP, RTP/AVPF: cleartext unless optimistic SRTP is allowed.
    Avp,
    /// Anything else (udptl, TCP/MSRP, TCP/BFCP, ...): not SRTP.
    Other,
}

fn classify(proto: &[u8]) -> Profile {
    let is = |names: &[&str]| names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(proto));
    if is(&["RTP/SAVP", "RTP/SAVPF"]) {
        Profile::Savp
    } else if is(&[
        "UDP/TLS/RTP/SAVP",
        "UDP/TLS/RTP/SAVPF",
        "TCP/DTLS/RTP/SAVP",
        "TCP/DTLS/RTP/SAVPF",
        "UDP/DTLS/SCTP",
        "TCP/DTLS/SCTP",
        "DTLS/SCTP",
    ]) {
        Profile::Dtls
    } else if is(&["RTP/AVP", "RTP/AVPF"]) {
        Profile::Avp
    } else {
        Profile::Other
    }
}

/// a=fingerprint lines seen at one level.
#[derive(Debug, Default, Clone, Copy)]
struct Fingerprints {
    lines: u32,
    ok: bool,
    first_err: Option<FpError>,
}

impl Fingerprints {
    fn add(&mut self, value: &[u8]) {
        self.lines = self.lines.saturating_add(1);
        if self.ok {
            return;
        }
        match crypto::validate_fingerprint(value) {
            Ok(()) => self.ok = true,
            Err(e) => {
                self.first_err.get_or_insert(e);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Session {
    crypto_lines: u32,
    fingerprints: Fingerprints,
}

#[derive(Debug, Default)]
struct Stream<'a> {
    index: usize,
    media: &'a [u8],
    proto: &'a [u8],
    port_zero: bool,
    bundle_only: bool,
    crypto_lines: u32,
    crypto_ok: bool,
    crypto_err: Option<(CryptoId<'a>, CryptoError)>,
    fingerprints: Fingerprints,
}

impl<'a> Stream<'a> {
    /// `m=<media> <port>[/<count>] <proto> <fmt> ...` (value after `m=`).
    fn new(index: usize, value: &'a [u8]) -> Self {
        let mut f = crypto::fields(value);
        let media = f.next().unwrap_or_default();
        let port = f.next().unwrap_or_default();
        let proto = f.next().unwrap_or_default();
        let port = port.split(|&c| c == b'/').next().unwrap_or_default();
        Stream {
            index,
            media,
            proto,
            port_zero: !port.is_empty() && port.iter().all(|&c| c == b'0'),
            ..Stream::default()
        }
    }

    fn add_crypto(&mut self, value: &'a [u8], policy: &SdpPolicy) {
        self.crypto_lines = self.crypto_lines.saturating_add(1);
        if self.crypto_ok {
            return;
        }
        let (id, result) = crypto::validate(value);
        let result = result.and_then(|s| {
            if policy.suites.contains(s) {
                Ok(())
            } else {
                Err(CryptoError::NotAllowed)
            }
        });
        match result {
            Ok(()) => self.crypto_ok = true,
            Err(e) => {
                self.crypto_err.get_or_insert((id, e));
            }
        }
    }
}

/// Where a failure is: which multipart part (if any) and stream.
pub(crate) struct Place {
    pub part: Option<usize>,
    /// The message came over TLS (for the policy's `sdes_tls`).
    pub signalling_tls: bool,
}

impl Place {
    fn fail<W: Write>(
        &self,
        w: &mut W,
        v: SdpVerdict,
        s: Option<&Stream>,
        args: fmt::Arguments,
    ) -> SdpVerdict {
        if let Some(p) = self.part {
            let _ = write!(w, "sdp part {p}: ");
        }
        if let Some(s) = s {
            let _ = write!(w, "stream {} ({}) ", s.index, Shown(s.media));
        }
        let _ = w.write_fmt(args);
        v
    }
}

/// Counts of a passed SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub streams: usize,
    pub active: usize,
}

/// The first line that other SDP parsers could read differently, by
/// number: a lone CR (a line break to sofia-sip and pjsip), a NUL, or a line
/// that is not `<lowercase letter>=` (e.g. ` m=` after leading white space,
/// which lenient parsers take as a media line). Empty lines are allowed.
fn ambiguous_line(sdp: &[u8]) -> Option<(usize, &'static str)> {
    let is_field = |l: &[u8]| l.len() >= 2 && l[0].is_ascii_lowercase() && l[1] == b'=';
    lines(sdp).enumerate().find_map(|(i, line)| {
        let why = if line.contains(&b'\r') {
            "a CR without LF"
        } else if line.contains(&0) {
            "a NUL byte"
        } else if !(line.is_empty() || is_field(line)) {
            "no x=value form"
        } else {
            return None;
        };
        Some((i + 1, why))
    })
}

/// Checks one SDP; on failure writes the reason and returns the verdict.
pub(crate) fn check_sdp<W: Write>(
    sdp: &[u8],
    policy: &SdpPolicy,
    w: &mut W,
    place: &Place,
) -> Result<Summary, SdpVerdict> {
    let mut it = lines(sdp).skip_while(|l| l.is_empty());
    if !it.next().is_some_and(|l| l.starts_with(b"v=")) {
        return Err(place.fail(
            w,
            SdpVerdict::NoSdp,
            None,
            format_args!("body is not SDP (no v= line first)"),
        ));
    }
    if let Some((n, why)) = ambiguous_line(sdp) {
        return Err(place.fail(
            w,
            SdpVerdict::TooComplex,
            None,
            format_args!("malformed SDP: line {n} has {why}"),
        ));
    }
    let mut session = Session::default();
    let mut current: Option<Stream> = None;
    let mut summary = Summary {
        streams: 0,
        active: 0,
    };
    for line in it {
        if let Some(value) = line.strip_prefix(b"m=") {
            if let Some(s) = current.take() {
                summary.active += usize::from(judge(&s, &session, policy, w, place)?);
            }
            summary.streams += 1;
            if summary.streams > MAX_STREAMS {
                return Err(place.fail(
                    w,
                    SdpVerdict::TooComplex,
                    None,
                    format_args!("more than {MAX_STREAMS} media streams"),
                ));
            }
            current = Some(Stream::new(summary.streams, value));
        } else if let Some(attr) = line.strip_prefix(b"a=") {
            let (name, value) = match attr.iter().position(|&c| c == b':') {
                Some(i) => (
                    attr.get(..i).unwrap_or_default(),
                    attr.get(i + 1..).unwrap_or_default(),
                ),
                None => (attr, &b""[..]),
            };
            match (&mut current, name) {
                (Some(s), b"crypto") => s.add_crypto(value, policy),
                (Some(s), b"fingerprint") => s.fingerprints.add(value),
                (Some(s), b"bundle-only") => s.bundle_only = true,
                (None, b"crypto") => session.crypto_lines = session.crypto_lines.saturating_add(1),
                (None, b"fingerprint") => session.fingerprints.add(value),
                _ => {}
            }
        }
    }
    if let Some(s) = current.take() {
        summary.active += usize::from(judge(&s, &session, policy, w, place)?);
    }
    Ok(summary)
}

/// Ok(true): active and encrypted; Ok(false): disabled (port 0).
fn judge<W: Write>(
    s: &Stream,
    session: &Session,
    policy: &SdpPolicy,
    w: &mut W,
    place: &Place,
) -> Result<bool, SdpVerdict> {
    // RFC 8843: port 0 with a=bundle-only is an active, bundled stream.
    if s.port_zero && !s.bundle_only {
        return Ok(false);
    }
    let proto = Shown(s.proto);
    let session_note = if session.crypto_lines > 0 {
        " (a=crypto at session level does not count)"
    } else {
        ""
    };
    let mut fail = |v: SdpVerdict, args: fmt::Arguments<'_>| -> Result<bool, SdpVerdict> {
        Err(place.fail(w, v, Some(s), args))
    };
    match classify(s.proto) {
        Profile::Savp => {}
        Profile::Avp if s.crypto_lines == 0 => {
            return fail(
                SdpVerdict::Cleartext,
                format_args!("is {proto}: cleartext{session_note}"),
            );
        }
        Profile::Avp if !policy.allow_optimistic => {
            return fail(
                SdpVerdict::Cleartext,
                format_args!("is {proto} with a=crypto (optimistic SRTP), not allowed by policy"),
            );
        }
        Profile::Avp => {}
        Profile::Dtls if !policy.allow_dtls => {
            return fail(
                SdpVerdict::Cleartext,
                format_args!("is {proto} (DTLS-SRTP), not allowed by policy"),
            );
        }
        Profile::Dtls => {
            let fp = if s.fingerprints.lines > 0 {
                &s.fingerprints
            } else {
                &session.fingerprints
            };
            return match (fp.ok, fp.first_err) {
                (true, _) => Ok(true),
                (false, Some(e)) => fail(SdpVerdict::BadCrypto, format_args!("is {proto}: {e}")),
                (false, None) => fail(
                    SdpVerdict::BadCrypto,
                    format_args!("is {proto} without a=fingerprint"),
                ),
            };
        }
        Profile::Other if s.proto.is_empty() => {
            return fail(SdpVerdict::Cleartext, format_args!("has a malformed m= line"));
        }
        Profile::Other => {
            return fail(
                SdpVerdict::Cleartext,
                format_args!("has profile {proto}: not SRTP"),
            );
        }
    }
    match (s.crypto_ok, s.crypto_err) {
        (true, _) if policy.sdes_needs_tls && !place.signalling_tls => fail(
            SdpVerdict::Cleartext,
            format_args!("has SDES keys (a=crypto) sent over unencrypted signalling"),
        ),
        (true, _) => Ok(true),
        (false, Some((id, e))) => fail(
            SdpVerdict::BadCrypto,
            format_args!("a=crypto:{} {}: {e}", Shown(id.tag), Shown(id.suite)),
        ),
        (false, None) => fail(
            SdpVerdict::BadCrypto,
            format_args!("is {proto} without a media-level a=crypto{session_note}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles() {
        assert_eq!(classify(b"RTP/SAVP"), Profile::Savp);
        assert_eq!(classify(b"RTP/SAVPF"), Profile::Savp);
        assert_eq!(classify(b"rtp/savp"), Profile::Savp);
        assert_eq!(classify(b"UDP/TLS/RTP/SAVPF"), Profile::Dtls);
        assert_eq!(classify(b"UDP/DTLS/SCTP"), Profile::Dtls);
        assert_eq!(classify(b"RTP/AVP"), Profile::Avp);
        assert_eq!(classify(b"RTP/AVPF"), Profile::Avp);
        assert_eq!(classify(b"udptl"), Profile::Other);
        assert_eq!(classify(b"RTP/SAVPX"), Profile::Other);
        assert_eq!(classify(b""), Profile::Other);
    }

    #[test]
    fn m_line_fields() {
        let s = Stream::new(1, b"audio 0 RTP/AVP 0");
        assert!(s.port_zero);
        let s = Stream::new(1, b"video 0/2 RTP/AVP 31");
        assert!(s.port_zero);
        let s = Stream::new(1, b"audio 49170/2 RTP/SAVP 0");
        assert!(!s.port_zero);
        assert_eq!((s.media, s.proto), (&b"audio"[..], &b"RTP/SAVP"[..]));
        let s = Stream::new(1, b"audio x RTP/SAVP");
        assert!(!s.port_zero);
        let s = Stream::new(1, b"");
        assert!(!s.port_zero && s.proto.is_empty());
    }

    #[test]
    fn line_splitting() {
        let v: Vec<&[u8]> = lines(b"a\r\nb\nc\r\r\n\r").collect();
        assert_eq!(v, [&b"a"[..], b"b", b"c\r", b""]);
    }
}
