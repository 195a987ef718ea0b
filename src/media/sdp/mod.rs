//! SDP/SRTP policy check: is every active media stream of an offer or
//! answer encrypted, with keys that are well-formed and allowed?
//!
//! [`check`] takes the Content-Type header value and the body of a request
//! or reply. It finds the SDP (a plain `application/sdp` body, a body
//! without Content-Type whose first line is `v=`, or every
//! `application/sdp` part of a `multipart/*` body: with several SDP parts,
//! e.g. `multipart/alternative`, the receiver may pick any, so each must
//! pass) and judges every active media stream (port not 0, or port 0 with
//! `a=bundle-only`, RFC 8843):
//!
//! * `RTP/SAVP`, `RTP/SAVPF`: needs at least one media-level `a=crypto`
//!   line that is well-formed ([`crypto`]) and whose suite the policy
//!   allows. Other crypto lines of the stream are alternatives the answer
//!   will not pick or that the check of the answer catches, so they are
//!   ignored once one line passes.
//! * `UDP/TLS/RTP/SAVP(F)`, `TCP/DTLS/RTP/SAVP(F)` and the DTLS SCTP data
//!   channel: DTLS-SRTP; needs the policy's `dtls` and a well-formed
//!   `a=fingerprint` (a hash of the SHA-2 family or SHA-1) at media level,
//!   or at session level when the stream has none.
//! * `RTP/AVP`, `RTP/AVPF` with a media-level `a=crypto` ("optimistic"
//!   SRTP, best effort): only with the policy's `optimistic`, and then
//!   judged as `RTP/SAVP`.
//! * anything else (`RTP/AVP` without crypto, `udptl`, MSRP, ...) is
//!   cleartext.
//!
//! The first failing stream decides. Session-level `a=crypto` (not valid
//! per RFC 4568) keys no stream; attribute text inside another line does
//! not count, because attributes are recognised only at line start.
//!
//! # Results and the suggested SIP reply ([`SdpVerdict::sip_status`])
//!
//! | verdict | code | reply | meaning |
//! |---|---|---|---|
//! | `Ok` | 1 | - | every active stream is encrypted (also: no or only disabled streams) |
//! | `NoSdp` | -1 | 400 | no body, not SDP, no SDP part, no `v=` first line |
//! | `Cleartext` | -2 | 488 | a stream is not SRTP (or uses DTLS / optimistic SRTP the policy refuses) |
//! | `BadCrypto` | -3 | 488 | a secure profile whose keying is missing, malformed, weak or not allowed |
//! | `TooComplex` | -4 | 488 | body over [`MAX_BODY`], more than [`MAX_STREAMS`] streams in one SDP, an encoded SDP part or a nested multipart; or a body other parsers could read differently: a lone CR or NUL in an SDP, a line not `x=value`, a delimiter-like line in a multipart body, two `boundary` parameters, a part with two Content-Types |
//!
//! `TooComplex` maps to 488 rather than 400: such a body may be valid SIP,
//! it is this proxy that will not accept it (488 Not Acceptable Here).
//!
//! # Cost
//! The check allocates nothing: it iterates over the byte slices, keeps
//! slices of the input and counters, decodes keys into a stack buffer and
//! formats the reason with `core::fmt::Write` (e.g. into a [`ReasonBuf`]
//! over a caller's fixed buffer). Time is linear in the body length (at
//! most [`MAX_BODY`] bytes are looked at), there is no recursion, no
//! indexing that can panic and no unwrap on input.

mod base64;
mod body;
pub mod crypto;
mod parse;
pub mod policy;

#[cfg(test)]
mod tests;

use core::fmt::{self, Write};

pub use policy::{SdpPolicy, Suite, SuiteSet};

/// Bodies longer than this are not parsed: [`SdpVerdict::TooComplex`].
/// (Kamailio's default maximum message size is 64 KiB too.)
pub const MAX_BODY: usize = 64 * 1024;
/// More media streams than this in one SDP: [`SdpVerdict::TooComplex`].
pub const MAX_STREAMS: usize = 64;

/// The result of [`check`]; the `i32` values are fixed (C ABI, script).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpVerdict {
    Ok = 1,
    NoSdp = -1,
    Cleartext = -2,
    BadCrypto = -3,
    TooComplex = -4,
}

impl SdpVerdict {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The reply a script should send to a request with this verdict
    /// (0 for `Ok`): 400 for `NoSdp`, 488 for the others.
    pub fn sip_status(self) -> u16 {
        match self {
            SdpVerdict::Ok => 0,
            SdpVerdict::NoSdp => 400,
            SdpVerdict::Cleartext | SdpVerdict::BadCrypto | SdpVerdict::TooComplex => 488,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SdpVerdict::Ok => "ok",
            SdpVerdict::NoSdp => "no-sdp",
            SdpVerdict::Cleartext => "cleartext",
            SdpVerdict::BadCrypto => "bad-crypto",
            SdpVerdict::TooComplex => "too-complex",
        }
    }
}

