"""Attacks by an adversary who read sipguard's source, against the
sipguard-auth test config (cfg/sipguard-auth-test.cfg) and, for the reply
oracles, the example bundle as shipped (kamailio-cfg/sipguard-auth.cfg).
Each test asserts the behaviour the defences must have; each family has a
control showing legitimate clients unaffected.

 1. methods outside normalize_methods (INFO, PUBLISH, NOTIFY, REFER,
    UPDATE, PRACK, out-of-dialog BYE, a made-up method): the replies to an
    existing and a missing user are the same, and such probes count for
    the enumeration rule;
 2. a quoted display name holding '<' ("a<sip:x@evil>" <sip:1001@...>):
    the rewritten challenge has the realm the auth module uses (the host of
    the real URI), and probes at distinct users count as distinct names;
 3. made-up nonces: a missing user gets the challenge an existing one gets
    (stale=true or not), and no ban tells them apart;
 4. a Call-ID ending in a control character: every wrong password is
    still counted, with or without the script's sipguard_auth_failed();
 5. digest user names Kamailio reads differently (unquoted with a space;
    a second username after a quoted value and junk): failures count
    against the user the auth module checked, and a success as the
    attacker's own account does not forgive them;
 7. a ~33 KB From host: the raw 404/480 never leaves, no bogus error flood;
 8. a rewritten nonce has the auth module's layout and takes its place in
    the one-time-nonce id sequence;
 9. non-digest credentials (Basic, Digest without username) do not exempt
    probes from the enumeration rule;
10. a relayed bare-LF reply is rewritten with bare LF only; no parameter
    injection into the challenge through the realm; scanner User-Agents
    hidden in a second header, by folding, by a TAB or by a homoglyph are
    still banned at the first request.

All traffic goes to loopback; every loop is bounded in count and time.
"""
from __future__ import annotations

import base64
import itertools
import re
import struct
import time
import uuid

import pytest

import auth_tools as at
import sipg

# ----------------------------------------------------------------------------
# helpers

_SRC = itertools.count(1)


def _src() -> str:
    """A fresh source address per probe series (127.41.0.1, ...): sources
    never share rate, enumeration or failure counts across tests."""
    n = next(_SRC)
    return f"127.41.{n // 250}.{n % 250 + 1}"


def _kam(kam_factory, name, **d):
    return at.start_auth_kam(kam_factory, name, **d)


def _example(kam_factory, tmp_path):
    return sipg.start_example(kam_factory, tmp_path, at.EXAMPLE_CFG)


@pytest.fixture(scope="module", params=["test-cfg", "example-cfg"])
def oracle_kam(request, kam_module_factory):
    """One Kamailio per config for the reply-oracle tests (no bans are
    expected there; every probe series comes from its own source)."""
    if request.param == "test-cfg":
        return at.start_auth_kam(kam_module_factory, "oracle")
    return sipg.start_example(kam_module_factory, kam_module_factory.tmp, at.EXAMPLE_CFG)


@pytest.fixture(scope="module")
def fp_kam(kam_module_factory):
    """The test config with the default scanner list (fingerprint tests)."""
    return at.start_auth_kam(kam_module_factory, "fingerprints")


def _challenge(r) -> str | None:
    return r.header("WWW-Authenticate") or r.header("Proxy-Authenticate")


def _assert_same_reply(exist, missing, what=""):
    """What a scanner can compare: status line, header names in order,
    challenge parameter names, order and value lengths, realm value, total
    length (the user names compared are of equal length)."""
    assert exist is not None and missing is not None, (what, exist, missing)
    se, sm = at.shape(exist), at.shape(missing)
    first = lambda r: r.raw.split(b"\n", 1)[0].strip().decode()  # noqa: E731
    assert se["status"] == sm["status"], \
        f"{what}: existing user {first(exist)!r}, missing user {first(missing)!r}"
    assert se["headers"] == sm["headers"], (what, se["headers"], sm["headers"])
    assert se["challenge"] == sm["challenge"], (what, _challenge(exist), _challenge(missing))
    ce, cm = _challenge(exist), _challenge(missing)
    if ce is not None:
        assert at.parse_challenge(ce).get("realm") == at.parse_challenge(cm).get("realm"), \
            (what, ce, cm)
    assert se["length"] == sm["length"], (what, exist.raw, missing.raw)


TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
PARAM_RE = re.compile(rf'\s*({TOKEN})\s*=\s*({TOKEN}|"(?:[^"\\]|\\.)*")\s*(?:,|$)')


def strict_params(value: str) -> list | None:
    """The auth-params of a Digest challenge parsed as RFC 7235 says
    (quoted strings with backslash escapes), [(name, value)], or None if
    the value does not parse."""
    v = value.strip()
    if v[:6].lower() != "digest" or v[6:7] not in (" ", "\t"):
        return None
    rest, pos, out = v[7:], 0, []
    while pos < len(rest):
        m = PARAM_RE.match(rest, pos)
        if not m or m.end() == pos:
            return None
        out.append((m.group(1).lower(), m.group(2)))
        pos = m.end()
    return out


