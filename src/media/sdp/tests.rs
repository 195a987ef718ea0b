//! Rule-by-rule and trap tests of `check`.

use super::*;

const K1: &str = "6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jVWM";
const K2: &str = "w1wfn90tAl8eL925LwRiQfTjqJmOX/Gx7xYGaqwU";
const K46: &str = "szchn7+NM1e7TMHXV1EPpNKzKhqyNwNECrT+brN+XXp9TBlwtCbYiAMx0Qvy/w==";
const K28: &str = "SuTCKxC7ZJgv34+YjPaQZvOBqozss5YSqJ33hQ==";
const K44: &str = "5NHJctdQZBx4GKGfDpP+yY+3qfLty/ckW2swEM2Pnj9I9nk05xciYe8du1c=";
const FP: &str =
    "sha-256 02:32:FC:FA:96:73:83:AA:BF:28:9B:EC:B8:41:DF:16:3D:B5:F9:9E:02:E9:99:90:DE:DC:F7:BF:E3:1C:CB:CB";

const HEAD: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";

fn run_with(ct: &str, body: &str, policy: &SdpPolicy) -> (SdpVerdict, String) {
    let mut buf = [0u8; 256];
    let mut r = ReasonBuf::new(&mut buf);
    let v = check(ct.as_bytes(), body.as_bytes(), policy, &mut r);
    (v, r.as_str().to_string())
}

/// The SDP `HEAD + rest` (LF in the source) checked as CRLF and as LF:
/// both must agree; returns the CRLF result.
fn sdp_with(rest: &str, policy: &SdpPolicy) -> (SdpVerdict, String) {
    let lf = format!("{HEAD}{rest}");
    let crlf = lf.replace('\n', "\r\n");
    let a = run_with("application/sdp", &crlf, policy);
    let b = run_with("application/sdp", &lf, policy);
    assert_eq!(a, b, "CRLF and LF disagree");
    a
}

fn sdp(rest: &str) -> (SdpVerdict, String) {
    sdp_with(rest, &SdpPolicy::default())
}

fn pol(spec: &str) -> SdpPolicy {
    SdpPolicy::parse(spec).unwrap()
}

#[test]
fn verdict_codes_are_fixed() {
    assert_eq!(SdpVerdict::Ok.code(), 1);
    assert_eq!(SdpVerdict::NoSdp.code(), -1);
    assert_eq!(SdpVerdict::Cleartext.code(), -2);
    assert_eq!(SdpVerdict::BadCrypto.code(), -3);
    assert_eq!(SdpVerdict::TooComplex.code(), -4);
    assert_eq!(SdpVerdict::NoSdp.sip_status(), 400);
    assert_eq!(SdpVerdict::TooComplex.sip_status(), 488);
    assert_eq!(SdpVerdict::Ok.sip_status(), 0);
}

#[test]
fn all_streams_srtp_ok() {
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n\
         m=video 4002 RTP/SAVPF 96\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K2}|2^31\n"
    ));
    assert_eq!(v, SdpVerdict::Ok, "{r}");
    assert_eq!(r, "ok: 2 of 2 media streams active, all encrypted");
}

#[test]
fn every_allowed_suite_with_its_key_length() {
    for (suite, key) in [
        ("AES_CM_128_HMAC_SHA1_80", K1),
        ("AES_256_CM_HMAC_SHA1_80", K46),
        ("AEAD_AES_128_GCM", K28),
        ("AEAD_AES_256_GCM", K44),
    ] {
        let (v, r) = sdp(&format!(
            "m=audio 4000 RTP/SAVP 0\na=crypto:7 {suite} inline:{key}|2^20|1:4\n"
        ));
        assert_eq!(v, SdpVerdict::Ok, "{suite}: {r}");
        // A key of another suite's length is refused.
        let other = if key == K1 { K46 } else { K1 };
        let (v, r) = sdp(&format!(
            "m=audio 4000 RTP/SAVP 0\na=crypto:7 {suite} inline:{other}\n"
        ));
        assert_eq!(v, SdpVerdict::BadCrypto, "{suite}: {r}");
        assert!(r.contains("bytes, suite needs"), "{r}");
    }
}

