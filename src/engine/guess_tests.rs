//! The guessing defences at work through the engine: requests checked
//! after the flood check, replies counted and rewritten, bans through the
//! source table (moved here from `guess`, which does not know the engine).

use super::{small_region, Engine};
use crate::guess::reply::{test_reader, Outcome};
use crate::guess::*;
use crate::shm::counters::Counter;
use crate::util::clock::NS_PER_SEC;

fn send(r: &Engine, reply: &[u8], dst: &[u8], now: u64, out: &mut [u8]) -> Outcome {
    r.reply_out(&test_reader::parse(reply).reply(), dst, now, out)
}

/// The user of a `<sip:user@host>` value.
fn user_of(v: &str) -> &[u8] {
    let v = v.split_once(':').map_or(v, |(_, r)| r);
    v.split_once('@').map_or(&b""[..], |(u, _)| u.as_bytes())
}

/// The digest user name of test credentials (`username="…"`).
fn digest_user(creds: &[u8]) -> &[u8] {
    let s = std::str::from_utf8(creds).unwrap();
    s.split_once("username=\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map_or(&b""[..], |(u, _)| u.as_bytes())
}

const SRC: [u8; 4] = [127, 0, 0, 20];

/// A request to `user` in the R-URI (`method`, no To).
fn req<'a>(method: &'a [u8], user: &'a str, call_id: &'a str, creds: &'a [u8]) -> Request<'a> {
    Request {
        method,
        ruri_user: user.as_bytes(),
        ..register("", call_id, creds)
    }
}

fn register<'a>(to: &'a str, call_id: &'a str, creds: &'a [u8]) -> Request<'a> {
    Request {
        method: b"REGISTER",
        to: to.as_bytes(),
        to_user: user_of(to),
        call_id: call_id.as_bytes(),
        cseq_num: b"1",
        cseq_method: b"REGISTER",
        from: b"<sip:x@example.org>;tag=ft",
        auth_user: digest_user(creds),
        credentials: creds,
        ..Default::default()
    }
}