def _drops(kam, src):
    return at.sgtest(kam, "DROP", src=src)


# ----------------------------------------------------------------------------
# 1. methods outside normalize_methods

OTHER_METHODS = ["INFO", "PUBLISH", "NOTIFY", "REFER", "UPDATE", "PRACK", "BYE", "FOOBAR"]


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_other_methods_same_reply_for_existing_and_missing_user(oracle_kam, method):
    """<method> sip:1001@proxy (exists, not registered) and sip:9001@proxy
    (missing), no credentials, no To tag: identical status line, header
    names in order, challenge parameters, realm and length. Today: 480 vs
    404, unrewritten."""
    kam = oracle_kam
    with at.RawClient(_src(), kam.port) as c:
        exist = c.transact(method, "sip:1001@127.0.0.1", frm="sip:caller@127.0.0.1",
                           to="sip:1001@127.0.0.1")
        missing = c.transact(method, "sip:9001@127.0.0.1", frm="sip:caller@127.0.0.1",
                             to="sip:9001@127.0.0.1")
    _assert_same_reply(exist, missing, method)
    for r in (exist, missing):
        assert r.header("Server") is None and r.header("Warning") is None, r.raw


def _probe_series(port, src, method, names, out, interval=0.1, headers=(), to_fmt=None):
    """One request without credentials per name (R-URI and To user; for
    REGISTER the To user, with to_fmt formatting the To value), every
    `interval` s; out gets the codes (None: no answer)."""
    with at.RawClient(src, port) as c:
        t0 = time.monotonic()
        for i, u in enumerate(names):
            time.sleep(max(0.0, t0 + i * interval - time.monotonic()))
            aor = f"sip:{u}@127.0.0.1"
            to = to_fmt.format(u=u) if to_fmt else aor
            # once a probe went unanswered (banned), wait less for the rest
            timeout = 0.5 if None in out else 1.0
            if method == "REGISTER":
                r = c.transact("REGISTER", "sip:127.0.0.1", frm=to, to=to, expires=60,
                               headers=headers, timeout=timeout)
            else:
                r = c.transact(method, aor, frm="sip:scan@127.0.0.1", to=to, headers=headers,
                               timeout=timeout)
            out.append(r.code if r else None)


# distinct names (missing, existing, missing), as in test_scan.py
ENUM_NAMES = [str(3000 + i) for i in range(3)] + ["1000", "1001", "1002"] + \
    [str(3100 + i) for i in range(6)]


def _assert_enumeration_ban(kam, src, codes, threshold=5):
    """Answered for `threshold` names, then dropped from the next one (or,
    on a 16-bit fingerprint collision, one later); banned reason=enumeration."""
    assert None in codes, f"never banned: {codes}"
    k = codes.index(None)
    assert threshold <= k <= threshold + 1, codes
    assert codes[k:] == [None] * (len(codes) - k), codes
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="enumeration BAN")
    assert [b["reason"] for b in bans] == ["enumeration"], bans
    assert kam.sg_list()["bans"][src]["reason"] == "enumeration", kam.last_list_raw


@pytest.mark.parametrize("method", ["INFO", "FOOBAR"])
def test_other_methods_counted_for_enumeration(kam_factory, method):
    """enum_threshold 5: 12 distinct names probed with <method> (no
    credentials) from one source -> banned reason=enumeration at the 6th
    (7th) name. Control: a source probing ONE name 12 times with the same
    method is never banned, and the legitimate phone keeps registering.
    Today: nothing counts, never banned."""
    kam = _kam(kam_factory, "enum-" + method.lower(), enum_threshold=5)
    scan, repeat = _src(), _src()
    codes, rcodes = [], []
    with at.LegitPhone(kam.port) as phone:
        _probe_series(kam.port, scan, method, ENUM_NAMES, codes)
        _probe_series(kam.port, repeat, method, ["1001"] * 12, rcodes)
    phone.check()
    assert None not in rcodes, rcodes
    assert kam.bans(src=repeat) == []
    _assert_enumeration_ban(kam, scan, codes)


# ----------------------------------------------------------------------------
# 2. quoted display name holding '<'

DISPLAY_NAMES = ['"a<sip:x@evil>"', '"<sip:x@evil>;x"', '"Alice"']
DISPLAY_IDS = ["lt-in-display", "lt-in-display-2", "control-plain"]


