"""KEMI: the example scripts kamailio-cfg/kemi/sipguard.lua and sipguard.py
(app_lua, app_python3) through their native wrappers, with the flood,
scanner and toll-fraud scenarios of the native examples; the account
suspension reaching the script's event_callback; every native script
function exported to KEMI; sipguard_sdp_check_policy() from a script."""
from __future__ import annotations

import re

import pytest

import sdp_bodies as sdp
import sipg
import auth_tools as at
from auth_tools import TOOL_SRC, svwar
from conftest import q
from test_fraud import DOMESTIC, INTERNATIONAL, call, denials, fraud_kam, refused

KEMI_DIR = sipg.REPO / "kamailio-cfg" / "kemi"
ENGINES = {
    "lua": (KEMI_DIR / "sipguard-lua.cfg", KEMI_DIR / "sipguard.lua", "app_lua.api_list"),
    "python": (KEMI_DIR / "sipguard-python.cfg", KEMI_DIR / "sipguard.py",
               "app_python.api_list"),
}
MOD_C = sipg.REPO / "c-shim" / "kamailio" / "sipguard_mod.c"
# a native function whose forms differ in arguments: the KEMI name of each
KEMI_FORMS = {("sipguard_sdp_check", 1): "sipguard_sdp_check_policy",
              ("sipguard_call_start", 2): "sipguard_call_start_limit"}


def kemi_kam(kam_factory, tmp_path, engine: str, script=None, **defines):
    cfg, default_script, _ = ENGINES[engine]
    return fraud_kam(kam_factory, tmp_path, cfg=cfg,
                     SG_KEMI_SCRIPT=q(str(script or default_script)), **defines)


@pytest.fixture(params=sorted(ENGINES))
def engine(request):
    return request.param


def test_flood_banned(kam_factory, tmp_path, engine):
    kam = kemi_kam(kam_factory, tmp_path, engine)
    assert sipg.udp_run("127.0.0.9", "127.0.0.1", kam.port, 5, wait=0.5).answered == 5
    fl = sipg.udp_run("127.0.0.10", "127.0.0.1", kam.port, 60, wait=0.5)
    assert 30 <= fl.answered <= 32, fl
    b = kam.wait_log(lambda: kam.bans(src="127.0.0.10"), timeout=3, what="BAN")
    assert b[0]["reason"] == "flood", b
    assert sipg.udp_run("127.0.0.10", "127.0.0.1", kam.port, 10, wait=0.5).answered == 0
    assert kam.stats()["dropped"] >= 10  # early drop, as in sipguard.cfg


def test_scanner_banned_on_its_first_packet(kam_factory, tmp_path, engine):
    kam = kemi_kam(kam_factory, tmp_path, engine)
    r = svwar(kam.port, method="OPTIONS", ext_range="1000-1005")
    assert not r["found"], r
    b = kam.wait_log(lambda: kam.bans(src=TOOL_SRC), timeout=3, what="BAN of svwar")
    assert b[0]["reason"] == "scanner", b
    assert kam.stats()["scanners"] >= 1


def test_register_and_password_guessing(kam_factory, tmp_path, engine):
    """REGISTER through the script's digest auth: the real password
    registers; a missing user gets a challenge like an existing one (its 404
    rewritten); wrong passwords from one source ban it (reason auth) after
    auth_maxretry (10) checked guesses."""
    kam = kemi_kam(kam_factory, tmp_path, engine)
    assert at.register("127.0.0.77", kam.port, at.LEGIT_USER, at.USERS[at.LEGIT_USER]) \
        == [401, 200]
    assert at.register("127.0.0.78", kam.port, "9999", "x") == [401, 401]
    src = "127.0.0.79"
    codes = [at.register(src, kam.port, at.WEAK_USER, f"wrong{i}", timeout=1.0)
             for i in range(12)]
    b = kam.wait_log(lambda: kam.bans(src=src), timeout=5, what="auth BAN")
    assert [x["reason"] for x in b] == ["auth"], b
    assert codes[:9] == [[401, 401]] * 9 and codes[-1] == [None], codes
    st = kam.stats()
    assert st["auth_bans"] == 1 and st["auth_failures"] >= 10, st
    # the owner still registers from elsewhere
    assert at.register("127.0.0.80", kam.port, at.WEAK_USER, at.WEAK_PASS) == [401, 200]
    assert not re.search(r"ERROR: app_(lua|python3)", kam.log_text()), kam.log_tail()


