//! `cargo fuzz run reply_rewrite`: the reply rewrite (src/reply.rs) on
//! arbitrary replies and arbitrary values handed over by the host.
//!
//! The input's first byte picks the flags (stale challenge, a nonce id,
//! the line end, REGISTER or not, a Server header); the rest is cut at NUL
//! bytes into the values of a reply's headers (Via lines, From, To,
//! Call-ID, other headers) and an arbitrary realm host, which may hold any
//! byte. Header values hold no CR or LF (a parsed header's line never
//! does); everything else is the fuzzer's. Whatever the input:
//! - nothing panics, and a rewrite into a too small buffer says the exact
//!   size it needs, which then holds it;
//! - the rewrite parses as a SIP reply: a 401 or 407 status line, then
//!   lines that each end with the reply's line end and hold no other CR or
//!   LF, the kept header lines unchanged and in order, exactly one
//!   challenge line whose realm is one well-formed quoted string followed
//!   by exactly one nonce, and `Content-Length: 0` with the empty line last.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipguard::engine::config::Config;
use sipguard::engine::Engine;
use sipguard::flood::config::FloodConfig;
use sipguard::guess::reply::{test_reader, Outcome};
use std::sync::OnceLock;

fn region() -> &'static Engine {
    static R: OnceLock<Engine> = OnceLock::new();
    R.get_or_init(|| {
        let mut cfg = Config {
            flood: FloodConfig {
                table_size: 64,
                ..Default::default()
            },
            ..Default::default()
        };
        cfg.guess.user_table_size = 64;
        cfg.guess.txn_table_size = 64;
        cfg.guess.challenge_nonce_bytes = 45;
        Engine::create(&cfg).expect("region")
    })
}

/// The lines of `out` split at `eol`; None if a line holds another CR/LF
/// or the text does not end with `eol`.
fn lines<'a>(out: &'a [u8], eol: &[u8]) -> Option<Vec<&'a [u8]>> {
    let body = out.strip_suffix(eol)?;
    let mut v = Vec::new();
    let mut rest = body;
    loop {
        match rest.windows(eol.len()).position(|w| w == eol) {
            Some(p) => {
                v.push(&rest[..p]);
                rest = &rest[p + eol.len()..];
            }
            None => {
                v.push(rest);
                break;
            }
        }
    }
    Some(v)
}

/// `realm="…", nonce="…"…`: the realm is one quoted string (escapes
/// honoured) and exactly one nonce parameter follows it; returns what
/// follows the realm.
fn after_realm(line: &[u8]) -> Option<&[u8]> {
    let at = line.windows(7).position(|w| w == b"realm=\"")?;
    let mut i = at + 7;
    loop {
        match line.get(i) {
            None => return None,
            Some(b'\\') => i += 2,
            Some(b'"') => break,
            Some(_) => i += 1,
        }
    }
    let rest = &line[i + 1..];
    (rest.starts_with(b", nonce=\"") && rest.windows(7).filter(|w| *w == b"nonce=\"").count() == 1)
        .then_some(rest)
}

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let eol: &[u8] = if flags & 16 != 0 { b"\n" } else { b"\r\n" };
    let mut parts = rest.split(|&b| b == 0);
    let mut value = || -> Vec<u8> {
        parts
            .next()
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect()
    };
    let realm = rest.split(|&b| b == 0).last().unwrap_or_default().to_vec();
    let method: &[u8] = if flags & 8 != 0 { b"REGISTER" } else { b"INFO" };
    let mut text = b"SIP/2.0 404 Not Found".to_vec();
    text.extend_from_slice(eol);
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut line = |text: &mut Vec<u8>, name: &[u8], v: &[u8], keep: bool| {
        let mut l = [name, b": ", v, eol].concat();
        // The test reader splits at ':' and LF: a value cannot change that.
        l.retain(|&b| b != 0);
        text.extend_from_slice(&l);
        if keep {
            kept.push(l);
        }
    };
    for _ in 0..(flags >> 6) + 1 {
        line(&mut text, b"Via", &[b"SIP/2.0/UDP ", &value()[..]].concat(), true);
    }
    line(&mut text, b"X-Junk", &value(), false);
    line(
        &mut text,
        b"From",
        &[b"<sip:a@h>;tag=", &value()[..]].concat(),
        true,
    );
    line(
        &mut text,
        b"To",
        &[b"<sip:b@h>;tag=", &value()[..]].concat(),
        true,
    );
    line(&mut text, b"Call-ID", &value(), true);
    line(&mut text, b"CSeq", &[b"1 ", method].concat(), true);
    line(&mut text, b"WWW-Authenticate", &value(), false);
    let server = flags & 32 != 0;
    if server {
        line(&mut text, b"Server", &value(), false);
    }
    text.extend_from_slice(eol);
    let parsed = test_reader::parse(&text);
    let mut reply = parsed.reply();
    reply.stale = flags & 1 != 0;
    if flags & 2 != 0 {
        reply.nonce_id = Some((u32::from(*flags) * 257, *flags & 0xc0));
    }
    if flags & 4 != 0 {
        reply.to_host = &realm;
        reply.from_host = &realm;
    }
    let r = region();
    let mut big = vec![0u8; 2 * text.len() + 4096];
    let n = match r.reply_out(&reply, &[192, 0, 2, 1], 1, &mut big) {
        Outcome::Rewritten(n) => n,
        other => panic!("{other:?}: {}", String::from_utf8_lossy(&text)),
    };
    // A too small buffer: the exact size needed, which then holds it.
    let mut small = vec![0u8; n / 2];
    match r.reply_out(&reply, &[192, 0, 2, 1], 1, &mut small) {
        Outcome::TooSmall(need) => assert_eq!(need, n),
        other => panic!("{other:?} into {} bytes", small.len()),
    }
    let out = &big[..n];
    let shown = || String::from_utf8_lossy(out).into_owned();
    let ls = lines(out, eol).unwrap_or_else(|| panic!("no final line end: {}", shown()));
    for l in &ls {
        assert!(
            !l.contains(&b'\n') && !l.contains(&b'\r'),
            "stray line break: {}",
            shown()
        );
    }
    let [status, headers @ .., content_length, empty] = &ls[..] else {
        panic!("too few lines: {}", shown());
    };
    let register = method == b"REGISTER";
    assert_eq!(
        *status,
        if register {
            &b"SIP/2.0 401 Unauthorized"[..]
        } else {
            b"SIP/2.0 407 Proxy Authentication Required"
        }
    );
    assert_eq!(*content_length, b"Content-Length: 0");
    assert!(empty.is_empty());
    // The kept lines, unchanged and in order; then the challenge; then Server.
    let expect_kept: Vec<&[u8]> = kept.iter().map(|l| &l[..l.len() - eol.len()]).collect();
    assert_eq!(&headers[..expect_kept.len()], &expect_kept[..], "{}", shown());
    let rest = &headers[expect_kept.len()..];
    assert_eq!(rest.len(), 1 + usize::from(server), "{}", shown());
    let name: &[u8] = if register {
        b"WWW-Authenticate: Digest "
    } else {
        b"Proxy-Authenticate: Digest "
    };
    assert!(rest[0].starts_with(name), "{}", shown());
    let params = after_realm(rest[0]).unwrap_or_else(|| panic!("bad realm or nonce: {}", shown()));
    // stale=true comes from the request's nonce (its transaction), never
    // from the reply; no request was seen here.
    assert!(!params.windows(12).any(|w| w == b", stale=true"), "{}", shown());
    if server {
        assert!(rest[1].starts_with(b"Server: "));
    }
});
