"""Password guessing and reply normalization (issue 3) against the
sipguard-auth config (digest auth over the htable subscriber table).

- replies to an existing and to a missing user look the same (status,
  header names and order, challenge form, length), on the stateless (sl)
  and the stateful (tm) path, and like the auth module's own challenge;
  with normalize_replies=0 they do not (the test can fail);
- svcrack at full speed and throttled does not find the weak password of
  1003 and 127.0.0.1 is banned (reason auth) after at most auth_maxretry
  failures; with the default scanner list it is banned at once;
- failures are counted once per transaction, with or without the script's
  sipguard_auth_failed(); bans for auth escalate past auth_findtime;
- a distributed guess throttles the user, not its owner; sipguard.users
  and sipguard.unthrottle;
- sipguard.list / sipguard.stats / statistics show flood, scanner,
  enumeration and auth bans.

Throughout the attacks user 2000 re-registers from 127.0.0.77 and is served.
"""
import base64
import re
import time

import pytest

import auth_tools as at
import sipg

METHODS = ["REGISTER", "OPTIONS", "INVITE", "MESSAGE", "SUBSCRIBE"]
B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def _kam(kam_factory, name, **d):
    return at.start_auth_kam(kam_factory, name, **d)


def _probe(c, method, user, domain="127.0.0.1", from_user=None):
    """One request without credentials to user@domain (From = To for
    REGISTER, From = from_user@127.0.0.1 otherwise), its final reply."""
    to = f"sip:{user}@{domain}"
    if method == "REGISTER":
        return c.transact("REGISTER", f"sip:{domain}", to, to, expires=60)
    return c.transact(method, to, f"sip:{from_user or 'caller'}@127.0.0.1", to)


def _nonce_bytes(reply):
    v = reply.header("WWW-Authenticate") or reply.header("Proxy-Authenticate")
    n = at.parse_challenge(v)["nonce"]
    assert B64.match(n), n
    return len(base64.b64decode(n))


@pytest.mark.parametrize("method", METHODS)
def test_reply_same_for_existing_and_missing_user(kam_factory, method):
    """1001 exists (not registered: 480 / for REGISTER the auth module's
    401), 9001 does not (404). Both replies, and the auth module's own
    challenge for the same method (REGISTER: 1001's 401; others: a
    proxy_challenge for a request relayed to 127.0.0.9 from a local user),
    have the same status line, header names in order, challenge parameters
    (names, order, value lengths), nonce size, and total length.
    OPTIONS is answered by sl, INVITE/MESSAGE/SUBSCRIBE by tm."""
    kam = _kam(kam_factory, "shape")
    with at.SipClient("127.0.0.90", kam.port) as c:
        exist = _probe(c, method, "1001")
        missing = _probe(c, method, "9001")
        if method == "REGISTER":
            auth = exist
        else:
            # relayed to another domain from a local user: the auth
            # module's proxy_challenge (To and From of the same lengths)
            auth = _probe(c, method, "1001", domain="127.0.0.9")
    for r in (exist, missing, auth):
        assert r is not None
    code = 401 if method == "REGISTER" else 407
    reason = "Unauthorized" if code == 401 else "Proxy Authentication Required"
    se, sm, sa = at.shape(exist), at.shape(missing), at.shape(auth)
    assert sa["status"] == (code, reason), sa
    assert se == sm, (se, sm)
    assert se == sa, (se, sa)
    assert _nonce_bytes(exist) == _nonce_bytes(missing) == _nonce_bytes(auth)
    # nothing names the server
    for r in (exist, missing):
        assert r.header("Server") is None and r.header("Warning") is None, r.raw
    assert kam.sg_stats()["normalized"] >= 1


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS", "INVITE"])
def test_reply_differs_without_normalization(kam_factory, method):
    """Control for the test above: with normalize_replies=0 the missing
    user gets 404 and the existing one 480 (401 for REGISTER)."""
    kam = _kam(kam_factory, "noshape", normalize=0)
    with at.SipClient("127.0.0.91", kam.port) as c:
        exist = _probe(c, method, "1001")
        missing = _probe(c, method, "9001")
    assert missing.code == 404
    assert exist.code == (401 if method == "REGISTER" else 480)
    assert at.shape(exist) != at.shape(missing)