fn reply_401(call_id: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@example.org>;tag=ft\r\n\
         To: <sip:u@example.org>;tag=t\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn scanner_user_agent_bans_at_once() {
    let r = small_region(|_| {});
    let mut q = req(b"OPTIONS", "100", "c1", b"");
    q.user_agents[0] = b"friendly-scanner";
    q.user_agent_count = 1;
    assert_eq!(r.guess_request(&SRC, &q, 1), Finding::Scanner);
    assert!(r.flood.drop_check(&SRC, 2).unwrap());
    let allowed = small_region(|c| c.set("allow", "127.0.0.20/32").unwrap());
    assert_eq!(allowed.guess_request(&SRC, &q, 1), Finding::Clean);
}

#[test]
fn distinct_targets_over_the_threshold_ban_but_one_target_never_does() {
    let r = small_region(|c| c.guess.enum_threshold = 5);
    for i in 0..200 {
        let to = "<sip:100@example.org>".to_string();
        let q = register(&to, "same", b"");
        assert_eq!(r.guess_request(&SRC, &q, 1 + i * NS_PER_SEC / 10), Finding::Clean);
    }
    let mut found = None;
    for i in 0..20 {
        let to = format!("<sip:{}@example.org>", 200 + i);
        let q = register(&to, "c", b"");
        if r.guess_request(&[127, 0, 0, 21], &q, 1 + i * NS_PER_SEC) == Finding::Enumeration {
            found = Some(i);
            break;
        }
    }
    // The 6th distinct name is one more than 5.
    assert_eq!(found, Some(5));
}

#[test]
fn failures_counted_from_replies_ban_the_source_once_per_transaction() {
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let creds = b"Digest username=\"1001\", realm=\"r\", nonce=\"n\", response=\"x\"";
    let mut out = [0u8; 2048];
    for i in 0..3 {
        let cid = format!("g{i}");
        let to = "<sip:1001@example.org>";
        let q = register(to, &cid, creds);
        assert_eq!(r.guess_request(&SRC, &q, 1), Finding::Clean);
        // Retransmitted replies count once.
        for _ in 0..3 {
            assert_eq!(send(&r, &reply_401(&cid), &SRC, 2, &mut out), Outcome::Unchanged);
        }
        assert_eq!(
            r.flood.drop_check(&SRC, 3).unwrap(),
            i == 2,
            "after {} failures",
            i + 1
        );
    }
    assert_eq!(r.counters().get(Counter::AuthFailures), 3);
    // A stale-nonce challenge follows right credentials: no failure.
    let q = register("<sip:1001@example.org>", "stale", creds);
    r.guess_request(&[127, 0, 0, 31], &q, 1);
    let stale = String::from_utf8(reply_401("stale")).unwrap().replace(
        "Content-Length",
        "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", stale=true\r\nContent-Length",
    );
    send(&r, stale.as_bytes(), &SRC, 2, &mut out);
    assert_eq!(r.counters().get(Counter::AuthFailures), 3);
    // No credentials: a 401 is a challenge, not a failure.
    let q = register("<sip:1001@example.org>", "plain", b"");
    r.guess_request(&[127, 0, 0, 30], &q, 1);
    send(&r, &reply_401("plain"), &SRC, 2, &mut out);
    assert_eq!(r.counters().get(Counter::AuthFailures), 3);
}

#[test]
fn guesses_reusing_call_id_and_cseq_all_count() {
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let mut out = [0u8; 2048];
    for i in 0..3 {
        let creds = format!("Digest username=\"1001\", nonce=\"n{i}\", response=\"r{i}\"");
        let q = register("<sip:1001@example.org>", "same", creds.as_bytes());
        r.guess_request(&SRC, &q, 1);
        // The retransmission of a guess is the same guess.
        r.guess_request(&SRC, &q, 1);
        send(&r, &reply_401("same"), &SRC, 2, &mut out);
    }
    assert!(r.flood.drop_check(&SRC, 3).unwrap());
    assert_eq!(r.counters().get(Counter::AuthFailures), 3);
}

#[test]
fn a_probe_reusing_an_authenticated_key_is_normalized() {
    let r = small_region(|_| {});
    let creds = b"Digest username=\"1001\"";
    let to = "<sip:1001@example.org>";
    r.guess_request(&SRC, &register(to, "k", creds), 1);
    r.guess_authenticated(&SRC, &register(to, "k", creds), 1);
    r.guess_request(&SRC, &register(to, "k", b""), 2);
    let reply = String::from_utf8(reply_401("k"))
        .unwrap()
        .replace("401 Unauthorized", "404 Not Found");
    let mut out = [0u8; 2048];
    assert!(matches!(
        send(&r, reply.as_bytes(), &SRC, 3, &mut out),
        Outcome::Rewritten(_)
    ));
}

#[test]
fn a_probe_naming_no_user_forgets_an_entry_under_its_key() {
    // The reply may still be about a user (a script that finds one after
    // the check), so a user-less request clears what a reused key left,
    // as one naming a user does.
    for to in ["<sip:example.org>", "<sip:1001@example.org>"] {
        let r = small_region(|_| {});
        let creds = register("<sip:1001@example.org>", "k", b"Digest username=\"1001\"");
        r.guess_request(&SRC, &creds, 1);
        r.guess_authenticated(&SRC, &creds, 1);
        r.guess_request(&SRC, &register(to, "k", b""), 2);
        let reply = String::from_utf8(reply_401("k"))
            .unwrap()
            .replace("401 Unauthorized", "404 Not Found");
        let mut out = [0u8; 2048];
        let outcome = send(&r, reply.as_bytes(), &SRC, 3, &mut out);
        assert!(matches!(outcome, Outcome::Rewritten(_)), "{to}");
    }
}

#[test]
fn a_guess_at_a_missing_user_counts_like_one_at_an_existing_user() {
    // Its 404 leaves as a 401: counting only real 401s would make the
    // ban itself tell which users exist.
    let r = small_region(|c| c.guess.auth_maxretry = 2);
    let creds = b"Digest username=\"9001\"";
    let mut out = [0u8; 2048];
    for i in 0..2 {
        let cid = format!("m{i}");
        r.guess_request(&SRC, &register("<sip:9001@example.org>", &cid, creds), 1);
        let reply = String::from_utf8(reply_401(&cid))
            .unwrap()
            .replace("401 Unauthorized", "404 Not Found");
        assert!(matches!(
            send(&r, reply.as_bytes(), &SRC, 2, &mut out),
            Outcome::Rewritten(_)
        ));
    }
    assert!(r.flood.drop_check(&SRC, 3).unwrap());
}

#[test]
fn a_distributed_guess_throttles_the_user_but_not_its_owner() {
    let r = small_region(|c| {
        c.guess.user_maxretry = 4;
        c.guess.auth_maxretry = 100;
    });
    let creds = b"Digest username=\"1001\"";
    let to = "<sip:1001@example.org>";
    let owner = [127, 0, 0, 50];
    r.guess_authenticated(&owner, &register(to, "ok", creds), 1);
    for i in 0..4u8 {
        let q = register(to, "bad", creds);
        assert!(r.guess_auth_allowed(&[127, 0, 1, i], &q, 2));
        r.guess_auth_failed(&[127, 0, 1, i], &register(to, &format!("bad{i}"), creds), 2);
    }
    let q = register(to, "x", creds);
    r.guess_request(&[127, 0, 1, 9], &q, 3);
    assert!(!r.guess_auth_allowed(&[127, 0, 1, 9], &q, 3));
    // The challenge to an unchecked request is no failure.
    let failures = r.counters().get(Counter::AuthFailures);
    send(&r, &reply_401("x"), &[127, 0, 1, 9], 3, &mut [0u8; 2048]);
    assert_eq!(r.counters().get(Counter::AuthFailures), failures);
    assert!(r.guess_auth_allowed(&owner, &q, 3));
    let users = r.guess_users(3, 10);
    let u = users.iter().find(|u| u.name == b"1001").unwrap();
    assert_eq!((u.failures, u.trusted_sources), (4, 1));
    assert!(u.throttled_s > 0);
    // The throttle ends by itself, or by RPC.
    assert!(r.guess_auth_allowed(&[127, 0, 1, 9], &q, 3 + 601 * NS_PER_SEC));
    assert!(r.guess_unthrottle(b"1001", 4));
    assert!(r.guess_auth_allowed(&[127, 0, 1, 9], &q, 5));
}

#[test]
fn a_phone_reusing_nonces_is_forgiven_a_guesser_is_not() {
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let phone = b"Digest username=\"1001\"";
    let to = "<sip:1001@example.org>";
    // Each call: a failure (reused nonce), then success, as the same user.
    for i in 0..10 {
        r.guess_auth_failed(&SRC, &register(to, &format!("f{i}"), phone), 1);
        r.guess_authenticated(&SRC, &register(to, &format!("ok{i}"), phone), 1);
    }
    assert!(!r.flood.drop_check(&SRC, 2).unwrap());
    // Successes as 1001 do not forgive failures against 1002.
    let guess = b"Digest username=\"1002\"";
    let to2 = "<sip:1002@example.org>";
    for i in 0..3 {
        r.guess_auth_failed(&SRC, &register(to2, &format!("g{i}"), guess), 3);
        r.guess_authenticated(&SRC, &register(to, &format!("k{i}"), phone), 3);
    }
    assert!(r.flood.drop_check(&SRC, 4).unwrap());
}

#[test]
fn authenticated_transactions_keep_their_replies() {
    let r = small_region(|_| {});
    let creds = b"Digest username=\"1001\"";
    let reply = b"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:1001@example.org>;tag=ft\r\n\
        To: <sip:777@example.org>\r\nCall-ID: inv1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let q = Request {
        method: b"INVITE",
        ruri_user: b"777",
        from: b"<sip:1001@example.org>;tag=ft",
        to: b"<sip:777@example.org>",
        to_user: b"777",
        auth_user: b"1001",
        call_id: b"inv1",
        cseq_num: b"1",
        cseq_method: b"INVITE",
        credentials: creds,
        ..Default::default()
    };
    let mut out = [0u8; 2048];
    assert!(matches!(
        send(&r, reply, &SRC, 1, &mut out),
        Outcome::Rewritten(_)
    ));
    r.guess_authenticated(&SRC, &q, 1);
    assert_eq!(send(&r, reply, &SRC, 2, &mut out), Outcome::Unchanged);
}