#[test]
fn audio_srtp_video_rtp_is_cleartext() {
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\nm=video 4002 RTP/AVP 96\n"
    ));
    assert_eq!(v, SdpVerdict::Cleartext);
    assert_eq!(r, "stream 2 (video) is RTP/AVP: cleartext");
}

#[test]
fn plain_rtp_is_cleartext() {
    let (v, r) = sdp("m=audio 4000 RTP/AVP 0 8 101\na=rtpmap:101 telephone-event/8000\n");
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::Cleartext, "stream 1 (audio) is RTP/AVP: cleartext")
    );
    let (v, _) = sdp("m=audio 4000 RTP/AVPF 0\n");
    assert_eq!(v, SdpVerdict::Cleartext);
}

#[test]
fn session_level_crypto_does_not_count() {
    let (v, r) = sdp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\nm=audio 4000 RTP/AVP 0\n"
    ));
    assert_eq!(v, SdpVerdict::Cleartext);
    assert!(r.ends_with("(a=crypto at session level does not count)"), "{r}");
    let (v, r) = sdp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\nm=audio 4000 RTP/SAVP 0\n"
    ));
    assert_eq!(v, SdpVerdict::BadCrypto);
    assert_eq!(
        r,
        "stream 1 (audio) is RTP/SAVP without a media-level a=crypto (a=crypto at session level does not count)"
    );
    // Session level plus media level: the media level line counts.
    let (v, _) = sdp(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\nm=audio 4000 RTP/SAVP 0\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K2}\n"
    ));
    assert_eq!(v, SdpVerdict::Ok);
}

#[test]
fn disabled_stream_without_crypto_is_fine() {
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\nm=video 0 RTP/AVP 31\n\
         m=image 0 udptl t38\n"
    ));
    assert_eq!(v, SdpVerdict::Ok, "{r}");
    assert_eq!(r, "ok: 1 of 3 media streams active, all encrypted");
    let (v, _) = sdp("m=audio 0 RTP/AVP 0\n");
    assert_eq!(v, SdpVerdict::Ok);
}

#[test]
fn bundle_only_port_zero_is_active() {
    let (v, r) = sdp(&format!(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=fingerprint:{FP}\nm=video 0 RTP/AVP 96\na=bundle-only\n"
    ));
    assert_eq!(v, SdpVerdict::Cleartext);
    assert_eq!(r, "stream 2 (video) is RTP/AVP: cleartext");
    let (v, _) = sdp(&format!(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=fingerprint:{FP}\nm=video 0 UDP/TLS/RTP/SAVPF 96\na=bundle-only\n\
         a=fingerprint:{FP}\n"
    ));
    assert_eq!(v, SdpVerdict::Ok);
}

#[test]
fn no_media_streams_is_ok() {
    let (v, r) = sdp("");
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::Ok, "ok: 0 of 0 media streams active, all encrypted")
    );
}

