//! `cargo fuzz run sdp_check`: any Content-Type, body and policy give a
//! verdict and a reason without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipguard::media::sdp::{check, ReasonBuf, SdpPolicy, SdpVerdict};

const CONTENT_TYPES: [&[u8]; 4] = [
    b"application/sdp",
    b"multipart/mixed;boundary=b",
    b"multipart/alternative; boundary=\"unique-boundary-1\"",
    b"Application/SDP; charset=x",
];

fuzz_target!(|data: &[u8]| {
    // First byte: Content-Type and policy choice; a second form takes the
    // Content-Type from the input up to the first NUL.
    let (&sel, rest) = match data.split_first() {
        Some(x) => x,
        None => return,
    };
    let (ct, body): (&[u8], &[u8]) = if sel & 0x80 != 0 {
        match rest.iter().position(|&c| c == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[]),
        }
    } else {
        (CONTENT_TYPES[usize::from(sel & 3)], rest)
    };
    let policy = match (sel >> 2) & 3 {
        0 => SdpPolicy::default(),
        1 => SdpPolicy::parse("dtls=0;optimistic=1").unwrap(),
        2 => SdpPolicy::parse("suites=AES_CM_128_HMAC_SHA1_32,F8_128_HMAC_SHA1_80").unwrap(),
        _ => SdpPolicy::parse(&String::from_utf8_lossy(body)).unwrap_or_default(),
    };
    let mut buf = [0u8; 128];
    let mut reason = ReasonBuf::new(&mut buf);
    let verdict = check(ct, body, &policy, &mut reason);
    assert!(!reason.is_empty());
    assert!(core::str::from_utf8(reason.as_bytes()).is_ok());
    assert!(matches!(
        verdict,
        SdpVerdict::Ok
            | SdpVerdict::NoSdp
            | SdpVerdict::Cleartext
            | SdpVerdict::BadCrypto
            | SdpVerdict::TooComplex
    ));
});