@pytest.mark.parametrize("display", DISPLAY_NAMES, ids=DISPLAY_IDS)
@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_display_name_with_lt_realm(oracle_kam, method, display):
    """REGISTER with To: <display> <sip:USER@127.0.0.1>; INVITE with From:
    <display> <sip:caller@127.0.0.1>. The rewritten challenge for a missing
    user (9002) carries the realm of the auth module's own challenge
    (REGISTER: 1002's www_challenge on $td; INVITE: proxy_challenge on $fd
    for a relay to 127.0.0.9), i.e. the host of the real URI, never "evil";
    the existing user's (rewritten 480) and the missing user's replies are
    the same. Today: realm="evil" for rewritten replies."""
    kam = oracle_kam
    with at.RawClient(_src(), kam.port) as c:
        if method == "REGISTER":
            def reg(u):
                to = f"{display} <sip:{u}@127.0.0.1>"
                return c.transact("REGISTER", "sip:127.0.0.1", frm=to, to=to, expires=60)
            real, exist, missing = reg("1002"), reg("1002"), reg("9002")
        else:
            frm = f"{display} <sip:caller@127.0.0.1>"

            def inv(u, d="127.0.0.1"):
                return c.transact("INVITE", f"sip:{u}@{d}", frm=frm, to=f"sip:{u}@{d}")
            real, exist, missing = inv("1002", "127.0.0.9"), inv("1002"), inv("9002")
    for r in (real, exist, missing):
        assert r is not None and r.code in (401, 407), r and r.raw
    realms = [at.parse_challenge(_challenge(r))["realm"] for r in (real, exist, missing)]
    assert realms == ["127.0.0.1"] * 3, (realms, missing.raw)
    assert "evil" not in _challenge(missing), missing.raw
    _assert_same_reply(exist, missing, display)


def test_display_name_with_lt_counts_distinct_names(kam_factory):
    """enum_threshold 5: REGISTERs (no credentials) to 12 distinct users,
    each To: "a<sip:x@evil>" <sip:USER@127.0.0.1> -> they count as 12
    distinct names (Kamailio's $tU), banned reason=enumeration at the 6th
    (7th). Control: the legitimate phone keeps registering. Today: every
    probe counts as the one name "x", never banned."""
    kam = _kam(kam_factory, "enum-display", enum_threshold=5)
    scan = _src()
    codes = []
    with at.LegitPhone(kam.port) as phone:
        _probe_series(kam.port, scan, "REGISTER", ENUM_NAMES, codes,
                      to_fmt='"a<sip:x@evil>" <sip:{u}@127.0.0.1>')
    phone.check()
    _assert_enumeration_ban(kam, scan, codes)


# ----------------------------------------------------------------------------
# 3. made-up nonces (stale=true oracle)


def _bin_nonce(since: int, expire: int, pf: int, n: int = 45) -> str:
    b = struct.pack(">II", expire, since) + bytes(range(1, 33)) + struct.pack(">I", 4242) + \
        bytes([pf])
    return base64.b64encode(b[:n]).decode()


def _made_up_nonces() -> dict:
    now = int(time.time())
    return {
        "zeros-40": "A" * 40,                                   # since 0: stale
        "zeros-60": "A" * 60,
        "recent-no-id": _bin_nonce(now - 5, now + 25, 0x00),    # no one-time id: stale
        "recent-ot-id": _bin_nonce(now - 5, now + 25, 0x40),    # unknown id
        "expired": _bin_nonce(now - 60, now - 30, 0x40),
        "future": _bin_nonce(now + 3600, now + 3630, 0x40),
        "not-base64": "!!!!" * 15,
        "too-short": "AAAAAAAA",
    }


NONCE_KINDS = list(_made_up_nonces())


def _register_with_nonce(c, user, nonce):
    """REGISTER user@127.0.0.1 from client c with made-up credentials (this
    nonce, any response); its reply."""
    aor = f"sip:{user}@127.0.0.1"
    cred = (f'Digest username="{user}", realm="127.0.0.1", nonce="{nonce}", '
            f'uri="sip:127.0.0.1", response="{uuid.uuid4().hex}", algorithm=MD5, '
            f'cnonce="{uuid.uuid4().hex[:16]}", nc=00000001, qop=auth')
    return c.transact("REGISTER", "sip:127.0.0.1", frm=aor, to=aor, expires=60,
                      auth=("Authorization", cred))