#[test]
fn dtls_srtp() {
    let media = format!("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=setup:actpass\na=fingerprint:{FP}\n");
    assert_eq!(sdp(&media).0, SdpVerdict::Ok);
    // Session-level fingerprint covers the streams.
    let session =
        format!("a=fingerprint:{FP}\nm=audio 9 UDP/TLS/RTP/SAVP 0\nm=video 9 UDP/TLS/RTP/SAVPF 96\n");
    assert_eq!(sdp(&session).0, SdpVerdict::Ok);
    // Policy refuses DTLS.
    let (v, r) = sdp_with(&media, &pol("dtls=0"));
    assert_eq!(v, SdpVerdict::Cleartext);
    assert_eq!(
        r,
        "stream 1 (audio) is UDP/TLS/RTP/SAVPF (DTLS-SRTP), not allowed by policy"
    );
    // No fingerprint anywhere.
    let (v, r) = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=setup:actpass\n");
    assert_eq!(
        (v, r.as_str()),
        (
            SdpVerdict::BadCrypto,
            "stream 1 (audio) is UDP/TLS/RTP/SAVPF without a=fingerprint"
        )
    );
    // Malformed or weak fingerprints.
    let (v, r) = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=fingerprint:sha-256 02:32:FC\n");
    assert_eq!(v, SdpVerdict::BadCrypto);
    assert!(r.contains("3 bytes, its hash gives 32"), "{r}");
    let (v, _) = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=fingerprint:md5 02:32:FC:FA:96:73:83:AA:BF:28:9B:EC:B8:41:DF:16\n");
    assert_eq!(v, SdpVerdict::BadCrypto);
    // A media-level fingerprint replaces the session-level one.
    let (v, _) = sdp(&format!(
        "a=fingerprint:{FP}\nm=audio 9 UDP/TLS/RTP/SAVPF 111\na=fingerprint:sha-256 zz\n"
    ));
    assert_eq!(v, SdpVerdict::BadCrypto);
    // One good among several is enough.
    let (v, _) = sdp(&format!(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\na=fingerprint:sha-256 zz\na=fingerprint:{FP}\n"
    ));
    assert_eq!(v, SdpVerdict::Ok);
    // The WebRTC data channel.
    let (v, _) = sdp(&format!(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=fingerprint:{FP}\n"
    ));
    assert_eq!(v, SdpVerdict::Ok);
}

#[test]
fn unknown_suite_is_bad_crypto() {
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_129_HMAC_SHA1_80 inline:{K1}\n"
    ));
    assert_eq!(v, SdpVerdict::BadCrypto);
    assert_eq!(
        r,
        "stream 1 (audio) a=crypto:1 AES_CM_129_HMAC_SHA1_80: unknown crypto suite"
    );
}

#[test]
fn suite_not_allowed_is_bad_crypto() {
    let m = format!("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{K1}\n");
    let (v, r) = sdp(&m);
    assert_eq!(v, SdpVerdict::BadCrypto);
    assert_eq!(
        r,
        "stream 1 (audio) a=crypto:1 AES_CM_128_HMAC_SHA1_32: suite not allowed by policy"
    );
    assert_eq!(
        sdp_with(&m, &pol("suites=AES_CM_128_HMAC_SHA1_32")).0,
        SdpVerdict::Ok
    );
    // Policy narrowing: AES_256 only refuses AES_128.
    let m = format!("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n");
    assert_eq!(
        sdp_with(&m, &pol("suites=AES_256_CM_HMAC_SHA1_80")).0,
        SdpVerdict::BadCrypto
    );
}

#[test]
fn crypto_text_inside_another_attribute_does_not_count() {
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/AVP 0\na=x-note:a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n"
    ));
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::Cleartext, "stream 1 (audio) is RTP/AVP: cleartext")
    );
    let (v, _) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\na=x-note:a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n"
    ));
    assert_eq!(v, SdpVerdict::BadCrypto);
    // Not at line start, or in another line type, or in i=: not an attribute.
    // Leading white space: lenient parsers would read an attribute, so the
    // SDP is refused as malformed rather than judged either way.
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\n a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n"
    ));
    assert_eq!(v, SdpVerdict::TooComplex, "{r}");
    for line in ["i=a=crypto:1", "x=a=crypto:1", "a=crypto-x:1", "a=CRYPTO:1"] {
        let (v, r) = sdp(&format!(
            "m=audio 4000 RTP/SAVP 0\n{line} AES_CM_128_HMAC_SHA1_80 inline:{K1}\n"
        ));
        assert_eq!(v, SdpVerdict::BadCrypto, "{line}: {r}");
        assert!(r.contains("without a media-level a=crypto"), "{r}");
    }
}

