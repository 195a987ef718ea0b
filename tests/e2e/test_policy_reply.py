"""Policy replies stay policy replies: a reply to a request that one of
sipguard's policy functions (sipguard_require_tls(), a dial check) or the
script (sipguard_policy_reply()) refused leaves as it is and is no failed
guess, so a phone with its credentials on the wrong transport is never
banned; and the attacker's view: the mark covers only the request it was
set on, a challenge stays a failure, and the refusal is the same for
existing and missing users.

Everything on loopback; every loop bounded."""
from __future__ import annotations

import time

import pytest

import auth_tools as A
import sipg

BUNDLE = sipg.REPO / "kamailio-cfg" / "sipguard-tls.cfg"
LO = "127.0.0.1"
# well-formed digest credentials of a phone that has not been challenged
# over this transport (the TLS bundle has no subscribers: never checked)
CREDS = ('Authorization: Digest username="1001", realm="127.0.0.1", '
         'nonce="bm9uY2Vub25jZW5vbmNlbm9uY2U=", uri="sip:127.0.0.1", '
         'response="0123456789abcdef0123456789abcdef", algorithm=MD5\r\n')


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return sipg.gen_cert(tmp_path_factory.mktemp("tls") / "certs")


def _phone_over_udp(k, src: str, n: int):
    """n REGISTERs with credentials over UDP, one second apart at most
    (a phone retrying); every final reply."""
    replies = []
    for _ in range(n):
        r = sipg.udp_request("REGISTER", k.port, src=src, headers=CREDS, timeout=2.0)
        replies.append(r)
        time.sleep(0.05)
    return replies


@pytest.mark.parametrize("normalize", [0, 1])
def test_phone_with_credentials_over_udp_keeps_its_refusal(kam_factory, tmp_path, tls_dir,
                                                           normalize):
    """The TLS bundle as shipped (normalize_replies=0) and with reply
    normalization on: 25 REGISTERs with credentials over UDP (auth_maxretry
    is 10) all get "403 TLS required", none is counted, no ban."""
    cfg = None
    if normalize:
        text = BUNDLE.read_text()
        old = 'modparam("sipguard", "normalize_replies", 0)'
        assert old in text
        cfg = tmp_path / "tls-normalize.cfg"
        cfg.write_text(text.replace(old, 'modparam("sipguard", "normalize_replies", 1)'))
    k = sipg.start_tls_bundle(kam_factory, tmp_path, tls_dir, cfg=cfg, name=f"bundle{normalize}")
    src = "127.0.0.41"
    replies = _phone_over_udp(k, src, 25)
    got = [(r.code, r.reason) if r else None for r in replies]
    assert got == [(403, "TLS required")] * 25, got
    assert k.bans(src=src) == [], k.log_tail()
    assert int(k.sg_stats().get("auth_failures", 0)) == 0, k.sg_stats()
    # over TLS the same phone registers
    ctx = sipg.tls_context(cafile=tls_dir / "sipguard.crt")
    with sipg.StreamSipClient(LO, LO, k.tls_port, context=ctx) as c:
        assert c.request("REGISTER", headers=CREDS).code == 200
    assert k.stop() == 0


# ----------------------------------------------------------------------------
# the attacker's view, against the auth test config: a request with the
# header X-Policy is refused by the script with sipguard_policy_reply() and
# "403 Policy" before anything looks at the user


@pytest.fixture(scope="module")
def kam(kam_module_factory):
    return A.start_auth_kam(kam_module_factory, "policy", auth_maxretry=3)


def _challenge(c: A.RawClient, user: str, dlg: A.Dialog):
    aor = f"sip:{user}@{A.DST}"
    r = c.transact("REGISTER", f"sip:{A.DST}", frm=aor, to=aor, dlg=dlg, expires=60)
    assert r is not None and r.code == 401, r
    return A.parse_challenge(r.header("WWW-Authenticate"))


def test_policy_refusal_is_the_same_for_existing_and_missing_users(kam):
    shapes = {}
    for user in ("1001", "9999"):
        with A.RawClient("127.0.0.42", kam.port) as c:
            aor = f"sip:{user}@{A.DST}"
            r = c.transact("REGISTER", f"sip:{A.DST}", frm=aor, to=aor, expires=60,
                           headers=["X-Policy: 1"])
            assert r is not None and (r.code, r.reason) == (403, "Policy"), r
            shapes[user] = A.shape(r)
    # same status, same headers in the same order, same length (both
    # names have four characters)
    assert shapes["1001"] == shapes["9999"], shapes


def test_policy_refusals_with_credentials_never_ban(kam):
    """Ten checked-looking guesses (auth_maxretry=3) on the policy path:
    each refused as is, none counted; their passwords are never looked at."""
    src = "127.0.0.43"
    with A.RawClient(src, kam.port) as c:
        for i in range(10):
            dlg = A.Dialog()
            ch = _challenge(c, "1001", dlg)
            cred = A.digest_header(ch, "REGISTER", f"sip:{A.DST}", "1001", f"wrong{i}")
            aor = f"sip:1001@{A.DST}"
            r = c.transact("REGISTER", f"sip:{A.DST}", frm=aor, to=aor, dlg=dlg, expires=60,
                           auth=("Authorization", cred), headers=["X-Policy: 1"])
            assert r is not None and (r.code, r.reason) == (403, "Policy"), (i, r)
    assert kam.bans(src=src) == []


def test_a_policy_mark_does_not_cover_the_same_guess_sent_again(kam):
    """The attacker sends each guess twice under one Call-ID and CSeq with
    the same credentials: first on the policy path, then on the path that
    checks the password. The second clears the mark: its 401 is a failure,
    and after auth_maxretry=3 the source is banned reason=auth."""
    src = "127.0.0.44"
    aor = f"sip:1001@{A.DST}"
    codes = []
    with A.RawClient(src, kam.port) as c:
        for i in range(5):
            dlg = A.Dialog()
            try:
                ch = _challenge(c, "1001", dlg)
            except AssertionError:
                codes.append(None)  # banned: no challenge any more
                break
            cred = A.digest_header(ch, "REGISTER", f"sip:{A.DST}", "1001", f"guess{i}")
            r = c.transact("REGISTER", f"sip:{A.DST}", frm=aor, to=aor, dlg=dlg, expires=60,
                           auth=("Authorization", cred), headers=["X-Policy: 1"])
            assert r is not None and (r.code, r.reason) == (403, "Policy"), r
            dlg.cseq -= 1  # the same Call-ID and CSeq again
            r = c.transact("REGISTER", f"sip:{A.DST}", frm=aor, to=aor, dlg=dlg, expires=60,
                           auth=("Authorization", cred))
            codes.append(r.code if r else None)
    assert codes[:3] == [401, 401, 401], codes
    kam.wait_log(lambda: any(b["reason"] == "auth" for b in kam.bans(src=src)),
                 what=f"BAN of {src} reason=auth")
