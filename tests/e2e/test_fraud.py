"""Toll-fraud controls end to end: sipp callers and callees through a real
Kamailio (tm + dialog) running kamailio-cfg/sipguard-fraud.cfg, the
example config, with a rules file of the test's."""
from __future__ import annotations

import re
import select
import socket
import time
import uuid
from pathlib import Path

import pytest

import sipg
from conftest import q

RULES = """\
prefix 1   domestic      0
prefix 44  international 0
prefix 449 premium       30
account default domestic
account carol   domestic limit=3
account payer   domestic,premium
"""

DOMESTIC = "12125550100"
INTERNATIONAL = ["+442071234567", "00442071234567", "011442071234567"]
PREMIUM = "+449098790000"


def fraud_kam(kam_factory, tmp_path, rules: str = RULES, start: bool = True, cfg=None,
              **defines):
    """The example config (or `cfg`) on a free port, calls sent to a callee
    port of its own."""
    kam_factory.n += 1
    name = f"fraud{kam_factory.n}"
    rules_path = tmp_path / f"{name}-rules.txt"
    rules_path.write_text(rules)
    rundir = tmp_path / f"{name}-rundir"
    rundir.mkdir()
    callee_port = sipg.free_port()
    d = {"SG_CALLEE": q(f"sip:127.0.0.1:{callee_port}"), "SG_FRAUD_RULES": q(str(rules_path)),
         "SG_CHILDREN": "2", "SG_CPM_WARNING": "200", "SG_CPM_CRITICAL": "1000",
         "SG_SPEND_WARNING": q("0.5"), "SG_SPEND_CRITICAL": q("1")}
    d.update(defines)
    k = sipg.Kamailio(cfg=cfg or sipg.FRAUD_CFG, workdir=tmp_path, name=name, defines=d,
                      extra_args=[f"--substdef=!SG_RUNDIR!{rundir}!g"])
    k.rundir = rundir
    k.ctl = rundir / "kamailio_ctl"
    k.no_default_defines = True
    k.callee_port = callee_port
    k.rules = rules_path
    kam_factory.started.append(k)
    if start:
        k.start()
    return k


def caller(kam, tmp_path, scenario: str, account: str, number: str, count: int = 1,
           duration_ms: int = 0) -> sipg.Sipp:
    # a port of its own: with -p 0 sipp takes 5060, which other tests may hold
    return sipg.Sipp(scenario, tmp_path, dst=f"127.0.0.1:{kam.port}", port=sipg.free_port(),
                     count=count, duration_ms=duration_ms, service=number,
                     keys={"account": account})


def call(kam, tmp_path, account: str, number: str, duration_ms: int = 300) -> dict:
    """One call answered by a callee and hung up by the caller."""
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, kam.callee_port, 1)
    try:
        r = caller(kam, tmp_path, "fraud_caller.xml", account, number,
                   duration_ms=duration_ms).wait()
        c = callee.wait()
    finally:
        callee.kill()
    return {"caller": r, "callee": c}


def refused(kam, tmp_path, account: str, number: str) -> dict:
    """One call that must get 403 from the proxy."""
    return caller(kam, tmp_path, "fraud_caller_refused.xml", account, number).wait()


def denials(kam, account: str) -> list:
    return re.findall(rf"DIAL DENIED account={account} number=(\S+) rc=(-\d) reason=(.*)$",
                      kam.log_text(), re.M)