#[test]
fn crypto_on_one_stream_does_not_cover_another() {
    let (v, r) = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{K2}\nm=video 4002 RTP/SAVP 96\n"
    ));
    assert_eq!(v, SdpVerdict::BadCrypto);
    assert_eq!(r, "stream 2 (video) is RTP/SAVP without a media-level a=crypto");
}

#[test]
fn weak_or_malformed_keys() {
    for (key, what) in [
        ("6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jV", "bytes, suite needs 30"),
        ("6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jVWM==", "padding"),
        (
            "6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jV-M",
            "invalid base64 character '-'",
        ),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "constant"),
        ("6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jVWM|2^99", "lifetime"),
        ("6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jVWM|1:200", "MKI"),
        (
            "6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jVWM UNENCRYPTED_SRTP",
            "UNENCRYPTED_SRTP disables",
        ),
        (
            "6/76wT4N9hwioIoUbtWWtZdCYUAqRmz780H7jVWM UNAUTHENTICATED_SRTP",
            "UNAUTHENTICATED_SRTP",
        ),
    ] {
        let (v, r) = sdp(&format!(
            "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\n"
        ));
        assert_eq!(v, SdpVerdict::BadCrypto, "{key}");
        assert!(r.contains(what), "{key}: {r}");
    }
    let (v, r) = sdp("m=audio 4000 RTP/SAVP 0\na=crypto:\n");
    assert_eq!(v, SdpVerdict::BadCrypto);
    assert!(r.contains("tag is not 1-9 digits"), "{r}");
}

#[test]
fn one_good_crypto_line_is_enough() {
    for (first, second) in [
        ("AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80"),
        ("BOGUS", "AES_CM_128_HMAC_SHA1_80"),
    ] {
        for (a, b) in [(first, second), (second, first)] {
            let (v, r) = sdp(&format!(
                "m=audio 4000 RTP/SAVP 0\na=crypto:1 {a} inline:{K1}\na=crypto:2 {b} inline:{K2}\n"
            ));
            assert_eq!(v, SdpVerdict::Ok, "{a} {b}: {r}");
        }
    }
}

#[test]
fn optimistic_srtp() {
    let m = format!("m=audio 4000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n");
    let (v, r) = sdp(&m);
    assert_eq!(v, SdpVerdict::Cleartext);
    assert_eq!(
        r,
        "stream 1 (audio) is RTP/AVP with a=crypto (optimistic SRTP), not allowed by policy"
    );
    assert_eq!(sdp_with(&m, &pol("optimistic=1")).0, SdpVerdict::Ok);
    let bad = "m=audio 4000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n";
    assert_eq!(sdp_with(bad, &pol("optimistic=1")).0, SdpVerdict::BadCrypto);
    assert_eq!(
        sdp_with("m=audio 4000 RTP/AVP 0\n", &pol("optimistic=1")).0,
        SdpVerdict::Cleartext
    );
}

#[test]
fn rfc4568_section9_offer_and_answer() {
    let offer = "v=0\r\no=sam 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SRTP Discussion\r\n\
        i=A discussion of Secure RTP\r\nu=http://www.example.com/seminars/srtp.pdf\r\n\
        e=marge@example.com (Marge Simpson)\r\nc=IN IP4 168.2.17.12\r\nt=2873397496 2873404696\r\n\
        m=audio 49170 RTP/SAVP 0\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP\r\n\
        a=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
        inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP\r\n";
    assert_eq!(
        run_with("application/sdp", offer, &SdpPolicy::default()).0,
        SdpVerdict::Ok
    );
    // Only F8 allowed: the second line carries it.
    assert_eq!(
        run_with("application/sdp", offer, &pol("suites=F8_128_HMAC_SHA1_80")).0,
        SdpVerdict::Ok
    );
    let answer = "v=0\r\no=jill 25690844 8070842634 IN IP4 10.47.16.5\r\ns=SRTP Discussion\r\n\
        c=IN IP4 168.2.17.11\r\nt=2873397526 2873405696\r\nm=audio 32640 RTP/SAVP 0\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n";
    assert_eq!(
        run_with("Application/SDP", answer, &SdpPolicy::default()).0,
        SdpVerdict::Ok
    );
}