@pytest.mark.parametrize("kind", NONCE_KINDS)
def test_made_up_nonce_same_challenge_for_missing_user(oracle_kam, kind):
    """REGISTER with made-up credentials for 1003 (exists) and 9003
    (missing), from one fresh source: the missing user's challenge has the
    same parameters as the auth module's for the existing user - stale=true
    when that says so - and the same shape. Today: the existing user gets
    stale=true (an all-zero nonce, one without a one-time id, a replayed
    id, ...), the missing one never does."""
    kam = oracle_kam
    nonce = _made_up_nonces()[kind]
    with at.RawClient(_src(), kam.port) as c:
        exist = _register_with_nonce(c, "1003", nonce)
        missing = _register_with_nonce(c, "9003", nonce)
    assert exist is not None and exist.code == 401, exist and exist.raw
    assert missing is not None, "no answer for the missing user"
    pe = at.parse_challenge(exist.header("WWW-Authenticate") or "Digest")
    pm = at.parse_challenge(missing.header("WWW-Authenticate") or "Digest")
    strip = lambda p: {k: (len(v) if k == "nonce" else v) for k, v in p.items()}  # noqa: E731
    assert strip(pe) == strip(pm), f"{kind}: existing {strip(pe)}, missing {strip(pm)}"
    _assert_same_reply(exist, missing, kind)


def test_made_up_nonces_no_ban_oracle(kam_factory):
    """auth_maxretry 3: five REGISTERs with an all-zero nonce for 1003
    (exists: stale=true, the password is never checked) from one source and
    for 9003 (missing) from another get the same replies, and the two
    sources end up treated alike (both banned or neither). Control: the
    legitimate phone keeps registering. Today: 9003's rewritten challenges
    count as failures, its source is banned after 3, 1003's never is."""
    kam = _kam(kam_factory, "stale-ban", auth_maxretry=3, user_maxretry=100)
    res = {}
    with at.LegitPhone(kam.port) as phone:
        for user in ("1003", "9003"):
            src = _src()
            codes = []
            with at.RawClient(src, kam.port) as c:
                for _ in range(5):
                    r = _register_with_nonce(c, user, "A" * 40)
                    codes.append((r.code, at.parse_challenge(r.header("WWW-Authenticate"))
                                  .get("stale")) if r else None)
            res[user] = (src, codes)
    phone.check()
    assert res["1003"][1] == res["9003"][1], res
    time.sleep(0.3)
    banned = {u: bool(kam.bans(src=src)) for u, (src, _) in res.items()}
    assert banned["1003"] == banned["9003"], (banned, kam.bans())


# ----------------------------------------------------------------------------
# 4. Call-ID ending with a control character


@pytest.mark.parametrize("suffix", ["\f", " \f"], ids=["FF", "SP-FF"])
@pytest.mark.parametrize("explicit", [True, False], ids=["script-call", "automatic"])
def test_callid_control_char_guesses_counted(kam_factory, explicit, suffix):
    """auth_maxretry 4: wrong passwords for 1001, each a REGISTER round
    (challenge, credentials) under its own Call-ID ending in a form feed.
    The source is banned reason=auth after exactly 4 checked guesses (4
    AUTHFAIL lines, auth_failures 4), and the right password afterwards
    gets no answer. Control: the legitimate phone keeps registering.
    Today (automatic counting): no failure counted, never banned, and the
    right password gets 200."""
    d = {} if explicit else {"no_explicit_fail": None}
    kam = _kam(kam_factory, "callid", auth_maxretry=4, user_maxretry=100, **d)
    src = _src()
    rounds = []
    with at.LegitPhone(kam.port) as phone:
        with at.RawClient(src, kam.port) as c:
            for i in range(6):
                dlg = at.Dialog(callid=uuid.uuid4().hex + suffix)
                rounds.append(c.register_digest("1001", f"wrong{i}", dlg=dlg, timeout=1.0))
                if rounds[-1][-1] is None:
                    break
            right = c.register_digest("1001", at.USERS["1001"],
                                      dlg=at.Dialog(callid=uuid.uuid4().hex + suffix),
                                      timeout=1.0)
    phone.check()
    fails = at.sgtest(kam, "AUTHFAIL", src=src)
    assert len(fails) == 4, (fails, rounds)
    assert rounds[:3] == [[401, 401]] * 3, rounds
    assert rounds[3][0] == 401 and rounds[3][1] in (401, None), rounds
    assert rounds[4:] == [[None]], rounds
    assert right == [None], right
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="auth BAN")
    assert [b["reason"] for b in bans] == ["auth"], bans
    assert kam.sg_stats()["auth_failures"] == 4


# ----------------------------------------------------------------------------
# 5. digest user names Kamailio reads differently


def _odd_username(kind: str, target: str, own: str = "1001") -> str:
    """The username parameter text: Kamailio's digest parser checks
    `target` in both (its token stops at the space; it skips what follows a
    quoted value up to the next comma and keeps the LAST username)."""
    if kind == "space":
        return f"username={target} j{uuid.uuid4().hex[:8]}"
    return f'username="{own}", realm="127.0.0.1" junk, username="{target}"'