def test_normalize_parameters(kam_factory):
    """normalize_codes, normalize_methods, challenge_realm, challenge_qop."""
    def codes(kam, method):
        with at.SipClient("127.0.0.92", kam.port) as c:
            return _probe(c, method, "1001"), _probe(c, method, "9001")

    k1 = _kam(kam_factory, "codes", normalize_codes='"404"')
    e, m = codes(k1, "OPTIONS")
    assert (e.code, m.code) == (480, 407), (e.raw, m.raw)
    k2 = _kam(kam_factory, "methods", normalize_methods='"REGISTER"')
    e, m = codes(k2, "OPTIONS")
    assert (e.code, m.code) == (480, 404), (e.raw, m.raw)
    e, m = codes(k2, "REGISTER")
    assert (e.code, m.code) == (401, 401), (e.raw, m.raw)
    k3 = _kam(kam_factory, "realm", challenge_realm='"sipguard.test"', challenge_qop='""')
    e, m = codes(k3, "INVITE")
    ch = at.parse_challenge(m.header("Proxy-Authenticate"))
    assert ch["realm"] == "sipguard.test" and "qop" not in ch, m.raw


def _dictionary(tmp_path):
    """40 four-digit passwords, the right one (1234) 35th: after
    auth_maxretry (10) guesses."""
    words = [f"{i:04d}" for i in range(1200, 1240)]
    assert words.index(at.WEAK_PASS) == 34
    return at.write_dictionary(tmp_path / "dict.txt", words)


@pytest.mark.parametrize("speed", ["full", "throttled"])
def test_svcrack_does_not_find_weak_password(kam_factory, tmp_path, speed):
    """svcrack -u 1003 with a dictionary holding 1234 at position 35, at
    full speed and at ~14 guesses/s (-t 0.07, under the rate): it finds
    nothing; 127.0.0.1 is banned with reason auth after at most
    auth_maxretry (10) checked wrong passwords. Scanner list off, so that
    the auth rule is what stops it."""
    kam = _kam(kam_factory, "crack", scanner_ua='""')
    dic = _dictionary(tmp_path)
    with at.LegitPhone(kam.port) as phone:
        r = at.svcrack(kam.port, at.WEAK_USER, dic,
                       select_time=None if speed == "full" else 0.07)
    assert r["found"] == [], r["out"][-3000:]
    bans = kam.wait_log(lambda: kam.bans(src=at.TOOL_SRC), timeout=5, what="auth BAN")
    assert len(bans) == 1, bans
    assert bans[0]["reason"] == "auth", bans
    # exactly auth_maxretry checks: not fewer (no double counting), no more
    fails = at.sgtest(kam, "AUTHFAIL", src=at.TOOL_SRC)
    assert len(fails) == 10, fails
    assert {f["user"] for f in fails} == {at.WEAK_USER}, fails
    assert at.sgtest(kam, "AUTHOK", src=at.TOOL_SRC) == []
    assert at.sgtest(kam, "NOTCHECKED", src=at.TOOL_SRC) == []
    entry = kam.sg_list()["bans"].get(at.TOOL_SRC)
    assert entry is not None and entry["reason"] == "auth", kam.last_list_raw
    st = kam.sg_stats()
    assert st["auth_bans"] == 1 and st["auth_failures"] >= len(fails), st
    phone.check()
    assert [b["src"] for b in kam.bans()] == [at.TOOL_SRC]