def test_toll_fraud(kam_factory, tmp_path, engine):
    """International refused, a domestic call relayed and counted down after
    its BYE, and a velocity suspension run through the script's
    event_callback (the PAGE line)."""
    kam = kemi_kam(kam_factory, tmp_path, engine, SG_CPM_WARNING="2", SG_CPM_CRITICAL="3")
    assert refused(kam, tmp_path, "alice", INTERNATIONAL[0])["successful"] == 1
    assert denials(kam, "alice") == [("+442071234567", "-1",
                                      "class international not permitted")]
    ok = call(kam, tmp_path, "bob", DOMESTIC)
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok
    assert sipg.fraud_calls(kam, "bob") == 0 and kam.stats()["active_calls"] == 0
    for number in INTERNATIONAL + [DOMESTIC, DOMESTIC]:
        assert refused(kam, tmp_path, "kate", number)["successful"] == 1, number
    assert [rc for _, rc, _ in denials(kam, "kate")] == ["-1", "-1", "-1", "-3", "-2"]
    s = sipg.suspensions(kam, "kate")
    assert [(x["reason"], x["value"], x["threshold"]) for x in s] == [("cpm", "4", "3")], s
    kam.wait_log(lambda: re.search(r"PAGE account=kate suspended reason=cpm", kam.log_text()),
                 what="event_callback ksr_sipguard_event")
    # an RPC suspension runs the callback too
    kam.kamcmd("sipguard.suspend", "carol")
    kam.wait_log(lambda: re.search(r"PAGE account=carol suspended reason=rpc", kam.log_text()),
                 what="event_callback for an RPC suspension")
    # the script ran without an error of its engine
    assert not re.search(r"ERROR: app_(lua|python3)", kam.log_text()), kam.log_tail()


def native_functions() -> set:
    """(name, number of arguments) of every entry of the native cmds table."""
    text = MOD_C.read_text()
    table = text[text.index("static cmd_export_t cmds[]"):]
    table = table[:table.index("{0, 0, 0, 0, 0, 0}")]
    return {(n, int(a)) for n, a in
            re.findall(r'\{"(sipguard_\w+)",\s*\(cmd_function\)\w+,\s*(\d+)', table)}


def test_every_function_exported_to_kemi(kam_factory, tmp_path, engine):
    kam = kemi_kam(kam_factory, tmp_path, engine)
    out = kam.kamcmd(ENGINES[engine][2]).stdout
    kemi = set(re.findall(r"module: sipguard\s+name: (\w+)", out))
    assert kemi, out
    natives = native_functions()
    assert len(natives) >= 11, natives
    want = {KEMI_FORMS.get((n, a), n) for n, a in natives}
    assert want <= kemi, want - kemi


def test_sdp_check_policy_from_kemi(kam_factory, tmp_path):
    kam = kemi_kam(kam_factory, tmp_path, "lua", script=sipg.CFG_DIR / "kemi-sdp-test.lua")

    def check(body, policy=None):
        headers = f"X-Sdp-Policy: {policy}\r\n" if policy is not None else ""
        rep = sipg.udp_request("INVITE", kam.port, body=body, headers=headers)
        assert rep is not None and rep.code == 200, rep
        return rep.int_header("X-Sdp")

    dtls = sdp.dtls_srtp()
    assert check(dtls) == 1
    assert check(dtls, "dtls=0") == -2
    assert check(dtls, "dtls=1") == 1
    assert check(dtls, "dtls=0") == -2  # the parsed policy again
    assert check(sdp.srtp_all(), "dtls=0") == 1
    assert check(b"") == -1
    assert check(dtls, "bogus=1") == -5
    assert 'invalid sipguard_sdp_check_policy() policy "bogus=1"' in kam.log_text()


def test_event_callback_needs_a_kemi_script(kam_factory, tmp_path):
    kam = kam_factory(start=False, extra='modparam("sipguard", "event_callback", "ksr_ev")')
    failed, out = sipg.start_fails(kam)
    assert failed and "event_callback" in out, out