def poll_calls(kam, account: str, procs, seconds: float = 30) -> list:
    """Calls up of `account`, sampled while any of procs runs (bounded)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(p.proc.poll() is None for p in procs):
        seen.append(sipg.fraud_calls(kam, account))
        time.sleep(0.1)
    return seen


def parallel_calls(kam, tmp_path, callee_scn: str, caller_scn: str, account: str, count: int,
          callee_ms: int = 0, caller_ms: int = 0, callee_count: int | None = None,
          number: str = DOMESTIC) -> tuple:
    """`count` parallel calls of `account` to a callee: (calls up seen while
    they ran, caller result, callee result)."""
    callee = sipg.sipp_callee(callee_scn, tmp_path, kam.callee_port,
                              count if callee_count is None else callee_count,
                              duration_ms=callee_ms)
    try:
        callers = caller(kam, tmp_path, caller_scn, account, number, count=count,
                         duration_ms=caller_ms)
        seen = poll_calls(kam, account, [callers, callee])
        return seen, callers.wait(), callee.wait()
    finally:
        callee.kill()


def variant_cfg(tmp_path, name: str, *edits) -> Path:
    """The example config with (old, new) text replacements."""
    text = sipg.FRAUD_CFG.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(text)
    return cfg


def assert_no_calls_up(kam, account: str):
    assert sipg.fraud_calls(kam, account) == 0, sipg.fraud_accounts(kam)
    assert kam.stats()["active_calls"] == 0


def test_international_refused_in_every_dialled_form(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path)
    for number in INTERNATIONAL:
        r = refused(kam, tmp_path, "dora", number)
        assert r["successful"] == 1 and r["failed"] == 0, (number, r)
    got = denials(kam, "dora")
    assert [(n, rc) for n, rc, _ in got] == [(n, "-1") for n in INTERNATIONAL], got
    assert all(why == "class international not permitted" for _, _, why in got), got
    ok = call(kam, tmp_path, "dora", DOMESTIC)
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok
    assert kam.stats()["fraud_denied"] == 3
    assert_no_calls_up(kam, "dora")


def test_concurrency_limit_holds_under_parallel_calls(kam_factory, tmp_path):
    """carol may have 3 calls up: of 8 parallel calls 3 are connected, 5
    refused with 486, and the count is 0 once the callers hang up."""
    kam = fraud_kam(kam_factory, tmp_path)
    seen, r, c = parallel_calls(kam, tmp_path, "fraud_callee.xml", "fraud_caller.xml", "carol",
                                8, caller_ms=3000, callee_count=3)
    assert max(seen) == 3, seen
    assert (r["successful"], r["failed"]) == (3, 5), r
    assert c["successful"] == 3, c
    refusals = re.findall(r"CALL REFUSED account=carol rc=(-\d)", kam.log_text())
    assert refusals == ["-1"] * 5, refusals
    assert_no_calls_up(kam, "carol")


@pytest.mark.parametrize("callee_scn,callee_ms,caller_scn,caller_ms,account", [
    ("fraud_callee_bye.xml", 2000, "fraud_caller_waits.xml", 0, "erin"),
    ("fraud_callee_ring.xml", 0, "fraud_caller_cancel.xml", 2000, "frank"),
], ids=["bye-from-callee", "cancel"])
def test_count_returns_to_zero(kam_factory, tmp_path, callee_scn, callee_ms, caller_scn,
                               caller_ms, account):
    """Three calls counted while up (answered, or ringing before CANCEL),
    none once the callee hung up or the caller cancelled. (BYE from the
    caller: test_concurrency_limit_holds_under_parallel_calls.)"""
    kam = fraud_kam(kam_factory, tmp_path)
    seen, r, c = parallel_calls(kam, tmp_path, callee_scn, caller_scn, account, 3,
                                callee_ms=callee_ms, caller_ms=caller_ms)
    assert max(seen) == 3, seen
    assert r["successful"] == 3 and c["successful"] == 3, (r, c)
    assert_no_calls_up(kam, account)


@pytest.mark.parametrize("callee_scn,account,defines", [
    ("fraud_callee_busy.xml", "iris", {}),
    ("fraud_callee_ring.xml", "lena", {"SG_FR_INV_TIMER": "2000"}),
], ids=["486-from-callee", "no-answer-408"])
def test_count_returns_to_zero_when_the_call_fails(kam_factory, tmp_path, callee_scn, account,
                                                   defines):
    """Admitted calls that fail: the callee refuses them with 486, or nobody
    answers and tm gives up after fr_inv_timer (2 s), cancels the callee and
    answers 408. Counted while ringing, not after."""
    kam = fraud_kam(kam_factory, tmp_path, **defines)
    seen, r, c = parallel_calls(kam, tmp_path, callee_scn, "fraud_caller.xml", account, 2)
    assert max(seen) >= 1, seen
    assert (r["failed"], c["successful"]) == (2, 2), (r, c)
    assert f"CALL REFUSED account={account}" not in kam.log_text()
    assert_no_calls_up(kam, account)


def test_a_reinvite_is_not_counted_again(kam_factory, tmp_path):
    """A config that calls sipguard_call_start() for in-dialog INVITEs too:
    the re-INVITE of a call up gets -7 (not an initial INVITE) and the call
    stays counted once (the dialog module would hand it the call's dialog)."""
    cfg = variant_cfg(tmp_path, "reinvite", (
        "route[WITHINDLG] {\n",
        "route[WITHINDLG] {\n"
        "\tif (is_method(\"INVITE\")) {\n"
        "\t\tsipguard_call_start(\"$fU\");\n"
        "\t\t$var(rc) = $rc;\n"
        "\t\txlog(\"L_NOTICE\", \"sipguard: REINVITE account=$fU rc=$var(rc)\\n\");\n"
        "\t}\n"))
    kam = fraud_kam(kam_factory, tmp_path, cfg=cfg)
    seen, r, c = parallel_calls(kam, tmp_path, "fraud_callee_reinvite.xml",
                                "fraud_caller_reinvite.xml", "mia", 1, caller_ms=2000)
    assert r["successful"] == 1 and c["successful"] == 1, (r, c)
    assert re.findall(r"REINVITE account=mia rc=(-?\d+)", kam.log_text()) == ["-7"]
    assert max(seen) == 1, seen
    assert_no_calls_up(kam, "mia")


def test_a_spiral_is_counted_once(kam_factory, tmp_path):
    """An INVITE without an X-Spiral header goes back to the proxy itself
    with one: the same INVITE spirals through the request route, and the dialog module
    hands it the same dialog. solo may have one call up; the spiral is not a
    second call (it would get 486), and the count is 0 after the BYE."""
    rules = RULES + "account solo domestic limit=1\n"
    cfg = variant_cfg(tmp_path, "spiral", (
        "\t$du = SG_CALLEE;\n",
        "\tif (!is_present_hf(\"X-Spiral\")) {\n"
        "\t\tappend_hf(\"X-Spiral: 1\\r\\n\");\n"
        "\t\t$du = \"sip:\" + $Ri + \":\" + $Rp;\n"
        "\t} else {\n"
        "\t\t$du = SG_CALLEE;\n"
        "\t}\n"))
    kam = fraud_kam(kam_factory, tmp_path, rules=rules, cfg=cfg)
    seen, r, c = parallel_calls(kam, tmp_path, "fraud_callee.xml", "fraud_caller.xml", "solo",
                                1, caller_ms=2000)
    assert "CALL REFUSED account=solo" not in kam.log_text(), denials(kam, "solo")
    assert r["successful"] == 1 and c["successful"] == 1, (r, c)
    assert max(seen) == 1, seen
    assert_no_calls_up(kam, "solo")


def test_count_drops_when_the_dialog_expires(kam_factory, tmp_path):
    """Calls outliving the dialog timeout (2 s) stop counting when their
    dialogs expire, and the proxy ends them: both sides get a BYE (the
    endpoints would hang up on nothing else; in-dialog requests of a
    forgotten dialog are refused)."""
    kam = fraud_kam(kam_factory, tmp_path, SG_DLG_TIMEOUT="2")
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, kam.callee_port, 2)
    try:
        callers = caller(kam, tmp_path, "fraud_caller_waits.xml", "jack", DOMESTIC, count=2)
        kam.wait_log(lambda: sipg.fraud_calls(kam, "jack") == 2, timeout=10, what="2 calls up")
        kam.wait_log(lambda: sipg.fraud_calls(kam, "jack") == 0, timeout=10,
                     what="the count to drop on dialog expiry")
        r = callers.wait()
        c = callee.wait()
    finally:
        callee.kill()
    assert r["successful"] == 2 and c["successful"] == 2, (r, c, kam.log_tail(80))
    assert_no_calls_up(kam, "jack")