def test_svcrack_banned_as_scanner(kam_factory, tmp_path):
    """Default config: svcrack's User-Agent bans it before any guess."""
    kam = _kam(kam_factory, "crackscan")
    with at.LegitPhone(kam.port) as phone:
        r = at.svcrack(kam.port, at.WEAK_USER, _dictionary(tmp_path))
    assert r["found"] == [], r["out"][-3000:]
    bans = kam.wait_log(lambda: kam.bans(src=at.TOOL_SRC), timeout=5, what="scanner BAN")
    assert [b["reason"] for b in bans] == ["scanner"], bans
    assert at.sgtest(kam, "AUTHFAIL") == []
    phone.check()


def test_svcrack_finds_password_without_sipguard_rules(kam_factory, tmp_path):
    """Control: scanner list off, auth_maxretry and user_maxretry out of
    reach, rate high: svcrack does find 1234 - the attack is real."""
    kam = _kam(kam_factory, "crackok", scanner_ua='""', auth_maxretry=1000,
               user_maxretry=1000, rate='"1000/2s"')
    r = at.svcrack(kam.port, at.WEAK_USER, _dictionary(tmp_path))
    assert r["found"] == [(at.WEAK_USER, at.WEAK_PASS)], r["out"][-3000:]


def test_nonce_good_for_one_guess(kam_factory):
    """A nonce answered with a wrong password cannot be used again, even
    with a higher nc and the RIGHT password: 401 stale=true, the password
    is not checked (no AUTHOK) and the stale reply is not counted as a
    failure. A fresh nonce with the right password gets 200. (svcrack's
    own nonce-reuse mode, -n, crashes in sipvicious 0.3.3 with
    KeyError 'algorithm', so the client here does it.)"""
    kam = _kam(kam_factory, "nonce")
    src, ruri, aor = "127.0.0.64", "sip:127.0.0.1", "sip:1001@127.0.0.1"
    with at.SipClient(src, kam.port) as c:
        dlg = at.Dialog()
        ch = at.parse_challenge(c.transact("REGISTER", ruri, aor, aor, dlg, expires=60)
                                .header("WWW-Authenticate"))
        replies = []
        for nc, pw in ((1, "wrong"), (2, at.USERS["1001"]), (3, at.USERS["1001"])):
            cred = at.digest_header(ch, "REGISTER", ruri, "1001", pw, nc=nc)
            replies.append(c.transact("REGISTER", ruri, aor, aor, dlg,
                                      auth=("Authorization", cred), expires=60))
        assert [r.code for r in replies] == [401, 401, 401], [r.raw for r in replies]
        assert "stale" not in replies[0].header("WWW-Authenticate")
        for r in replies[1:]:
            assert at.parse_challenge(r.header("WWW-Authenticate")).get("stale") == "true", r.raw
        assert at.sgtest(kam, "AUTHOK", src=src) == []
        assert len(at.sgtest(kam, "AUTHFAIL", src=src)) == 1
        assert kam.sg_stats()["auth_failures"] == 1
        assert c.register("1001", at.USERS["1001"], dlg=dlg) == [401, 200]
    assert kam.bans() == []


def test_authenticated_transaction_not_normalized(kam_factory):
    """1005's phone answers every INVITE with 404. An INVITE to
    1005@127.0.0.1 without credentials is relayed and the phone's 404 goes
    back as a 407 challenge (normalized, on the tm path); an INVITE with
    proxy credentials of 1002 sent straight to the phone's address (relayed
    after pv_proxy_authenticate + sipguard_authenticated()) gets the
    phone's 404 unchanged."""
    kam = _kam(kam_factory, "authed")
    with at.FakePhone(kam.port, "127.0.0.95", "1005") as phone:
        phone_uri = f"sip:1005@127.0.0.95:{phone.client.sport}"
        with at.SipClient("127.0.0.96", kam.port) as c:
            r1 = c.transact("INVITE", "sip:1005@127.0.0.1", "sip:caller@127.0.0.1",
                            "sip:1005@127.0.0.1", timeout=3.0)
            dlg = at.Dialog()
            frm = "sip:1002@127.0.0.1"
            ch = c.transact("INVITE", phone_uri, frm, phone_uri, dlg, timeout=3.0)
            assert ch is not None and ch.code == 407, ch and ch.raw
            cred = at.digest_header(at.parse_challenge(ch.header("Proxy-Authenticate")),
                                    "INVITE", phone_uri, "1002", at.USERS["1002"])
            r2 = c.transact("INVITE", phone_uri, frm, phone_uri, dlg,
                            auth=("Proxy-Authorization", cred), timeout=3.0)
    assert phone.answered >= 2, phone.answered
    assert r1 is not None and r1.code == 407, r1 and r1.raw
    assert r2 is not None and r2.code == 404, r2 and r2.raw
    assert at.sgtest(kam, "AUTHOK") and at.sgtest(kam, "AUTHOK")[-1]["user"] == "1002"


