"""Extension enumeration and password guessing against a real OpenSIPS 3.6
(tests/e2e/cfg/opensips-auth-test.cfg: the auth module, a registrar, and
the 404-vs-401/480 leak that reply normalization hides).

- replies for an existing and a missing user look alike (status, header
  names in order, challenge form and value lengths, length) and like the
  auth module's own challenge; without normalization they do not;
- svwar finds the real extensions without normalization and none with it;
  with the default scanner list it is banned at once;
- svcrack does not find the weak password, and its source is banned
  (reason auth) after exactly auth_maxretry checked guesses; control:
  without the rules it finds it;
- a distributed guess throttles the account but not its owner;
  MI sipguard_users / sipguard_unthrottle.

The test tools (digest client, svwar/svcrack wrappers, the legitimate
phone re-registering throughout) are auth_tools', shared with the
Kamailio suite. svwar/svcrack always send from 127.0.0.1.
"""
import base64

import pytest

import auth_tools as at
from osips import MiError, opensips_built, osips_factory  # noqa: F401
import sipg

AUTH_CFG = sipg.CFG_DIR / "opensips-auth-test.cfg"
EXISTING = {"1000", "1001", "1002", "1003", "1004", "1005"}
RANGE = "995-1010"
HIGH_RATE = "300/2s"


def _osips(factory, name, **params):
    return factory(name=name, cfg=AUTH_CFG, **params)


def _probe(c, method, user, domain="127.0.0.1"):
    to = f"sip:{user}@{domain}"
    if method == "REGISTER":
        return c.transact("REGISTER", f"sip:{domain}", to, to, expires=60)
    return c.transact(method, to, "sip:caller@127.0.0.1", to)


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS", "INVITE"])
def test_reply_same_for_existing_and_missing_user(osips_factory, method):
    o = _osips(osips_factory, "shape")
    with at.SipClient("127.0.0.90", o.port) as c:
        exist = _probe(c, method, "1001")
        missing = _probe(c, method, "9001")
        # the auth module's own challenge: REGISTER of an existing user;
        # else a request for another domain (To of the same length)
        auth = exist if method == "REGISTER" else _probe(c, method, "1001", "127.0.0.9")
    for r in (exist, missing, auth):
        assert r is not None
    code = 401 if method == "REGISTER" else 407
    se, sm, sa = at.shape(exist), at.shape(missing), at.shape(auth)
    assert sa["status"][0] == code, (sa, auth.raw)
    assert se == sm, (se, sm, exist.raw, missing.raw)
    assert se == sa, (se, sa, exist.raw, auth.raw)
    # the nonce: 32 encrypted bytes and a zero byte, like the auth module's
    for r in (exist, missing, auth):
        v = r.header("WWW-Authenticate") or r.header("Proxy-Authenticate")
        raw = base64.b64decode(at.parse_challenge(v)["nonce"])
        assert len(raw) == 33 and raw[-1] == 0, r.raw
    assert o.sg_stats()["normalized"] >= 1


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS"])
def test_reply_differs_without_normalization(osips_factory, method):
    o = _osips(osips_factory, "noshape", normalize_replies=0)
    with at.SipClient("127.0.0.91", o.port) as c:
        exist = _probe(c, method, "1001")
        missing = _probe(c, method, "9001")
    assert missing.code == 404
    assert exist.code == (401 if method == "REGISTER" else 480)


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS"])
def test_svwar_finds_extensions_without_normalization(osips_factory, method):
    """Control: the leak is real."""
    o = _osips(osips_factory, "leak", normalize_replies=0, scanner_user_agents="",
               enum_threshold=39, rate=HIGH_RATE)
    r = at.svwar(o.port, method, RANGE)
    assert r["found"] == EXISTING, r["out"][-3000:]


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS"])
def test_svwar_finds_nothing_with_normalization(osips_factory, method):
    o = _osips(osips_factory, "noleak", scanner_user_agents="", enum_threshold=39,
               rate=HIGH_RATE)
    with at.LegitPhone(o.port) as phone:
        r = at.svwar(o.port, method, RANGE)
        forced = at.svwar(o.port, method, RANGE, force=True)
    assert r["found"] == set(), r["out"][-3000:]
    assert forced["found"] == set(), forced["out"][-3000:]
    phone.check()
    assert o.bans() == [], o.bans()