def test_premium_burst_suspends_and_ends_the_calls_up(kam_factory, tmp_path):
    """Three premium calls at 30/min cross spend_critical (1 per hour) a
    second after the answer: the account is suspended, and the event route
    run, while the calls are up; the suspension (spend: suspend_ends_calls
    by default) ends them: both sides of each get a BYE from the proxy (the
    callers and callees hang up on nothing else), the count returns to 0,
    and the log says 3 calls were ended. Unsuspend by RPC restores service."""
    kam = fraud_kam(kam_factory, tmp_path)
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, kam.callee_port, 3)
    try:
        callers = caller(kam, tmp_path, "fraud_caller_waits.xml", "payer", PREMIUM, count=3)
        s = kam.wait_log(lambda: sipg.suspensions(kam, "payer"), timeout=15,
                         what="SUSPEND account=payer")
        ended = kam.wait_log(
            lambda: re.findall(r"sipguard: ENDED account=payer reason=spend calls=(\d+)",
                               kam.log_text()), timeout=5, what="ENDED account=payer")
        r = callers.wait()
        c = callee.wait()
    finally:
        callee.kill()
    assert ended == ["3"], ended
    assert len(s) == 1 and s[0]["reason"] == "spend", s
    assert float(s[0]["value"]) > float(s[0]["threshold"]) == 1.0, s
    kam.wait_log(lambda: re.search(r"PAGE account=payer suspended reason=spend", kam.log_text()),
                 timeout=5, what="event_route[sipguard:account-suspended]")
    assert r["successful"] == 3 and c["successful"] == 3, (r, c)
    assert_no_calls_up(kam, "payer")
    acct = sipg.fraud_accounts(kam)["payer"]
    assert (acct["state"], acct["reason"]) == ("suspended", "spend"), acct
    assert kam.stats()["fraud_suspended"] == 1

    r = refused(kam, tmp_path, "payer", DOMESTIC)
    assert r["successful"] == 1, r
    assert denials(kam, "payer")[-1][1:] == ("-2", "account suspended")

    out = kam.kamcmd("sipguard.unsuspend", "payer").stdout
    assert "payer unsuspended" in out, out
    kam.wait_log(lambda: "sipguard: UNSUSPEND account=payer reason=rpc" in kam.log_text(),
                 what="UNSUSPEND line")
    ok = call(kam, tmp_path, "payer", DOMESTIC)
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok
    assert sipg.fraud_accounts(kam)["payer"]["state"] == "active"