@pytest.mark.parametrize("kind", ["space", "junk"])
def test_odd_digest_username_throttles_target(kam_factory, kind):
    """user_maxretry 6: 8 sources guess 1005's password once each with an
    odd username parameter (the auth module checks 1005: AUTHFAIL
    user=1005). 1005 is throttled: THROTTLE user=1005, sipguard.users shows
    it throttled - and no other user is. Control: 1005's owner, registered
    before from its own address, still gets 200. Today: "space" counts
    each failure against "1005 j<random>" (no throttle); "junk" throttles
    1001, the name before the junk."""
    kam = _kam(kam_factory, "throttle-" + kind, user_maxretry=6)
    owner = _src()
    assert at.register(owner, kam.port, "1005", at.USERS["1005"]) == [401, 200]
    guesses = []
    for i in range(8):
        with at.RawClient(_src(), kam.port) as c:
            guesses.append(c.register_digest("1005", f"bad{i}",
                                             username_field=_odd_username(kind, "1005")))
    assert guesses[:6] == [[401, 401]] * 6, guesses
    fails = at.sgtest(kam, "AUTHFAIL")
    assert len(fails) >= 6 and {f["user"] for f in fails} == {"1005"}, fails
    th = kam.wait_log(lambda: at.log_matches(kam, at.THROTTLE_RE), timeout=5,
                      what="THROTTLE line")
    assert [t["user"] for t in th] == ["1005"], th
    users = at.sipguard_users(kam)
    assert "1005" in users and users["1005"]["throttled"] > 0, users
    assert [u for u, e in users.items() if e["throttled"] > 0] == ["1005"], users
    assert at.register(owner, kam.port, "1005", at.USERS["1005"]) == [401, 200]
    assert kam.bans() == [], kam.bans()


@pytest.mark.parametrize("kind", ["space", "junk"])
def test_own_success_does_not_forgive_odd_username_failures(kam_factory, kind):
    """auth_maxretry 4: one source alternates a wrong password for 1005
    (odd username parameter) and a successful REGISTER of its own account
    1001. The successes do not forgive the failures against 1005: banned
    reason=auth after exactly 4 guesses. Control: the legitimate phone
    keeps registering. Today: "junk" is counted against 1001 and forgiven
    by each 1001 success - never banned."""
    kam = _kam(kam_factory, "forgive-" + kind, auth_maxretry=4, user_maxretry=100)
    src = _src()
    rounds = []
    with at.LegitPhone(kam.port) as phone:
        with at.RawClient(src, kam.port) as c:
            for i in range(7):
                g = c.register_digest("1005", f"bad{i}", timeout=1.0,
                                      username_field=_odd_username(kind, "1005"))
                ok = c.register_digest("1001", at.USERS["1001"], timeout=1.0)
                rounds.append((g, ok))
                if ok[-1] is None:
                    break
    phone.check()
    fails = at.sgtest(kam, "AUTHFAIL", src=src)
    assert {f["user"] for f in fails} == {"1005"}, fails
    assert len(fails) == 4, (fails, rounds)
    assert [r[1] for r in rounds[:3]] == [[401, 200]] * 3, rounds
    assert rounds[-1][1][-1] is None and len(rounds) <= 5, rounds
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="auth BAN")
    assert [b["reason"] for b in bans] == ["auth"], bans


# ----------------------------------------------------------------------------
# 7. huge From host

HUGE_HOST = "h" + "a" * 33000 + ".example"
# a line the module logs at error or warning level (Kamailio's prefix:
# " 1(9229) ERROR: sipguard [sipguard_guess.c:193]: ...")
ERR_RE = re.compile(r"\b(?:ERROR|WARNING|CRITICAL|BUG): sipguard\b|sipguard_reply_out")


def _huge_from_burst(kam, transport, method, n=20):
    """n requests with a ~33 KB From host, alternately to 9007 (missing)
    and 1001 (existing), each from its own source, all sent first and then
    awaited (3 s in all). Returns the final replies and every message any
    client saw (raw)."""
    clients, sent, seen, finals = [], [], [], []
    try:
        for i in range(n):
            user = "9007" if i % 2 == 0 else "1001"
            c = at.RawClient(_src(), kam.port, transport=transport)
            clients.append(c)
            ruri = f"sip:{user}@127.0.0.1"
            try:
                sent.append((c, ruri) + c.send_request(
                    method, ruri, frm=f"<sip:caller@{HUGE_HOST}>", to=ruri))
            except OSError as e:            # the proxy may close the connection
                seen.append(type(e).__name__.encode())
            time.sleep(0.02)                # not more than Kamailio's socket buffer holds
        deadline = time.monotonic() + 3.0
        for c, ruri, dlg, from_hdr in sent:
            try:
                finals.append(c.finish(method, ruri, dlg, from_hdr,
                                       timeout=max(0.05, deadline - time.monotonic())))
            except OSError as e:
                seen.append(type(e).__name__.encode())
            seen.extend(c.received)
    finally:
        for c in clients:
            c.close()
    return finals, seen


