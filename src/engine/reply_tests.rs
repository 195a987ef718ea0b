//! Reply normalization through the engine ([`crate::guess::reply`]): what
//! leaves for a reply that tells users apart.

use super::{small_region, Engine};
use crate::guess::reply::{test_reader, Outcome};

fn send(r: &Engine, reply: &[u8], dst: &[u8], now: u64, out: &mut [u8]) -> Outcome {
    r.reply_out(&test_reader::parse(reply).reply(), dst, now, out)
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
    let Outcome::Rewritten(n) = send(
        &r,
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
    let Outcome::Rewritten(n2) = send(
        &r,
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
    let names = |b: &[u8]| {
        b.split(|&c| c == b'\n')
            .map(|l| l.split(|&c| c == b':').next().unwrap_or_default().to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&out[..n]), names(&out2[..n2]));
}

#[test]
fn invite_gets_407_and_other_codes_pass() {
    let r = small_region(|_| {});
    let mut out = [0u8; 2048];
    let Outcome::Rewritten(n) = send(
        &r,
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
        ("404 Not Found", "CANCEL"),
    ] {
        assert_eq!(
            send(&r, &reply(code, method, "9", ""), &[127, 0, 0, 9], 1, &mut out),
            Outcome::Unchanged
        );
    }
    assert_eq!(
        send(&r, b"OPTIONS sip:x SIP/2.0\r\n\r\n", &[127, 0, 0, 9], 1, &mut out),
        Outcome::Unchanged
    );
    let mut tiny = [0u8; 40];
    let Outcome::TooSmall(need) = send(
        &r,
        &reply("404 Not Found", "INVITE", "9", ""),
        &[127, 0, 0, 9],
        1,
        &mut tiny,
    ) else {
        panic!("fits in 40 bytes?")
    };
    let mut exact = vec![0u8; need];
    let rewritten = send(
        &r,
        &reply("404 Not Found", "INVITE", "9", ""),
        &[127, 0, 0, 9],
        1,
        &mut exact,
    );
    assert_eq!(rewritten, Outcome::Rewritten(need));
}

#[test]
fn every_method_but_ack_and_cancel_is_rewritten() {
    let r = small_region(|_| {});
    let mut out = [0u8; 2048];
    for method in [
        "INFO", "PUBLISH", "NOTIFY", "REFER", "UPDATE", "PRACK", "BYE", "FOOBAR",
    ] {
        assert!(
            matches!(
                send(
                    &r,
                    &reply("480 Temporarily Unavailable", method, "9", ""),
                    &[127, 0, 0, 9],
                    1,
                    &mut out
                ),
                Outcome::Rewritten(_)
            ),
            "{method}"
        );
    }
}

#[test]
fn line_ends_follow_the_reply_and_the_realm_stays_quoted() {
    let r = small_region(|_| {});
    let lf = String::from_utf8(reply("404 Not Found", "INVITE", "9", ""))
        .unwrap()
        .replace("\r\n", "\n");
    let mut out = [0u8; 2048];
    let Outcome::Rewritten(n) = send(&r, lf.as_bytes(), &[127, 0, 0, 9], 1, &mut out) else {
        panic!("not rewritten")
    };
    assert!(
        !out[..n].contains(&b'\r'),
        "{}",
        String::from_utf8_lossy(&out[..n])
    );
    assert!(out[..n].ends_with(b"Content-Length: 0\n\n"));
    // A realm with quotes cannot add parameters.
    let p = test_reader::parse(lf.as_bytes());
    let mut evil = p.reply();
    evil.from_host = b"evil\", nonce=\"attacker";
    let Outcome::Rewritten(n) = r.reply_out(&evil, &[127, 0, 0, 9], 1, &mut out) else {
        panic!("not rewritten")
    };
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(
        text.contains("realm=\"evil\\\", nonce=\\\"attacker\", nonce=\""),
        "{text}"
    );
}

#[test]
fn allowlisted_destinations_and_disabled_normalization_pass() {
    let r = small_region(|c| c.set("allow", "127.0.0.9/32").unwrap());
    let mut out = [0u8; 2048];
    let rep = reply("404 Not Found", "INVITE", "9", "");
    assert_eq!(send(&r, &rep, &[127, 0, 0, 9], 1, &mut out), Outcome::Unchanged);
    assert!(matches!(
        send(&r, &rep, &[127, 0, 0, 8], 1, &mut out),
        Outcome::Rewritten(_)
    ));
    let r = small_region(|c| c.set("normalize_replies", "0").unwrap());
    assert_eq!(send(&r, &rep, &[127, 0, 0, 8], 1, &mut out), Outcome::Unchanged);
}