def test_rules_reload_by_rpc(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path)
    assert refused(kam, tmp_path, "gina", INTERNATIONAL[0])["successful"] == 1
    kam.rules.write_text(RULES + "account gina domestic,international\n")
    out = kam.kamcmd("sipguard.reload_rules").stdout
    assert "Ok. 3 prefixes, 4 account rules" in out, out
    ok = call(kam, tmp_path, "gina", INTERNATIONAL[1])
    assert ok["caller"]["successful"] == 1 and ok["callee"]["successful"] == 1, ok

    kam.rules.write_text(RULES + "account gina domestic,intl\n")
    bad = kam.kamcmd("sipguard.reload_rules").stdout
    assert bad.startswith("error: 500 - reload failed, old rules kept:"), bad
    assert f"{kam.rules}:7: unknown class \"intl\"" in bad, bad
    # the old rules stay in force
    ok = call(kam, tmp_path, "gina", INTERNATIONAL[2])
    assert ok["caller"]["successful"] == 1, ok


def test_suspensions_survive_a_restart(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path)
    assert "hank suspended" in kam.kamcmd("sipguard.suspend", "hank", "test").stdout
    kam.wait_log(lambda: re.search(r"PAGE account=hank suspended reason=rpc", kam.log_text()),
                 what="event route of an RPC suspension")
    assert kam.stop() == 0
    kam.start()
    acct = sipg.fraud_accounts(kam)["hank"]
    assert (acct["state"], acct["reason"]) == ("suspended", "rpc"), acct
    assert refused(kam, tmp_path, "hank", DOMESTIC)["successful"] == 1
    assert denials(kam, "hank")[-1][1] == "-2"


def test_a_bad_rules_line_refuses_to_start(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path, rules=RULES + "prefix 33 international\n",
                    start=False)
    failed, out = sipg.start_fails(kam)
    assert failed, out[-3000:]
    assert f"parameter fraud_rules: {kam.rules}:7: expected: prefix" in out, out[-3000:]


def test_attempts_per_minute_suspend(kam_factory, tmp_path):
    """cpm_critical=3: the fourth attempt in a minute is refused as velocity
    (-3) and suspends the account; the event route runs."""
    kam = fraud_kam(kam_factory, tmp_path, SG_CPM_WARNING="2", SG_CPM_CRITICAL="3")
    for number in INTERNATIONAL + [DOMESTIC, DOMESTIC]:
        assert refused(kam, tmp_path, "kate", number)["successful"] == 1, number
    assert [rc for _, rc, _ in denials(kam, "kate")] == ["-1", "-1", "-1", "-3", "-2"]
    assert "sipguard: WARNING account=kate reason=cpm value=3 threshold=2" in kam.log_text()
    s = sipg.suspensions(kam, "kate")
    assert [(x["reason"], x["value"], x["threshold"]) for x in s] == [("cpm", "4", "3")], s
    kam.wait_log(lambda: re.search(r"PAGE account=kate suspended reason=cpm", kam.log_text()),
                 what="event_route[sipguard:account-suspended]")