#[test]
fn no_sdp() {
    let d = SdpPolicy::default();
    let body = format!("{HEAD}m=audio 4000 RTP/AVP 0\n");
    assert_eq!(
        run_with("application/sdp", "", &d),
        (SdpVerdict::NoSdp, "no message body".into())
    );
    assert_eq!(run_with("application/sdp", "\r\n\r\n", &d).0, SdpVerdict::NoSdp);
    // No Content-Type: SDP when it looks like SDP.
    assert_eq!(run_with("", &body, &d).0, SdpVerdict::Cleartext);
    assert_eq!(run_with("", "hello\n", &d).0, SdpVerdict::NoSdp);
    assert_eq!(run_with("text/plain", &body, &d).0, SdpVerdict::NoSdp);
    assert_eq!(run_with("application/isup", &body, &d).0, SdpVerdict::NoSdp);
    let (v, r) = run_with("application/sdp", "hello\nm=audio 4000 RTP/AVP 0\n", &d);
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::NoSdp, "body is not SDP (no v= line first)")
    );
    assert_eq!(run_with("multipart/mixed", &body, &d).0, SdpVerdict::NoSdp);
    let mp = "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
    let (v, r) = run_with("multipart/mixed;boundary=b", mp, &d);
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::NoSdp, "multipart body has no application/sdp part")
    );
}

#[test]
fn too_complex() {
    let mut m = String::new();
    for i in 0..MAX_STREAMS {
        m += &format!(
            "m=audio {} RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n",
            4000 + 2 * i
        );
    }
    assert_eq!(sdp(&m).0, SdpVerdict::Ok);
    m += "m=audio 0 RTP/SAVP 0\n";
    let (v, r) = sdp(&m);
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::TooComplex, "more than 64 media streams")
    );
    let big = format!("{HEAD}{}", "a=x\n".repeat(MAX_BODY / 4));
    let (v, r) = run_with("application/sdp", &big, &SdpPolicy::default());
    assert_eq!(v, SdpVerdict::TooComplex);
    assert!(
        r.contains(&format!(
            "body of {} bytes is over the 65536-byte limit",
            big.len()
        )),
        "{r}"
    );
}

fn multipart(boundary_param: &str, body: &str) -> (SdpVerdict, String) {
    let ct = format!("multipart/mixed;{boundary_param}");
    let crlf = body.replace('\n', "\r\n");
    let a = run_with(&ct, &crlf, &SdpPolicy::default());
    let b = run_with(&ct, body, &SdpPolicy::default());
    assert_eq!(a, b, "CRLF and LF disagree");
    a
}