def test_svwar_banned_as_scanner(osips_factory):
    o = _osips(osips_factory, "scanner")
    with at.LegitPhone(o.port) as phone:
        r = at.svwar(o.port, "REGISTER", RANGE)
    assert r["found"] == set(), r["out"][-3000:]
    bans = o.wait_log(lambda: o.bans(src=at.TOOL_SRC), timeout=5, what="scanner BAN")
    assert [b["reason"] for b in bans] == ["scanner"], bans
    phone.check()


def _dictionary(tmp_path):
    """40 four-digit passwords, the right one (1234) 35th."""
    words = [f"{i:04d}" for i in range(1200, 1240)]
    return at.write_dictionary(tmp_path / "dict.txt", words)


def test_svcrack_does_not_find_weak_password(osips_factory, tmp_path):
    o = _osips(osips_factory, "crack", scanner_user_agents="")
    with at.LegitPhone(o.port) as phone:
        r = at.svcrack(o.port, at.WEAK_USER, _dictionary(tmp_path))
    assert r["found"] == [], r["out"][-3000:]
    bans = o.wait_log(lambda: o.bans(src=at.TOOL_SRC), timeout=5, what="auth BAN")
    assert len(bans) == 1 and bans[0]["reason"] == "auth", bans
    fails = at.sgtest(o, "AUTHFAIL", src=at.TOOL_SRC)
    assert len(fails) == 10, fails
    assert at.sgtest(o, "AUTHOK", src=at.TOOL_SRC) == []
    assert o.sg_list()["bans"][at.TOOL_SRC]["reason"] == "auth"
    st = o.sg_stats()
    assert st["auth_bans"] == 1 and st["auth_failures"] >= 10, st
    phone.check()
    assert [b["src"] for b in o.bans()] == [at.TOOL_SRC]


def test_svcrack_finds_password_without_sipguard_rules(osips_factory, tmp_path):
    """Control: the attack is real."""
    o = _osips(osips_factory, "crackok", scanner_user_agents="", auth_maxretry=1000,
               user_maxretry=1000, rate="1000/2s")
    r = at.svcrack(o.port, at.WEAK_USER, _dictionary(tmp_path))
    assert r["found"] == [(at.WEAK_USER, at.WEAK_PASS)], r["out"][-3000:]


def test_distributed_guess_throttles_user_not_owner(osips_factory):
    o = _osips(osips_factory, "dist", user_maxretry=6, scanner_user_agents="")
    owner = "127.0.0.60"
    assert at.register(owner, o.port, at.WEAK_USER, at.WEAK_PASS) == [401, 200]
    with at.LegitPhone(o.port) as phone:
        guesses = {}
        for i in range(8):
            src = f"127.0.7.{i + 1}"
            guesses[src] = at.register(src, o.port, at.WEAK_USER, f"{1200 + i:04d}")
        th = o.wait_log(lambda: at.log_matches(o, at.THROTTLE_RE), timeout=5,
                        what="THROTTLE line")
        assert len(th) == 1 and th[0]["user"] == at.WEAK_USER, th
        right = {f"127.0.8.{i + 1}": at.register(f"127.0.8.{i + 1}", o.port, at.WEAK_USER,
                                                  at.WEAK_PASS) for i in range(5)}
        owner_rounds = [at.register(owner, o.port, at.WEAK_USER, at.WEAK_PASS)
                        for _ in range(3)]
    assert all(g == [401, 401] for g in guesses.values()), guesses
    assert all(r == [401, 401] for r in right.values()), right
    assert owner_rounds == [[401, 200]] * 3, owner_rounds
    assert len(at.sgtest(o, "NOTCHECKED")) >= 5
    phone.check()
    assert o.bans() == [], o.bans()

    users = {u["user"]: u for u in o.mi("sipguard_users")}
    u = users[at.WEAK_USER]
    assert u["throttled"] > 0 and u["throttles"] == 1 and u["failures"] >= 6, u
    assert o.sg_stats()["throttles"] == 1
    assert o.mi("sipguard_unthrottle", user=at.WEAK_USER) == "OK"
    un = o.wait_log(lambda: at.log_matches(o, at.UNTHROTTLE_RE), timeout=5,
                    what="UNTHROTTLE line")
    assert un == [{"user": at.WEAK_USER, "reason": "rpc"}], un
    assert at.register("127.0.8.50", o.port, at.WEAK_USER, at.WEAK_PASS) == [401, 200]
    with pytest.raises(MiError) as e:
        o.mi("sipguard_unthrottle", user=at.WEAK_USER)
    assert e.value.code == 404