def test_call_start_without_the_dialog_module_refuses_to_start(kam_factory, tmp_path):
    text = sipg.FRAUD_CFG.read_text()
    text = text.replace('loadmodule "dialog.so"\n', "").replace(
        'modparam("dialog", "default_timeout", SG_DLG_TIMEOUT)\n', "").replace(
        'modparam("dialog", "send_bye", 1)\n', "").replace(
        "dlg_manage();", "").replace("!is_known_dlg()", "$rm == \"NONE\"")
    cfg = tmp_path / "no-dialog.cfg"
    cfg.write_text(text)
    kam = fraud_kam(kam_factory, tmp_path, cfg=cfg, start=False)
    failed, out = sipg.start_fails(kam)
    assert failed, out[-3000:]
    assert "sipguard_call_start() needs the dialog module" in out, out[-3000:]


FRAUD_BAD = [
    ("intl_prefixes", '"00,+1"'),
    ("home_country_code", '"4x"'),
    ("cpm_critical", '"-1"'),
    ("spend_critical", '"1.23456"'),
    ("account_table_size", "2"),
    ("fraud_max_rules", "0"),
    ("call_limit", '"many"'),
]


@pytest.mark.parametrize("param", FRAUD_BAD, ids=[f"{n}={v.strip(chr(34))}" for n, v in FRAUD_BAD])
def test_bad_fraud_modparam_refused(kam_factory, param):
    """Checked when set: `kamailio -c` fails with the parameter named."""
    name, value = param
    kam = kam_factory(name="badfraud", start=False,
                      extra=f'modparam("sipguard", "{name}", {value})')
    r = kam.check()
    out = (r.stdout + r.stderr).replace(str(kam.cfg), "<cfg>")
    assert r.returncode != 0, f"kamailio -c accepted {name}={value}:\n{out[-3000:]}"
    assert re.search(rf"ERROR: sipguard .*invalid modparam: parameter {name}: ", out), out[-3000:]


def test_warning_above_critical_refuses_to_start(kam_factory, tmp_path):
    kam = fraud_kam(kam_factory, tmp_path, start=False, SG_CPM_WARNING="70",
                    SG_CPM_CRITICAL="60")
    failed, out = sipg.start_fails(kam)
    assert failed, out[-3000:]
    assert "parameter cpm_warning: 70 is above cpm_critical 60" in out, out[-3000:]


class UacAndCallee:
    """A raw UDP caller and a callee that answers every INVITE 486: what
    the proxy relayed is read exactly as it came."""

    def __init__(self, kam):
        self.kam = kam
        self.uac = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.uac.bind(("127.0.0.1", 0))
        self.callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.callee.bind(("127.0.0.1", kam.callee_port))

    def close(self):
        self.uac.close()
        self.callee.close()

    def invite(self, account: str, ruri: str, extra: str = "", to_tag: str = "",
               timeout: float = 5.0) -> tuple:
        """(final status the caller got, R-URI the callee got or None)."""
        port = self.uac.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        callid = uuid.uuid4().hex
        to = f"<sip:callee@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        msg = (f"INVITE {ruri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
               f"Max-Forwards: 70\r\n"
               f"From: <sip:{account}@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
               f"To: {to}\r\nCall-ID: {callid}\r\nCSeq: 1 INVITE\r\n"
               f"Contact: <sip:{account}@127.0.0.1:{port}>\r\n{extra}"
               f"Content-Length: 0\r\n\r\n")
        self.uac.sendto(msg.encode(), ("127.0.0.1", self.kam.port))
        relayed = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.uac, self.callee], [], [], 0.2)
            for sock in ready:
                data, addr = sock.recvfrom(65535)
                text = data.decode("utf-8", "replace")
                if sock is self.callee:
                    if text.startswith("INVITE ") and callid in text:
                        relayed = text.split(" ")[1]
                        sock.sendto(self._busy(text), addr)
                    continue
                m = re.match(r"SIP/2\.0 (\d{3}) ", text)
                if m and int(m.group(1)) >= 200 and callid in text:
                    return int(m.group(1)), relayed
        return None, relayed

    @staticmethod
    def _busy(invite: str) -> bytes:
        keep = [line for line in invite.split("\r\n")
                if re.match(r"(?i)(via|from|call-id|cseq|to)\s*:", line)]
        keep = [line + ";tag=callee1" if line.lower().startswith("to:") else line
                for line in keep]
        return ("SIP/2.0 486 Busy Here\r\n" + "\r\n".join(keep)
                + "\r\nContent-Length: 0\r\n\r\n").encode()