#[test]
fn a_stale_nonce_is_no_guess_and_its_rewrite_says_stale() {
    let r = small_region(|c| {
        c.guess.auth_maxretry = 2;
        c.guess.enum_threshold = 3;
    });
    let creds = b"Digest username=\"9001\", nonce=\"AAAA\"";
    let mut out = [0u8; 2048];
    let mut banned_at = None;
    for i in 0..6 {
        let cid = format!("s{i}");
        let to = format!("<sip:{}@example.org>", 9000 + i);
        let mut q = register(&to, &cid, creds);
        q.flags = REQ_STALE_NONCE;
        // Counted like a request without credentials: by its To user.
        if r.guess_request(&SRC, &q, 1) == Finding::Enumeration {
            banned_at = Some(i);
            break;
        }
        let reply = String::from_utf8(reply_401(&cid))
            .unwrap()
            .replace("401 Unauthorized", "404 Not Found");
        let Outcome::Rewritten(n) = send(&r, reply.as_bytes(), &SRC, 2, &mut out) else {
            panic!("not rewritten")
        };
        assert!(String::from_utf8_lossy(&out[..n]).contains(", stale=true"));
    }
    assert_eq!(banned_at, Some(3));
    assert_eq!(r.counters().get(Counter::AuthFailures), 0);
}