def _wrong_passwords(src: str, port: int, most: int, same_cseq: bool = False) -> list:
    """Rounds of REGISTER + a wrong password for 1001 in one dialog (same
    Call-ID and From tag; with same_cseq the same CSeq numbers each round
    too), until a request goes unanswered or `most` rounds."""
    rounds = []
    with at.SipClient(src, port) as c:
        dlg = at.Dialog()
        for i in range(most):
            if same_cseq:
                dlg.cseq = 0
            rounds.append(c.register("1001", f"wrong{i}", dlg=dlg, timeout=1.0))
            if rounds[-1][-1] is None:
                break
    return rounds


@pytest.mark.parametrize("explicit", [True, False], ids=["script-call", "automatic"])
def test_failures_counted_once(kam_factory, explicit):
    """auth_maxretry 5: wrong passwords for 1001 from 127.0.0.62, one
    challenge/response round each. The source is banned at exactly the 5th
    checked failure - whether the script also calls sipguard_auth_failed()
    (then the 401 is not counted again) or relies on the automatic count."""
    d = {} if explicit else {"no_explicit_fail": None}
    kam = _kam(kam_factory, "count", auth_maxretry=5, **d)
    src = "127.0.0.62"
    rounds = _wrong_passwords(src, kam.port, 8)
    fails = at.sgtest(kam, "AUTHFAIL", src=src)
    assert len(fails) == 5, (fails, rounds)
    assert rounds[:4] == [[401, 401]] * 4, rounds
    assert rounds[4][0] == 401 and rounds[4][1] in (401, None), rounds
    assert rounds[-1][-1] is None, rounds
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="auth BAN")
    assert len(bans) == 1 and bans[0]["reason"] == "auth" and bans[0]["offences"] == "1", bans
    assert kam.sg_stats()["auth_failures"] == 5


@pytest.mark.parametrize("explicit", [True, False], ids=["script-call", "automatic"])
def test_guesses_reusing_one_transaction_key_all_count(kam_factory, explicit):
    """auth_maxretry 3: a guesser that sends every round with the same
    Call-ID, CSeq numbers and From tag (only the credentials change) is
    still counted at every guess and banned at the 3rd."""
    d = {} if explicit else {"no_explicit_fail": None}
    kam = _kam(kam_factory, "reuse", auth_maxretry=3, **d)
    src = "127.0.0.66"
    rounds = _wrong_passwords(src, kam.port, 6, same_cseq=True)
    assert rounds[:2] == [[401, 401]] * 2, rounds
    assert rounds[-1][-1] is None and len(rounds) <= 4, rounds
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="auth BAN")
    assert len(bans) == 1 and bans[0]["reason"] == "auth", bans
    assert kam.sg_stats()["auth_failures"] == 3