FORMS_RULES = RULES + """\
prefix 881  high-risk     3
prefix 4930 domestic      0
account globe domestic,international
"""

# (account, R-URI, final status, the R-URI the callee gets); dora may dial
# domestic numbers, globe domestic and international ones. Under the old
# check of $rU as dialled, the first four were judged domestic or
# international and relayed.
FORMS = [
    ("dora", "sip:49301234;phone-context=+8816@127.0.0.1;user=phone", 403, None),
    ("dora", "tel:49301234;phone-context=+8816", 403, None),
    ("globe", "sip:+44(0)9098790000@127.0.0.1", 403, None),
    ("globe", "sip:0044-(0)909-879-0000@127.0.0.1", 403, None),
    ("globe", "sip:+44-20-7123-4567@127.0.0.1;user=phone", 486, "+442071234567"),
    ("globe", "tel:20-7123-4567;phone-context=+44", 486, "+442071234567"),
    ("globe", "sip:2071234567;phone-context=+44@127.0.0.1;user=phone", 486, "+442071234567"),
    ("globe", "sip:+44%2020%207123%204567@127.0.0.1", 486, "+442071234567"),
    ("globe", "sips:011.44.20.7123.4567@127.0.0.1", 486, "+442071234567"),
    ("dora", "sip:1-212-555-0100@127.0.0.1", 486, "+12125550100"),
    ("globe", "sip:+44%3220%207123%204567@127.0.0.1", 404, None),
    ("globe", "sip:2071234567;phone-context=example.com@127.0.0.1;user=phone", 404, None),
    ("globe", "tel:2071234567", 404, None),
    ("globe", "sip:+4420;phone-context=+44@127.0.0.1;user=phone", 404, None),
    ("globe", "sip:+25912345678@127.0.0.1", 404, None),
    ("globe", "sip:+4420712345678901234@127.0.0.1", 404, None),
]


def test_what_is_judged_is_what_is_dialled(kam_factory, tmp_path):
    """Every form of a dialled number gets the verdict of the E.164 number
    it dials, and the callee gets exactly that number: a sip URI with
    user=phone, no phone-context."""
    kam = fraud_kam(kam_factory, tmp_path, rules=FORMS_RULES)
    ua = UacAndCallee(kam)
    try:
        got = [(a, u, *ua.invite(a, u)) for a, u, _, _ in FORMS]
    finally:
        ua.close()
    want = [(a, u, status, None if user is None else f"sip:{user}@127.0.0.1;user=phone")
            for a, u, status, user in FORMS]
    assert got == want, kam.log_tail(40)
    why = [r for _, _, r in denials(kam, "dora") + denials(kam, "globe")]
    assert why[:4] == ["class high-risk not permitted"] * 2 + ["class premium not permitted"] * 2
    assert why[4:] == ["bad number: an escape that is no visual separator",
                       "bad number: phone-context is a domain",
                       "bad number: local number without a country",
                       "bad number: phone-context twice or beside a global number",
                       "bad number: no such country code",
                       "bad number: longer than E.164 (15 digits)"], why


def test_a_forged_in_dialog_invite_is_refused(kam_factory, tmp_path):
    """An INVITE with a To tag and a Route to the proxy, the R-URI at the
    gateway: loose_route() would relay it unchecked. It belongs to no
    dialog the proxy set up, so it is refused (481) and reaches no one; the
    same number dialled as a new call gets 403."""
    kam = fraud_kam(kam_factory, tmp_path, rules=FORMS_RULES + "prefix 882 high-risk 3\n")
    ua = UacAndCallee(kam)
    gw = f"sip:+88212345678@127.0.0.1:{kam.callee_port}"
    try:
        forged = ua.invite("dora", gw, to_tag="forged1",
                           extra=f"Route: <sip:127.0.0.1:{kam.port};lr>\r\n")
        new = ua.invite("dora", gw)
    finally:
        ua.close()
    assert forged == (481, None), kam.log_tail(20)
    assert new == (403, None), kam.log_tail(20)
    assert "IN-DIALOG REFUSED method=INVITE account=dora" in kam.log_text()
    assert denials(kam, "dora")[-1][2] == "class high-risk not permitted"