impl fmt::Display for SdpVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Input bytes shown in a reason: printable ASCII as is, anything else as
/// `?`, at most 40 bytes (then `...`). Keeps logs and headers clean.
pub(crate) struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        for &c in self.0.iter().take(MAX) {
            f.write_char(if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            })?;
        }
        if self.0.len() > MAX {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// A `core::fmt::Write` over a caller's fixed buffer: what does not fit is
/// dropped (at a character boundary), writing never fails. No NUL is
/// added: a C caller keeps one byte spare and terminates at `len()`.
pub struct ReasonBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
    truncated: bool,
}

impl<'a> ReasonBuf<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        ReasonBuf {
            buf,
            len: 0,
            truncated: false,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when some text did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

impl Write for ReasonBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let mut n = s.len().min(room);
        while n > 0 && !s.is_char_boundary(n) {
            n -= 1;
        }
        if n < s.len() {
            self.truncated = true;
        }
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        Ok(())
    }
}

fn fail<W: Write>(w: &mut W, v: SdpVerdict, args: fmt::Arguments) -> SdpVerdict {
    let _ = w.write_fmt(args);
    v
}

/// Checks the SDP of a message body against `policy`; writes a short
/// static-shaped reason (also for `Ok`) into `reason`. See the module doc.
/// The transport is not considered (as if the signalling were encrypted):
/// use [`check_signalled`] where the policy's `sdes_tls` should apply.
pub fn check(content_type: &[u8], body: &[u8], policy: &SdpPolicy, reason: &mut impl Write) -> SdpVerdict {
    check_signalled(content_type, body, policy, true, reason)
}

/// [`check`], telling whether the message came over TLS: with the
/// policy's `sdes_tls`, SDES-keyed streams then need `signalling_tls`.
pub fn check_signalled(
    content_type: &[u8],
    body: &[u8],
    policy: &SdpPolicy,
    signalling_tls: bool,
    reason: &mut impl Write,
) -> SdpVerdict {
    if body.len() > MAX_BODY {
        return fail(
            reason,
            SdpVerdict::TooComplex,
            format_args!("body of {} bytes is over the {MAX_BODY}-byte limit", body.len()),
        );
    }
    if body::trim(body).is_empty() {
        return fail(reason, SdpVerdict::NoSdp, format_args!("no message body"));
    }
    let (summary, sdp_parts) = match body::classify(content_type) {
        body::BodyKind::Sdp => match parse::check_sdp(
            body,
            policy,
            reason,
            &parse::Place {
                part: None,
                signalling_tls,
            },
        ) {
            Ok(s) => (s, 1),
            Err(v) => return v,
        },
        body::BodyKind::Other => {
            return fail(
                reason,
                SdpVerdict::NoSdp,
                format_args!("Content-Type is not application/sdp or multipart"),
            )
        }
        body::BodyKind::MultipartNoBoundary => {
            return fail(
                reason,
                SdpVerdict::NoSdp,
                format_args!("multipart Content-Type without exactly one valid boundary"),
            )
        }
        body::BodyKind::Multipart(boundary) => {
            let mut total = parse::Summary {
                streams: 0,
                active: 0,
            };
            let mut sdp_parts = 0usize;
            let mut parts = body::Parts::new(body, boundary);
            for (i, part) in parts.by_ref().enumerate() {
                let n = i + 1;
                match body::split_part(part) {
                    (body::PartKind::Sdp, content) => {
                        sdp_parts += 1;
                        match parse::check_sdp(
                            content,
                            policy,
                            reason,
                            &parse::Place {
                                part: Some(n),
                                signalling_tls,
                            },
                        ) {
                            Ok(s) => {
                                total.streams += s.streams;
                                total.active += s.active;
                            }
                            Err(v) => return v,
                        }
                    }
                    (body::PartKind::EncodedSdp, _) => {
                        return fail(
                            reason,
                            SdpVerdict::TooComplex,
                            format_args!("sdp part {n}: transfer-encoded SDP is not supported"),
                        )
                    }
                    (body::PartKind::Nested, _) => {
                        return fail(
                            reason,
                            SdpVerdict::TooComplex,
                            format_args!("part {n}: nested multipart is not supported"),
                        )
                    }
                    (body::PartKind::Ambiguous, _) => {
                        return fail(
                            reason,
                            SdpVerdict::TooComplex,
                            format_args!("part {n}: more than one Content-Type"),
                        )
                    }
                    (body::PartKind::Other, _) => {}
                }
            }
            if parts.malformed {
                return fail(
                    reason,
                    SdpVerdict::TooComplex,
                    format_args!("multipart body: a line starts with the boundary but is no delimiter"),
                );
            }
            if sdp_parts == 0 {
                return fail(
                    reason,
                    SdpVerdict::NoSdp,
                    format_args!("multipart body has no application/sdp part"),
                );
            }
            (total, sdp_parts)
        }
    };
    let _ = write!(
        reason,
        "ok: {} of {} media streams active, all encrypted",
        summary.active, summary.streams
    );
    if sdp_parts > 1 {
        let _ = write!(reason, " ({sdp_parts} sdp parts)");
    }
    SdpVerdict::Ok
}
