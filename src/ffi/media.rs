//! The encrypted signalling and media part of the C ABI: the SDP/SRTP
//! policy and the Contact TLS test. Same rules as [`crate::ffi`].

use crate::ffi::{boundary, bytes, handle, out, text, write_err, Status, SIPGUARD_SDP_SIGNALLING_TLS};
use crate::media::sdp::{self, ReasonBuf, SdpPolicy};
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

// ---- encrypted signalling and media -------------------------------------------

/// Parse an SDP policy spec such as
/// "suites=AES_CM_128_HMAC_SHA1_80,AEAD_AES_256_GCM;dtls=1;optimistic=0;sdes_tls=1"
/// into an opaque, process-local, read-only policy (built at start-up).
/// An empty spec is the default policy. On error a message naming the bad
/// token is written to err.
///
/// # Safety
/// `spec` valid for `spec_len`; `out` writable; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sdp_policy_new(
    spec: *const c_char,
    spec_len: usize,
    out: *mut *mut SdpPolicy,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (spec, out) = unsafe { (text(spec, spec_len)?, crate::ffi::out(out)?) };
        let policy = SdpPolicy::parse(spec).map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        *out = Box::into_raw(Box::new(policy));
        Ok(())
    })
}

/// Free a policy (NULL is ignored).
///
/// # Safety
/// `policy` null or from `sipguard_sdp_policy_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sdp_policy_free(policy: *mut SdpPolicy) {
    if !policy.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_sdp_policy_new.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(policy) })));
    }
}

/// Check a message body against policy. content_type is the Content-Type
/// header value (may be empty: then the body is taken as SDP if it looks
/// like SDP). flags: SIPGUARD_SDP_SIGNALLING_TLS when the message came over
/// TLS (with the policy's sdes_tls, SDES keys need it). *verdict_out
/// receives a sipguard_sdp_verdict; reason (may be NULL) a NUL-terminated
/// explanation such as "stream 2 (video) is RTP/AVP: cleartext". Allocates
/// nothing.
///
/// # Safety
/// `policy` live; buffers valid for their lengths; `verdict_out` writable;
/// `reason` null or writable for `reason_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sdp_check(
    policy: *const SdpPolicy,
    content_type: *const c_char,
    content_type_len: usize,
    body: *const u8,
    body_len: usize,
    flags: u32,
    verdict_out: *mut i32,
    reason: *mut c_char,
    reason_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (policy, ctype, body, verdict_out) = unsafe {
            (
                handle(policy)?,
                bytes(content_type.cast(), content_type_len)?,
                bytes(body, body_len)?,
                out(verdict_out)?,
            )
        };
        // Room for the NUL the C side needs; a scratch buffer when it wants no text.
        let mut scratch = [0u8; 1];
        let text_buf: &mut [u8] = if reason.is_null() || reason_len == 0 {
            &mut scratch[..0]
        } else {
            // SAFETY: writable for reason_len bytes, per the contract.
            unsafe { std::slice::from_raw_parts_mut(reason.cast::<u8>(), reason_len - 1) }
        };
        let mut why = ReasonBuf::new(text_buf);
        let signalling_tls = flags & SIPGUARD_SDP_SIGNALLING_TLS != 0;
        *verdict_out = sdp::check_signalled(ctype, body, policy, signalling_tls, &mut why).code();
        let n = why.len();
        if !reason.is_null() && reason_len > 0 {
            // SAFETY: n <= reason_len - 1.
            unsafe { *reason.add(n) = 0 };
        }
        Ok(())
    })
}

/// Whether a Contact header value asks for TLS: every contact URI is
/// "sips:" or its last transport parameter is "tls" or "wss"
/// (case-insensitive); "*" counts as yes. *out = 1 yes, 0 no.
///
/// # Safety
/// `contact` valid for `contact_len`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_contact_wants_tls(
    contact: *const c_char,
    contact_len: usize,
    out: *mut i32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (contact, out) = unsafe { (bytes(contact.cast(), contact_len)?, crate::ffi::out(out)?) };
        *out = crate::media::contact::wants_tls(contact) as i32;
        Ok(())
    })
}