def test_failures_outside_findtime_do_not_ban(kam_factory):
    """auth_maxretry 3, auth_findtime 2 s: 4 wrong passwords 1.5 s apart
    (never 3 within 2 s) do not ban; 3 in quick succession then do."""
    kam = _kam(kam_factory, "findtime", auth_maxretry=3, auth_findtime=2)
    src = "127.0.0.67"
    with at.SipClient(src, kam.port) as c:
        dlg = at.Dialog()
        t0 = time.monotonic()
        slow = []
        for i in range(4):
            time.sleep(max(0.0, t0 + 1.5 * i - time.monotonic()))
            slow.append(c.register("1002", f"s{i}", dlg=dlg, timeout=1.0))
        assert slow == [[401, 401]] * 4, slow
        assert kam.bans() == []
        fast = [c.register("1002", f"f{i}", dlg=dlg, timeout=1.0) for i in range(3)]
    assert fast[-1][-1] is None, fast
    b = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="auth BAN")
    assert b[0]["reason"] == "auth", b


def test_auth_ban_escalates_past_findtime(kam_factory):
    """auth_maxretry 3, auth_findtime 2 s, ban_time 2 s: a guesser banned
    once, who waits for the ban to end and past findtime, is banned again
    after 3 more failures for twice as long (offences 2)."""
    kam = _kam(kam_factory, "esc", auth_maxretry=3, auth_findtime=2, ban_time='"2s"')
    src = "127.0.0.63"

    def guess(n):
        with at.SipClient(src, kam.port) as c:
            dlg = at.Dialog()
            return [c.register("1002", f"bad{i}", dlg=dlg, timeout=1.0) for i in range(n)]

    first = guess(3)
    b = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="first auth BAN")
    assert b[0]["reason"] == "auth" and b[0]["offences"] == "1" and b[0]["duration"] == "2", b
    kam.wait_log(lambda: kam.unbans(key=src), timeout=10, what="UNBAN")
    time.sleep(1.0)             # now well past auth_findtime since the failures
    second = guess(3)
    b = kam.wait_log(lambda: len(kam.bans(src=src)) == 2 and kam.bans(src=src), timeout=5,
                     what="second auth BAN")
    assert b[1]["reason"] == "auth" and b[1]["offences"] == "2" and b[1]["duration"] == "4", \
        (b, first, second)


def test_distributed_guess_throttles_user_not_owner(kam_factory):
    """user_maxretry 6: 8 sources guess 1003's password once each (none
    near auth_maxretry). 1003 is throttled (THROTTLE line, sipguard.users);
    then 5 more sources that send the RIGHT password get 401 (credentials
    not checked), while the owner, registered before from 127.0.0.60, keeps
    getting 200. sipguard.unthrottle lifts it: a new source with the right
    password gets 200."""
    kam = _kam(kam_factory, "dist", user_maxretry=6, scanner_ua='""')
    owner = "127.0.0.60"
    assert at.register(owner, kam.port, at.WEAK_USER, at.WEAK_PASS) == [401, 200]
    with at.LegitPhone(kam.port) as phone:
        guesses = {}
        for i in range(8):
            src = f"127.0.7.{i + 1}"
            guesses[src] = at.register(src, kam.port, at.WEAK_USER, f"{1200 + i:04d}")
        th = kam.wait_log(lambda: at.log_matches(kam, at.THROTTLE_RE), timeout=5,
                          what="THROTTLE line")
        assert len(th) == 1 and th[0]["user"] == at.WEAK_USER, th
        assert int(th[0]["failures"]) >= 6 and th[0]["duration"] == "600", th
        right = {}
        for i in range(5):
            src = f"127.0.8.{i + 1}"
            right[src] = at.register(src, kam.port, at.WEAK_USER, at.WEAK_PASS)
        owner_rounds = [at.register(owner, kam.port, at.WEAK_USER, at.WEAK_PASS)
                        for _ in range(3)]
    assert all(g == [401, 401] for g in guesses.values()), guesses
    assert all(r == [401, 401] for r in right.values()), right
    assert owner_rounds == [[401, 200]] * 3, owner_rounds
    assert len(at.sgtest(kam, "NOTCHECKED")) >= 5
    assert {a["src"] for a in at.sgtest(kam, "AUTHOK") if a["user"] == at.WEAK_USER} == {owner}
    phone.check()
    assert kam.bans() == [], kam.bans()

    users = {u.get("user"): u for u in sipg.leaf_structs(sipg.parse_tree(
        kam.kamcmd("sipguard.users").stdout))}
    u = users.get(at.WEAK_USER)
    assert u is not None, users
    assert sipg._num(u["throttled"]) > 0 and sipg._num(u["throttles"]) == 1, u
    assert sipg._num(u["failures"]) >= 6 and sipg._num(u["trusted_sources"]) >= 1, u
    st = kam.sg_stats()
    assert st["throttles"] == 1, st

    kam.kamcmd("sipguard.unthrottle", at.WEAK_USER)
    un = kam.wait_log(lambda: at.log_matches(kam, at.UNTHROTTLE_RE), timeout=5,
                      what="UNTHROTTLE line")
    assert un == [{"user": at.WEAK_USER, "reason": "rpc"}], un
    assert at.register("127.0.8.50", kam.port, at.WEAK_USER, at.WEAK_PASS) == [401, 200]