def test_stale_nonces_answered_alike_for_existing_and_missing_users(osips_factory):
    """The auth module calls a made-up nonce and a used one stale before it
    looks at the password (stale=true); the rewritten challenge of a
    missing user must say the same, or the stale flag tells users apart."""
    o = _osips(osips_factory, "stale", scanner_user_agents="")
    ruri = "sip:127.0.0.1"

    def answer(c, user, ch, password="wrong"):
        aor = f"sip:{user}@127.0.0.1"
        cred = at.digest_header(ch, "REGISTER", ruri, user, password)
        r = c.transact("REGISTER", ruri, aor, aor, auth=("Authorization", cred), expires=60)
        return r, at.parse_challenge(r.header("WWW-Authenticate")).get("stale")

    with at.SipClient("127.0.0.93", o.port) as c:
        aor = "sip:1001@127.0.0.1"
        ch = at.parse_challenge(c.transact("REGISTER", ruri, aor, aor, expires=60)
                                .header("WWW-Authenticate"))
        first, stale = answer(c, "1001", ch)
        assert (first.code, stale) == (401, None), first.raw
        # the same nonce again (used; the auth module checks that only
        # after its first 30 s): whatever it says, it says it for both
        seen = {}
        for user in ("1002", "9001"):
            r, seen[user] = answer(c, user, ch)
            assert r.code == 401, (user, r.raw)
        assert seen["1002"] == seen["9001"], seen
        made_up = dict(ch, nonce=base64.b64encode(bytes(32) + b"\0").decode())
        for user in ("1002", "9001"):
            r, stale = answer(c, user, made_up)
            assert (r.code, stale) == (401, "true"), (user, r.raw)


def test_huge_from_host_never_leaks(osips_factory):
    """20 OPTIONS over UDP with a From host of ~33 KB to a missing and an
    existing user: no client receives the raw 404/480 (the rewritten 407, or
    nothing: with the From host as its realm the challenge outgrows a
    datagram, as the auth module's own would); a normal From to the missing
    user gets the 407."""
    import test_attacker as ta
    o = _osips(osips_factory, "huge", scanner_user_agents="", rate=HIGH_RATE)
    finals, seen = ta._huge_from_burst(o, "UDP", "OPTIONS")
    raw = [m[:40] for m in seen if m.startswith((b"SIP/2.0 404 ", b"SIP/2.0 480 "))]
    assert raw == [], raw[:3]
    assert all(r is None or r.code == 407 for r in finals), [r.raw[:200] for r in finals if r]
    with at.RawClient("127.0.0.95", o.port) as c:
        r = c.transact("OPTIONS", "sip:9007@127.0.0.1", frm="sip:caller@127.0.0.1",
                       to="sip:9007@127.0.0.1")
    assert r is not None and r.code == 407, r and r.raw