#[test]
fn non_digest_credentials_do_not_skip_the_enumeration_rule() {
    let r = small_region(|c| c.guess.enum_threshold = 3);
    let mut found = None;
    for i in 0..6 {
        let to = format!("<sip:{}@example.org>", 100 + i);
        // Basic credentials: the host hands no digest user name.
        let mut q = register(&to, "b", b"Basic Zm9vOmJhcg==");
        q.auth_user = b"";
        if r.guess_request(&SRC, &q, 1) == Finding::Enumeration {
            found = Some(i);
            break;
        }
    }
    assert_eq!(found, Some(3));
}

#[test]
fn in_dialog_replies_are_left_alone() {
    let r = small_region(|_| {});
    let mut q = register("<sip:1001@example.org>", "d", b"");
    q.method = b"INFO";
    q.cseq_method = b"INFO";
    q.flags = REQ_IN_DIALOG;
    r.guess_request(&SRC, &q, 1);
    let reply = String::from_utf8(reply_401("d"))
        .unwrap()
        .replace("401 Unauthorized", "480 Temporarily Unavailable")
        .replace("1 REGISTER", "1 INFO");
    let mut out = [0u8; 2048];
    assert_eq!(send(&r, reply.as_bytes(), &SRC, 2, &mut out), Outcome::Unchanged);
    let other = reply.replace("Call-ID: d", "Call-ID: e");
    assert!(matches!(
        send(&r, other.as_bytes(), &SRC, 2, &mut out),
        Outcome::Rewritten(_)
    ));
}

#[test]
fn more_user_agents_than_handed_over_is_a_scanner() {
    let r = small_region(|_| {});
    let mut q = req(b"OPTIONS", "100", "c1", b"");
    q.user_agent_count = MAX_USER_AGENTS + 1;
    assert_eq!(r.guess_request(&SRC, &q, 1), Finding::Scanner);
    let mut q = req(b"OPTIONS", "100", "c2", b"");
    q.user_agents[0] = b"Yealink";
    q.user_agents[1] = b"friendly-scanner";
    q.user_agent_count = 2;
    assert_eq!(r.guess_request(&[127, 0, 0, 21], &q, 1), Finding::Scanner);
}

/// A reply of `status` to the REGISTER of `call_id` (as `reply_401`).
fn reply_with(status: &str, call_id: &str) -> Vec<u8> {
    String::from_utf8(reply_401(call_id))
        .unwrap()
        .replace("401 Unauthorized", status)
        .into_bytes()
}

#[test]
fn a_policy_refusal_with_credentials_is_left_alone_and_never_bans() {
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let creds = b"Digest username=\"1001\", realm=\"r\", nonce=\"n\", response=\"x\"";
    let mut out = [0u8; 2048];
    // A phone over the wrong transport, retrying with its credentials.
    for i in 0..10 {
        let cid = format!("tls{i}");
        let q = register("<sip:1001@example.org>", &cid, creds);
        assert_eq!(r.guess_request(&SRC, &q, 1), Finding::Clean);
        r.guess_policy_reply(&q, PolicyMark::Script, 1);
        let refusal = reply_with("403 TLS required", &cid);
        assert_eq!(send(&r, &refusal, &SRC, 2, &mut out), Outcome::Unchanged);
    }
    assert!(!r.flood.drop_check(&SRC, 3).unwrap());
    assert_eq!(r.counters().get(Counter::AuthFailures), 0);
    // A 404 of a marked request leaves as is too: the script's verdict.
    let q = register("<sip:1001@example.org>", "p404", b"");
    r.guess_request(&SRC, &q, 1);
    r.guess_policy_reply(&q, PolicyMark::Script, 1);
    assert_eq!(
        send(&r, &reply_with("404 Not Found", "p404"), &SRC, 2, &mut out),
        Outcome::Unchanged
    );
    // The same refusal unmarked is rewritten into a challenge.
    r.guess_request(&SRC, &register("<sip:1001@example.org>", "plain", creds), 1);
    assert!(matches!(
        send(&r, &reply_with("403 TLS required", "plain"), &SRC, 2, &mut out),
        Outcome::Rewritten(_)
    ));
}