def test_guessing_missing_user_banned_like_existing(kam_factory):
    """No ban oracle: with auth_maxretry 3, a source guessing passwords for
    a MISSING user (whose 404 goes out as a 401 challenge) must be banned
    after the same number of attempts as one guessing for an existing user
    - otherwise "banned after 3 guesses" tells the scanner the user exists."""
    kam = _kam(kam_factory, "oracle", auth_maxretry=3, user_maxretry=100)
    rounds = {}
    for src, user in (("127.0.0.65", "1001"), ("127.0.0.66", "9001")):
        with at.SipClient(src, kam.port) as c:
            dlg = at.Dialog()
            rounds[user] = [c.register(user, f"w{i}", dlg=dlg, timeout=1.0) for i in range(5)]
    assert rounds["1001"][-1] == [None], rounds
    assert rounds["9001"] == rounds["1001"], rounds
    kam.wait_log(lambda: len(kam.bans()) >= 2, timeout=5, what="2 auth BANs")
    assert sorted((b["src"], b["reason"]) for b in kam.bans()) == [
        ("127.0.0.65", "auth"), ("127.0.0.66", "auth")], kam.bans()


def test_throttle_expires(kam_factory):
    """user_maxretry 3, user_throttle_time 2 s: 4 sources fail once each
    against 1004 -> THROTTLE; the throttle ends by itself (UNTHROTTLE
    reason=expired) and the right password from a new source gets 200."""
    kam = _kam(kam_factory, "thexp", user_maxretry=3, user_throttle_time=2)
    for i in range(4):
        assert at.register(f"127.0.10.{i + 1}", kam.port, "1004", f"no{i}") == [401, 401]
    th = kam.wait_log(lambda: at.log_matches(kam, at.THROTTLE_RE), timeout=5, what="THROTTLE")
    assert th[0]["user"] == "1004" and th[0]["duration"] == "2", th
    assert at.register("127.0.10.20", kam.port, "1004", at.USERS["1004"]) == [401, 401]
    un = kam.wait_log(lambda: at.log_matches(kam, at.UNTHROTTLE_RE), timeout=10,
                      what="UNTHROTTLE expired")
    assert un == [{"user": "1004", "reason": "expired"}], un
    assert at.register("127.0.10.21", kam.port, "1004", at.USERS["1004"]) == [401, 200]


def test_allowlisted_source_not_banned_for_failures(kam_factory):
    """The allowlist holds for auth failures too: 127.0.0.250 (allow) gets
    401 for 8 wrong passwords with auth_maxretry 3 and is never banned."""
    kam = _kam(kam_factory, "allow", auth_maxretry=3, user_maxretry=100)
    with at.SipClient("127.0.0.250", kam.port) as c:
        dlg = at.Dialog()
        rounds = [c.register("1001", f"w{i}", dlg=dlg, timeout=1.0) for i in range(8)]
    assert rounds == [[401, 401]] * 8, rounds
    assert kam.bans() == []