def _assert_no_raw_leak(kam, finals, seen, log_from):
    raw = [m[:40] for m in seen if re.match(rb"SIP/2\.0 (404|480) ", m)]
    assert raw == [], f"raw 404/480 reached the client: {raw[:3]}"
    for r in finals:
        assert r is None or r.code == 407, r.raw[:300]
    log = kam.log_text()[log_from:]
    assert "table bucket full of bans" not in log, \
        [line[:200] for line in log.splitlines() if "bucket" in line][:3]
    errs = [line[:200] for line in log.splitlines() if ERR_RE.search(line)]
    assert len(errs) <= 2, errs[:5]


@pytest.mark.parametrize("method", ["OPTIONS", "INVITE"])
@pytest.mark.parametrize("transport", ["TCP", "UDP"])
def test_huge_from_host_never_leaks(kam_factory, transport, method):
    """20 requests (TCP read buffer raised to 128 KB) with a From host of
    ~33 KB to a missing and an existing user: no client ever receives the
    raw 404/480 (the rewritten 407, or nothing), no "table bucket full of
    bans" in the log and at most 2 sipguard error/warning lines in all.
    Today: the rewrite does not fit, the raw reply goes out and every
    request logs "sipguard_reply_out failed: table bucket full of bans".
    Control: a normal From to the missing user gets the 407."""
    kam = _kam(kam_factory, f"huge-{transport}-{method}".lower(), tcp_rd_buf=131072)
    log_from = len(kam.log_text())
    finals, seen = _huge_from_burst(kam, transport, method)
    _assert_no_raw_leak(kam, finals, seen, log_from)
    with at.RawClient(_src(), kam.port, transport=transport) as c:
        r = c.transact(method, "sip:9007@127.0.0.1", frm="sip:caller@127.0.0.1",
                       to="sip:9007@127.0.0.1")
    assert r is not None and r.code == 407, r and r.raw


def test_huge_from_host_never_leaks_example(kam_factory, tmp_path):
    """The same over UDP (a 33 KB request fits a datagram; the example's
    TCP read buffer is Kamailio's default 16 KB) against the example
    bundle as shipped."""
    kam = _example(kam_factory, tmp_path)
    log_from = len(kam.log_text())
    finals, seen = _huge_from_burst(kam, "UDP", "OPTIONS")
    _assert_no_raw_leak(kam, finals, seen, log_from)


# ----------------------------------------------------------------------------
# 8. nonce ids

NID_INC = 257           # the auth module's nonce id step (modules/auth/nid.h)


def _nid(b: bytes) -> tuple:
    """(nonce id, pool/flags byte) of a binary nonce: after the second
    digest (45 bytes, auth_checks_*) or after the first (29 bytes)."""
    off = {45: 40, 29: 24}[len(b)]
    return struct.unpack(">I", b[off:off + 4])[0], b[off + 4]


def test_rewritten_nonce_layout_and_id_sequence(kam_factory):
    """one_time_nonce, auth_checks_*: the auth module's nonces decode to 45
    bytes (expiry, creation, 2 digests, nonce id, flags 0x40) and their ids
    grow by 257 per challenge. Alternating real challenges (1001's 401; a
    407 for a relay to 127.0.0.9) and rewritten ones (9008's 404 / 480 as
    401 / 407): every nonce has the same length, flags byte and lifetime
    (expiry - creation), a creation time within 2 s of the real one, and
    the ids of all of them, in order, step by exactly 257 - a rewritten
    nonce takes the next id, as a real one would. Today: the rewritten
    nonce's id bytes are random."""
    kam = _kam(kam_factory, "nid")
    seq = []
    with at.RawClient(_src(), kam.port) as c:
        for u in ("1001", "9008", "1001", "9008", "1001"):
            aor = f"sip:{u}@127.0.0.1"
            r = c.transact("REGISTER", "sip:127.0.0.1", frm=aor, to=aor, expires=60)
            seq.append(("REGISTER " + u, r))
        for u, d in (("1001", "127.0.0.9"), ("9008", "127.0.0.1"), ("1001", "127.0.0.9")):
            r = c.transact("INVITE", f"sip:{u}@{d}", frm="sip:caller@127.0.0.1",
                           to=f"sip:{u}@{d}")
            seq.append((f"INVITE {u}@{d}", r))
    assert all(r is not None and r.code in (401, 407) for _, r in seq), seq
    nonces = [(what, at.nonce_of(r)) for what, r in seq]
    ref = nonces[0][1]
    assert len(ref) == 45 and ref[44] & 0x40, ref.hex()
    exp0, since0 = struct.unpack(">II", ref[:8])
    for what, b in nonces:
        exp, since = struct.unpack(">II", b[:8])
        assert len(b) == len(ref), (what, len(b))
        assert exp - since == exp0 - since0, (what, exp - since)
        assert abs(since - since0) <= 2, (what, since, since0)
        assert _nid(b)[1] == _nid(ref)[1], (what, hex(_nid(b)[1]))
    ids = [_nid(b)[0] for _, b in nonces]
    steps = [(ids[i + 1] - ids[i]) % 2 ** 32 for i in range(len(ids) - 1)]
    assert steps == [NID_INC] * len(steps), \
        [(nonces[i + 1][0], steps[i]) for i in range(len(steps))]