#[test]
fn a_policy_mark_covers_only_the_request_marked() {
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let mut out = [0u8; 2048];
    for i in 0..3 {
        // The attacker has one request of a key refused by policy, then
        // sends the very same guess (key and credentials) by a path whose
        // password is checked: the second request clears the mark.
        let creds = format!("Digest username=\"1001\", nonce=\"n{i}\", response=\"r{i}\"");
        let q = register("<sip:1001@example.org>", "twin", creds.as_bytes());
        r.guess_request(&SRC, &q, 1);
        r.guess_policy_reply(&q, PolicyMark::Script, 1);
        r.guess_request(&SRC, &q, 1);
        assert!(matches!(
            send(&r, &reply_with("403 Forbidden", "twin"), &SRC, 2, &mut out),
            Outcome::Rewritten(_)
        ));
    }
    assert!(r.flood.drop_check(&SRC, 3).unwrap());
    assert_eq!(r.counters().get(Counter::AuthFailures), 3);
    // A digest challenge to a marked request is still a failure: a script
    // that goes on to check the password after its policy function refused
    // gains no free guesses.
    let src2 = [127, 0, 0, 21];
    for i in 0..3 {
        let creds = format!("Digest username=\"1002\", nonce=\"m{i}\", response=\"r{i}\"");
        let cid = format!("marked{i}");
        let q = register("<sip:1002@example.org>", &cid, creds.as_bytes());
        r.guess_request(&src2, &q, 1);
        r.guess_policy_reply(&q, PolicyMark::Script, 1);
        send(&r, &reply_401(&cid), &src2, 2, &mut out);
    }
    assert!(r.flood.drop_check(&src2, 3).unwrap());
}

#[test]
fn a_module_policy_refusal_covers_its_403_only() {
    // sipguard_require_tls() called for every request, its verdict used for
    // REGISTER only: the 404 of an INVITE it marked is still rewritten (no
    // oracle), its 403 stays a policy reply.
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let mut out = [0u8; 2048];
    let q = register("<sip:1001@example.org>", "auto404", b"");
    r.guess_request(&SRC, &q, 1);
    r.guess_policy_reply(&q, PolicyMark::Refusal403, 1);
    assert!(matches!(
        send(&r, &reply_with("404 Not Found", "auto404"), &SRC, 2, &mut out),
        Outcome::Rewritten(_)
    ));
    let creds = b"Digest username=\"1001\", realm=\"r\", nonce=\"n\", response=\"x\"";
    for i in 0..5 {
        let cid = format!("auto403-{i}");
        let q = register("<sip:1001@example.org>", &cid, creds);
        r.guess_request(&SRC, &q, 1);
        r.guess_policy_reply(&q, PolicyMark::Refusal403, 1);
        assert_eq!(
            send(&r, &reply_with("403 TLS required", &cid), &SRC, 2, &mut out),
            Outcome::Unchanged
        );
    }
    assert_eq!(r.counters().get(Counter::AuthFailures), 0);
}

#[test]
fn a_password_check_after_a_policy_mark_clears_it() {
    // A script that marks, then checks the password anyway and answers a
    // wrong one with 403: the check clears the mark, the 403 counts.
    let r = small_region(|c| c.guess.auth_maxretry = 3);
    let mut out = [0u8; 2048];
    for i in 0..3 {
        let creds = format!("Digest username=\"1001\", nonce=\"p{i}\", response=\"r{i}\"");
        let cid = format!("checked{i}");
        let q = register("<sip:1001@example.org>", &cid, creds.as_bytes());
        r.guess_request(&SRC, &q, 1);
        r.guess_policy_reply(&q, PolicyMark::Script, 1);
        assert!(r.guess_auth_allowed(&SRC, &q, 1));
        assert!(matches!(
            send(&r, &reply_with("403 Forbidden", &cid), &SRC, 2, &mut out),
            Outcome::Rewritten(_)
        ));
    }
    assert!(r.flood.drop_check(&SRC, 3).unwrap());
    // and sipguard_auth_failed() counts through a mark
    let src2 = [127, 0, 0, 22];
    let q = register("<sip:1002@example.org>", "failed", b"Digest username=\"1002\"");
    r.guess_request(&src2, &q, 1);
    r.guess_policy_reply(&q, PolicyMark::Script, 1);
    r.guess_auth_failed(&src2, &q, 1);
    let before = r.counters().get(Counter::AuthFailures);
    assert!(matches!(
        send(&r, &reply_with("403 Forbidden", "failed"), &src2, 2, &mut out),
        Outcome::Rewritten(_)
    ));
    assert_eq!(r.counters().get(Counter::AuthFailures), before, "counted once");
}