#[test]
fn multipart_bodies() {
    let good = format!("{HEAD}m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n");
    let clear = format!("{HEAD}m=audio 4000 RTP/AVP 0\n");
    let isup =
        "Content-Type: application/isup;version=itu-t92+\nContent-Disposition: signal;handling=optional\n\n\
                \x01\x10\x60\x01\x0a\x00\x02\x0a\x08\u{83}\u{90}\u{89}\x07\x40\x09\x08\x00\n";
    let body = format!(
        "This is a multi-part message in MIME format.\n--unique-boundary-1\nContent-Type: application/sdp\n\n\
         {good}\n--unique-boundary-1\n{isup}\n--unique-boundary-1--\nepilogue a=crypto:\n"
    );
    let (v, r) = multipart("boundary=unique-boundary-1", &body);
    assert_eq!(v, SdpVerdict::Ok, "{r}");
    assert_eq!(
        multipart("boundary=\"unique-boundary-1\"", &body).0,
        SdpVerdict::Ok
    );
    assert_eq!(
        multipart(" charset=x; BOUNDARY = \"unique-boundary-1\" ", &body).0,
        SdpVerdict::Ok
    );
    // Cleartext SDP whose neighbour part talks about a=crypto.
    let body = format!(
        "--b\nContent-Type: text/plain\n\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n\
         --b\ncontent-type: APPLICATION/SDP\n\n{clear}--b--\n"
    );
    let (v, r) = multipart("boundary=b", &body);
    assert_eq!(
        (v, r.as_str()),
        (
            SdpVerdict::Cleartext,
            "sdp part 2: stream 1 (audio) is RTP/AVP: cleartext"
        )
    );
    // Two SDP parts (alternatives): each must pass.
    let two = format!(
        "--b\nContent-Type: application/sdp\n\n{good}--b\nContent-Type: application/sdp\n\n{clear}--b--\n"
    );
    assert_eq!(multipart("boundary=b", &two).0, SdpVerdict::Cleartext);
    let two = format!(
        "--b\nContent-Type: application/sdp\n\n{good}--b\nContent-Type: application/sdp\n\n{good}--b--\n"
    );
    let (v, r) = multipart("boundary=b", &two);
    assert_eq!(
        (v, r.as_str()),
        (
            SdpVerdict::Ok,
            "ok: 2 of 2 media streams active, all encrypted (2 sdp parts)"
        )
    );
    // Truncated before the closing delimiter.
    let cut = format!("--b\nContent-Type: application/sdp\n\n{good}");
    assert_eq!(multipart("boundary=b", &cut).0, SdpVerdict::Ok);
    // Encoded SDP and nested multipart are refused as too complex.
    let enc = "--b\nContent-Type: application/sdp\nContent-Transfer-Encoding: base64\n\ndj0wDQo=\n--b--\n";
    assert_eq!(multipart("boundary=b", enc).0, SdpVerdict::TooComplex);
    let nested = format!(
        "--b\nContent-Type: multipart/alternative;boundary=c\n\n--c\nContent-Type: application/sdp\n\n{clear}--c--\n--b--\n"
    );
    assert_eq!(multipart("boundary=b", &nested).0, SdpVerdict::TooComplex);
    // Wrong boundary: no part found.
    assert_eq!(multipart("boundary=zz", &two).0, SdpVerdict::NoSdp);
}

#[test]
fn other_profiles_are_cleartext() {
    let (v, r) = sdp("m=image 4000 udptl t38\n");
    assert_eq!(
        (v, r.as_str()),
        (
            SdpVerdict::Cleartext,
            "stream 1 (image) has profile udptl: not SRTP"
        )
    );
    let (v, r) = sdp("m=audio\n");
    assert_eq!(
        (v, r.as_str()),
        (SdpVerdict::Cleartext, "stream 1 (audio) has a malformed m= line")
    );
    let (v, _) = sdp("m=message 4000 TCP/TLS/MSRP *\n");
    assert_eq!(v, SdpVerdict::Cleartext);
}

#[test]
fn hostile_bytes_in_reason_are_sanitised() {
    let body = b"v=0\nm=au\xffdio\x01\x1b[31m 4000 RTP/\xc3\xa9AVP 0\n";
    let mut buf = [0u8; 256];
    let mut r = ReasonBuf::new(&mut buf);
    let v = check(b"application/sdp", body, &SdpPolicy::default(), &mut r);
    assert_eq!(v, SdpVerdict::Cleartext);
    assert_eq!(
        r.as_str(),
        "stream 1 (au?dio??[31m) has profile RTP/??AVP: not SRTP"
    );
    let long = format!("v=0\nm=audio 1 {} 0\n", "X".repeat(100));
    let (_, r) = run_with("application/sdp", &long, &SdpPolicy::default());
    assert!(r.ends_with(&format!("{}...: not SRTP", "X".repeat(40))), "{r}");
}