def test_an_rpc_suspension_leaves_the_calls_up(kam_factory, tmp_path):
    """suspend_ends_calls is "spend" by default: a suspension by RPC stops
    new calls and leaves the calls up to end as they do (the callers hang
    up after 3 s, with a 200 to their BYE)."""
    kam = fraud_kam(kam_factory, tmp_path)
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, kam.callee_port, 2)
    try:
        callers = caller(kam, tmp_path, "fraud_caller.xml", "quinn", DOMESTIC, count=2,
                         duration_ms=3000)
        kam.wait_log(lambda: sipg.fraud_calls(kam, "quinn") == 2, timeout=10, what="2 calls up")
        assert "quinn suspended" in kam.kamcmd("sipguard.suspend", "quinn", "test").stdout
        kam.wait_log(lambda: "PAGE account=quinn suspended reason=rpc" in kam.log_text(),
                     what="event route of the RPC suspension")
        assert sipg.fraud_calls(kam, "quinn") == 2
        r = callers.wait()
        c = callee.wait()
    finally:
        callee.kill()
    assert r["successful"] == 2 and c["successful"] == 2, (r, c)
    assert "ENDED account=quinn" not in kam.log_text()
    assert_no_calls_up(kam, "quinn")


def test_suspend_ends_calls_names_the_reasons(kam_factory, tmp_path):
    """modparam suspend_ends_calls "rpc": an RPC suspension ends the
    account's two calls up (both sides get a BYE from the proxy, the log
    says 2, the count returns to 0). A value it does not know stops
    Kamailio at start with an error naming the parameter."""
    kam = fraud_kam(kam_factory, tmp_path, SG_SUSPEND_ENDS_CALLS=q("rpc"))
    callee = sipg.sipp_callee("fraud_callee.xml", tmp_path, kam.callee_port, 2)
    try:
        callers = caller(kam, tmp_path, "fraud_caller_waits.xml", "rita", DOMESTIC, count=2)
        kam.wait_log(lambda: sipg.fraud_calls(kam, "rita") == 2, timeout=10, what="2 calls up")
        assert "rita suspended" in kam.kamcmd("sipguard.suspend", "rita", "test").stdout
        ended = kam.wait_log(
            lambda: re.findall(r"sipguard: ENDED account=rita reason=rpc calls=(\d+)",
                               kam.log_text()), timeout=5, what="ENDED account=rita")
        r = callers.wait()
        c = callee.wait()
    finally:
        callee.kill()
    assert ended == ["2"], ended
    assert r["successful"] == 2 and c["successful"] == 2, (r, c)
    assert_no_calls_up(kam, "rita")

    bad = fraud_kam(kam_factory, tmp_path, start=False, SG_SUSPEND_ENDS_CALLS=q("sometimes"))
    failed, out = sipg.start_fails(bad)
    assert failed, out
    assert "suspend_ends_calls" in out, out


def test_the_numbering_plan_classes_what_no_rule_prices(kam_factory, tmp_path):
    """No prefix rule for Germany: +49 900 numbers are premium rate only by
    the numbering-plan data, and are refused to an account without the
    premium class; a German mobile number is class mobile by the same data,
    allowed to it; an operator prefix rule still wins over the data."""
    rules = FORMS_RULES + "prefix 4990012 domestic 0\naccount mobi domestic,mobile\n"
    kam = fraud_kam(kam_factory, tmp_path, rules=rules)
    ua = UacAndCallee(kam)
    try:
        got = [ua.invite("mobi", u) for u in (
            "sip:+49-900-3456789@127.0.0.1", "tel:+4915112345678", "sip:+4990012345678@h")]
    finally:
        ua.close()
    assert got == [(403, None), (486, "sip:+4915112345678@127.0.0.1;user=phone"),
                   (486, "sip:+4990012345678@127.0.0.1;user=phone")], kam.log_tail(20)
    assert [r for _, _, r in denials(kam, "mobi")] == ["class premium not permitted"]