# ----------------------------------------------------------------------------
# 9. non-digest credentials

NON_DIGEST = {
    "basic": ("OPTIONS", "Authorization: Basic Zm9vOmJhcg=="),
    "digest-no-username": ("OPTIONS",
                           'Proxy-Authorization: Digest realm="127.0.0.1", nonce="x", '
                           'uri="sip:127.0.0.1", response="y"'),
    "digest-empty-username": ("OPTIONS", 'Proxy-Authorization: Digest username="", '
                                         'realm="127.0.0.1", nonce="x", response="y"'),
    "register-basic": ("REGISTER", "Authorization: Basic Zm9vOmJhcg=="),
}


@pytest.mark.parametrize("variant", list(NON_DIGEST))
def test_non_digest_credentials_counted_for_enumeration(kam_factory, variant):
    """enum_threshold 5 (auth_maxretry 30, out of reach): probes of 12
    distinct names, each with credentials that name no user (Basic junk,
    Digest without or with an empty username) -> banned reason=enumeration
    at the 6th (7th) name. Control: the legitimate phone keeps registering.
    Today: a request with any credentials skips the enumeration count -
    never banned."""
    method, header = NON_DIGEST[variant]
    kam = _kam(kam_factory, "nondigest", enum_threshold=5, auth_maxretry=30,
               user_maxretry=100)
    scan = _src()
    codes = []
    with at.LegitPhone(kam.port) as phone:
        _probe_series(kam.port, scan, method, ENUM_NAMES, codes, headers=[header])
    phone.check()
    _assert_enumeration_ban(kam, scan, codes)


# ----------------------------------------------------------------------------
# 10a. bare-LF replies