#[test]
fn reason_buffer_truncates_without_failing() {
    let body = format!("{HEAD}m=audio 4000 RTP/AVP 0\n");
    for size in 0..60 {
        let mut buf = vec![0u8; size];
        let mut r = ReasonBuf::new(&mut buf);
        let v = check(b"application/sdp", body.as_bytes(), &SdpPolicy::default(), &mut r);
        assert_eq!(v, SdpVerdict::Cleartext);
        assert_eq!(
            r.as_str(),
            &"stream 1 (audio) is RTP/AVP: cleartext"[..size.min(38)]
        );
        assert_eq!(r.truncated(), size < 38);
    }
    let mut buf = [0u8; 5];
    let mut r = ReasonBuf::new(&mut buf);
    let _ = r.write_str("ab\u{e9}\u{e9}");
    assert_eq!(r.as_str(), "ab\u{e9}");
    r.clear();
    assert!(r.is_empty() && !r.truncated());
}

#[test]
fn works_on_answers_too() {
    // A 200 OK answer: one crypto line per stream, rejected video stream.
    let (v, _) = sdp(&format!(
        "m=audio 30000 RTP/SAVP 0 101\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K2}\na=sendrecv\n\
         m=video 0 RTP/SAVP 96\n"
    ));
    assert_eq!(v, SdpVerdict::Ok);
}

/// Bodies that other SDP parsers read differently: refused, never "ok".
#[test]
fn parser_differentials_are_refused() {
    let d = SdpPolicy::default();
    let good = format!("{HEAD}m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n");
    assert_eq!(run_with("application/sdp", &good, &d).0, SdpVerdict::Ok);
    let cr_only = "v=0\ro=- 1 1 IN IP4 127.0.0.1\rs=-\rc=IN IP4 127.0.0.1\rt=0 0\rm=audio 4000 RTP/AVP 0\r";
    let hidden_by_cr = format!("{good}a=x\rm=audio 5000 RTP/AVP 0\r\n");
    let leading_space = format!("{good} m=audio 5000 RTP/AVP 0\n");
    let nul = format!("{good}a=x\0\nm=audio 5000 RTP/AVP 0\n");
    for body in [cr_only.to_string(), hidden_by_cr, leading_space, nul] {
        let (v, r) = run_with("application/sdp", &body, &d);
        assert_ne!(v, SdpVerdict::Ok, "{body:?}: {r}");
    }
    // A delimiter-like line hides a cleartext part from a strict walker.
    let mp = format!(
        "--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n--b1X\r\nContent-Type: application/sdp\r\n\r\n\
         {HEAD}m=audio 5000 RTP/AVP 0\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n{good}\r\n--b1--\r\n"
    );
    let (v, r) = run_with("multipart/mixed;boundary=b1", &mp, &d);
    assert_eq!(v, SdpVerdict::TooComplex, "{r}");
    // Two boundary parameters.
    let (v, _) = run_with("multipart/mixed;boundary=AAA;boundary=BBB", &mp, &d);
    assert_ne!(v, SdpVerdict::Ok);
}

#[test]
fn sdes_keys_need_tls_signalling_when_the_policy_says_so() {
    let sdes = format!("{HEAD}m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K1}\n");
    let strict = SdpPolicy::parse("sdes_tls=1").unwrap();
    let over = |tls: bool, policy: &SdpPolicy| {
        let mut buf = [0u8; 256];
        let mut r = ReasonBuf::new(&mut buf);
        let v = check_signalled(b"application/sdp", sdes.as_bytes(), policy, tls, &mut r);
        (v, r.as_str().to_string())
    };
    assert_eq!(over(true, &strict).0, SdpVerdict::Ok);
    let (v, r) = over(false, &strict);
    assert_eq!(v, SdpVerdict::Cleartext);
    assert!(r.contains("unencrypted signalling"), "{r}");
    // Without the key the transport does not matter.
    assert_eq!(over(false, &SdpPolicy::default()).0, SdpVerdict::Ok);
}