def test_rpc_and_stats_show_ban_reasons(kam_factory):
    """One instance, four bans: flood (60 OPTIONS at once), scanner
    (User-Agent sipcli), enumeration (distinct names, threshold 3), auth
    (3 wrong passwords, auth_maxretry 3). sipguard.list, sipguard.stats and
    the statistics framework show them."""
    kam = _kam(kam_factory, "rpc", enum_threshold=3, auth_maxretry=3)
    flood, scanner, enum, guess = "127.0.9.1", "127.0.9.2", "127.0.9.3", "127.0.9.4"
    with at.LegitPhone(kam.port) as phone:
        fl = sipg.udp_run(flood, at.DST, kam.port, 60, wait=0.5)
        assert 30 <= fl.answered <= 33, fl
        assert at.request(scanner, kam.port, "OPTIONS", "1001", ua="sipcli/v1.8",
                          timeout=1.0) is None
        codes = []
        with at.SipClient(enum, kam.port) as c:
            # distinct names until banned (hashed-name bitmap: the 4th name
            # or a few later, see test_scan.py), at most 10
            for u in range(3000, 3010):
                r = c.transact("OPTIONS", f"sip:{u}@127.0.0.1", "sip:x@127.0.0.1",
                               f"sip:{u}@127.0.0.1", timeout=1.0)
                codes.append(r.code if r else None)
                if r is None:
                    break
        assert codes[:3] == [407] * 3 and codes[-1] is None, codes
        with at.SipClient(guess, kam.port) as c:
            dlg = at.Dialog()
            g = [c.register("1004", f"x{i}", dlg=dlg, timeout=1.0) for i in range(4)]
        assert g[-1] == [None], g
    phone.check()
    kam.wait_log(lambda: len(kam.bans()) >= 4, timeout=5, what="4 BAN lines")
    reasons = {b["src"]: b["reason"] for b in kam.bans()}
    expect = {flood: "flood", scanner: "scanner", enum: "enumeration", guess: "auth"}
    assert reasons == expect, reasons
    lst = kam.sg_list()
    assert {k: v["reason"] for k, v in lst["bans"].items()} == expect, kam.last_list_raw
    st = kam.sg_stats()
    assert st["scanners"] == 1 and st["enumerations"] == 1 and st["auth_bans"] == 1, st
    assert st["auth_failures"] == 3, st
    assert st["normalized"] >= 3, st
    ks = kam.stats()
    for name in ("scanners", "enumerations", "auth_failures", "auth_bans", "throttles",
                 "normalized"):
        assert ks[name] == st[name], (name, ks, st)


def test_example_config(kam_factory, tmp_path):
    """kamailio-cfg/sipguard-auth.cfg as shipped (port and runtime dir
    moved): a phone registers (200) and a wrong password gets 401; replies
    for an existing and a missing user are the same challenge; svwar is
    banned as a scanner; sipguard.users answers."""
    k = sipg.start_example(kam_factory, tmp_path, at.EXAMPLE_CFG)
    assert at.register("127.0.0.80", k.port, "1001", at.USERS["1001"]) == [401, 200]
    assert at.register("127.0.0.81", k.port, "1002", "wrong") == [401, 401]
    with at.SipClient("127.0.0.82", k.port) as c:
        for method in ("REGISTER", "INVITE", "OPTIONS"):
            a, b = _probe(c, method, "1004"), _probe(c, method, "9004")
            assert at.shape(a) == at.shape(b), (method, a.raw, b.raw)
            assert a.code in (401, 407) and a.header("Server") is None, a.raw
    r = at.svwar(k.port, "INVITE", "995-1010")
    assert r["found"] == set(), r["out"][-3000:]
    bans = k.wait_log(lambda: k.bans(src=at.TOOL_SRC), timeout=5, what="scanner BAN")
    assert [b["reason"] for b in bans] == ["scanner"], bans
    assert k.sg_list()["bans"][at.TOOL_SRC]["reason"] == "scanner", k.last_list_raw
    k.kamcmd("sipguard.users")
    assert k.stop() == 0