@pytest.mark.parametrize("method", ["OPTIONS", "INVITE"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF-control"])
def test_relayed_reply_line_endings_kept(kam_factory, eol, method):
    """1005's phone (a UDP socket of the test, registered) answers every
    relayed <method> with a 404 whose lines end in `eol`. The caller (no
    credentials) gets the rewritten 407 with ONE kind of line end
    throughout: only LF when the phone wrote LF (no CR anywhere), only CRLF
    when it wrote CRLF (control). Today: LF replies come back with
    CRLF lines added by the rewrite (mixed)."""
    kam = _kam(kam_factory, "eol")
    with at.EolPhone(kam.port, _src(), "1005", eol=eol) as phone:
        with at.RawClient(_src(), kam.port) as c:
            r = c.transact(method, "sip:1005@127.0.0.1", frm="sip:caller@127.0.0.1",
                           to="sip:1005@127.0.0.1", timeout=4.0)
    assert phone.answered >= 1, phone.answered
    assert r is not None and r.code == 407, r and r.raw
    assert r.header("Proxy-Authenticate") is not None, r.raw
    if eol == "\n":
        assert b"\r" not in r.raw, r.raw
        assert r.raw.endswith(b"\n\n"), r.raw
    else:
        assert re.search(rb"(?<!\r)\n", r.raw) is None, r.raw
        assert r.raw.endswith(b"\r\n\r\n"), r.raw


@pytest.mark.parametrize("version", ["sip/2.0", "Sip/2.0", "SIP/2.0"])
def test_relayed_reply_status_line_case(kam_factory, version):
    """1005's phone answers every relayed INVITE with a 404 whose status
    line starts with `version` (Kamailio's parser reads the version without
    regard to case, and tm relays the line as it came). The caller (no
    credentials) gets the rewritten 407 whatever the case: the outgoing
    hook reads a status line as Kamailio does. Today: a lower-case
    "sip/2.0 404" is taken for a request and passes unchanged."""
    kam = _kam(kam_factory, "version")
    with at.FakePhone(kam.port, _src(), "1005", version=version) as phone:
        with at.RawClient(_src(), kam.port) as c:
            r = c.transact("INVITE", "sip:1005@127.0.0.1", frm="sip:caller@127.0.0.1",
                           to="sip:1005@127.0.0.1", timeout=4.0)
    assert phone.answered >= 1, phone.answered
    # (a reply still starting "sip/2.0" does not parse here: None)
    assert r is not None and r.code == 407, r and r.raw
    assert r.header("Proxy-Authenticate") is not None, r.raw


# ----------------------------------------------------------------------------
# 10b. parameter injection through the realm

INJECTIONS = {
    # the URI inside a quoted display name (Kamailio accepts it)
    "display-quote": '"a<sip:x@evil\\", nonce=\\"attacker>" <sip:{u}@127.0.0.1>',
    # a realm ending in a backslash escapes the closing quote
    "display-backslash": '"a<sip:x@evil\\>" <sip:{u}@127.0.0.1>',
    # the URI itself (Kamailio's parser refuses it: 400 / no answer)
    "uri-quote": '<sip:{u}@evil"\\, nonce="attacker>',
    "control-plain": '"Bob" <sip:{u}@127.0.0.1>',
}


@pytest.mark.parametrize("variant", list(INJECTIONS))
@pytest.mark.parametrize("method", ["INVITE", "REGISTER"])
def test_realm_cannot_inject_parameters(oracle_kam, method, variant):
    """INVITE to a missing user with From (REGISTER: To) carrying quotes or
    a backslash where sipguard takes the realm from: if a challenge comes
    back, it parses as RFC 7235 auth-params, has exactly one realm and one
    nonce, and no "attacker" text; or the request is refused before (no
    challenge). Today: realm="evil\\", nonce=\\"attacker" ... and a realm
    swallowing the real nonce."""
    kam = oracle_kam
    with at.RawClient(_src(), kam.port) as c:
        if method == "INVITE":
            frm = INJECTIONS[variant].format(u="caller")
            r = c.transact("INVITE", "sip:9010@127.0.0.1", frm=frm, to="sip:9010@127.0.0.1")
        else:
            to = INJECTIONS[variant].format(u="9010")
            r = c.transact("REGISTER", "sip:127.0.0.1", frm=to, to=to, expires=60)
    if variant == "control-plain":
        assert r is not None and r.code in (401, 407), r and r.raw
    ch = _challenge(r) if r is not None else None
    if ch is None:
        assert r is None or r.code not in (401, 407), r.raw
        return
    assert "attacker" not in ch, ch
    params = strict_params(ch)
    assert params is not None, f"challenge does not parse: {ch}"
    names = [k for k, _ in params]
    assert names.count("nonce") == 1 and names.count("realm") == 1, (names, ch)
    realm = dict(params)["realm"]
    assert realm.startswith('"') and "\\" not in realm and '"' not in realm[1:-1], ch


# ----------------------------------------------------------------------------
# 10c. scanner fingerprints

EVASIONS = {
    "second-header": ["User-Agent: Yealink SIP-T46S 66.86.0.15", "User-Agent: friendly-scanner"],
    "folded": ["User-Agent: friendly-\r\n scanner"],
    "folded-tab": ["User-Agent: friendly-\r\n\tscanner"],
    "tab": ["User-Agent: friendly-\tscanner"],
    "tab-2": ["User-Agent: friendly\t-scanner"],
    "cyrillic-a": ["User-Agent: friendly-sc\u0430nner"],
}


@pytest.mark.parametrize("variant", list(EVASIONS))
def test_scanner_user_agent_evasions_banned(fp_kam, variant):
    """Default scanner list: an OPTIONS whose User-Agent hides
    "friendly-scanner" (in a second User-Agent header after a phone's; by
    folding; with a TAB inside; with a Cyrillic 'а' U+0430) is not
    answered, its source is banned reason=scanner at this first request
    (DROP verdict -3). Today: 407, not banned."""
    kam = fp_kam
    src = _src()
    with at.RawClient(src, kam.port) as c:
        r = c.transact("OPTIONS", "sip:1001@127.0.0.1", frm="sip:caller@127.0.0.1",
                       to="sip:1001@127.0.0.1", headers=EVASIONS[variant], ua=None,
                       timeout=1.0)
    assert r is None, (variant, r.code)
    bans = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="scanner BAN")
    assert [b["reason"] for b in bans] == ["scanner"], bans
    drops = _drops(kam, src)
    assert drops and drops[0]["verdict"] == "-3", drops


PHONES = {
    "two-phone-headers": ["User-Agent: Yealink SIP-T46S 66.86.0.15",
                          "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)"],
    "folded-phone": ["User-Agent: Zoiper\r\n rv2.10.20"],
    "tab-phone": ["User-Agent: Grandstream\tGXP2170"],
    "cyrillic-phone": ["User-Agent: Телефон-Сканер-Штрихкодов/1.0"],
}


@pytest.mark.parametrize("variant", list(PHONES))
def test_phone_user_agents_not_banned(fp_kam, variant):
    """Control: phones with several User-Agent headers, folded, with a TAB
    or in Cyrillic are answered (407) and not banned."""
    kam = fp_kam
    src = _src()
    with at.RawClient(src, kam.port) as c:
        r = c.transact("OPTIONS", "sip:1001@127.0.0.1", frm="sip:caller@127.0.0.1",
                       to="sip:1001@127.0.0.1", headers=PHONES[variant], ua=None)
    assert r is not None and r.code == 407, (variant, r and r.raw)
    assert kam.bans(src=src) == []
